"""A throwaway PostgreSQL cluster for the tests: Debian's server (``make test`` installs
``postgresql-15`` when it is missing), initdb in a temporary folder, on a free 127.0.0.1
port. The server refuses to run as root, so as root it runs as the ``postgres`` user."""

from __future__ import annotations

import os
import shutil
import subprocess
from itertools import count
from pathlib import Path

import psycopg

from servefixtures import free_port

_databases = count()


def server_bin() -> Path:
    """The newest installed server's bin folder (initdb and pg_ctl are not on PATH)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not found:
        raise RuntimeError("no PostgreSQL server: run `make test` (it installs postgresql-15)")
    return found[-1].parent


class Cluster:
    def __init__(self, folder: Path):
        self.folder, self.data = folder, folder / "data"
        self.port = free_port()
        self.bin = server_bin()
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres")
            folder.chmod(0o700)
        self._as_owner(
            self.bin / "initdb", "-D", self.data, "--auth=trust", "-U", "postgres", "-E", "UTF8"
        )
        self.start()

    def _as_owner(self, *command) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(
            [*prefix, *map(str, command)], check=True, capture_output=True, cwd=self.folder
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        self._as_owner(
            self.bin / "pg_ctl",
            "-D",
            self.data,
            "-o",
            options,
            "-l",
            self.folder / "server.log",
            "-w",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._as_owner(self.bin / "pg_ctl", "-D", self.data, "-m", mode, "-w", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database's URL."""
        name = f"test_{os.getpid()}_{next(_databases)}"
        with psycopg.connect(self.url(), autocommit=True) as db:
            db.execute(f"create database {name}")
        return self.url(name)
