"""The MLflow registry read without MLflow: what the service needs at start-up, the
champion's version and the alias's moves, from whichever store ``MLFLOW_TRACKING_URI``
names. An SQLite file or a PostgreSQL database is read straight from MLflow's tables (a
client lookup took ~3 s, a direct read 15 ms, in each of the server's processes, and MLflow
is not a serving requirement; the price is knowing three of its tables, and
tests/test_lifecycle.py and tests/test_fleet.py read what MLflow wrote); an ``mlflow
server`` (``http://``) through its REST API.

MLflow itself (promotion, rollback, history, tracking) opens a ``postgresql://`` store with
SQLAlchemy, whose default driver for it is psycopg2: ``for_mlflow`` names psycopg (3), the
driver installed here, so the same URI works for both.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from mushroom.core.paths import read_only_uri
from mushroom.lifecycle.store_names import ALIAS, MOVE_TAG_PREFIX, NAME

TIMEOUT_SECONDS = 10
POSTGRES = re.compile(r"^postgres(ql)?(\+\w+)?://")


class RegistryUnreadable(RuntimeError):
    """The store cannot be read: the message names it and why."""


def for_mlflow(uri: str) -> str:
    """``uri`` as MLflow's SQLAlchemy store takes it: a PostgreSQL URI with psycopg's
    driver named (an explicit ``+driver`` is kept)."""
    found = POSTGRES.match(uri)
    if found and not found.group(2):
        return "postgresql+psycopg://" + uri[found.end() :]
    return uri


def registry_file(uri: str) -> Path | None:
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


MOVES = "SELECT key, value FROM registered_model_tags WHERE name = ? AND key LIKE ?"
CHAMPION = "SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?"
DIGEST = "SELECT value FROM model_version_tags WHERE name = ? AND version = ? AND key = ?"


class TablesRegistry:
    """An SQLite file's or a PostgreSQL database's MLflow tables."""

    def __init__(self, uri: str):
        self.uri = uri
        self.file = registry_file(uri)

    def exists(self) -> bool:
        return self.file is None or self.file.exists()

    def query(self, sql: str, *args: str) -> list[tuple]:
        try:
            if self.file is not None:
                with contextlib.closing(sqlite3.connect(read_only_uri(self.file), uri=True)) as db:
                    return db.execute(sql, args).fetchall()
            import psycopg  # only for a PostgreSQL store

            url = "postgresql://" + self.uri[POSTGRES.match(self.uri).end() :]
            with psycopg.connect(url, connect_timeout=TIMEOUT_SECONDS) as db:
                return db.execute(sql.replace("?", "%s"), args).fetchall()
        except Exception as exc:  # sqlite3's or psycopg's errors, whatever the store
            where = self.file or self.uri
            raise RegistryUnreadable(f"{where}: cannot read the MLflow registry ({exc})") from exc

    def moves(self) -> list[str]:
        rows = self.query(MOVES, NAME, f"{MOVE_TAG_PREFIX}%")
        return [value for _, value in sorted(rows, key=lambda row: _move_number(row[0]))]

    def champion(self) -> tuple[str, str | None] | None:
        found = self.query(CHAMPION, NAME, ALIAS)
        if not found:
            return None
        version = str(found[0][0])
        digest = self.query(DIGEST, NAME, version, "inputs_sha256")
        return version, digest[0][0] if digest else None


class ServerRegistry:
    """An ``mlflow server``'s registry, through its REST API."""

    def __init__(self, uri: str):
        self.uri = uri.rstrip("/")

    @staticmethod
    def exists() -> bool:
        return True

    def get(self, route: str, **query: str) -> dict | None:
        """The answer of ``GET route``, or None when MLflow says it does not exist."""
        url = f"{self.uri}/api/2.0/mlflow/{route}?{urllib.parse.urlencode(query)}"
        try:
            with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            body = exc.read().decode(errors="replace")
            if exc.code == 404 or "RESOURCE_DOES_NOT_EXIST" in body:
                return None
            raise RegistryUnreadable(f"{url}: {exc.code} {body[:300]}") from exc
        except (OSError, ValueError) as exc:
            raise RegistryUnreadable(f"{url}: cannot read the MLflow registry ({exc})") from exc

    def moves(self) -> list[str]:
        found = self.get("registered-models/get", name=NAME)
        tags = (found or {}).get("registered_model", {}).get("tags", [])
        numbered = [t for t in tags if t["key"].startswith(MOVE_TAG_PREFIX)]
        return [t["value"] for t in sorted(numbered, key=lambda t: _move_number(t["key"]))]

    def champion(self) -> tuple[str, str | None] | None:
        found = self.get("registered-models/alias", name=NAME, alias=ALIAS)
        if not found:
            return None
        version = found["model_version"]
        tags = {t["key"]: t["value"] for t in version.get("tags", [])}
        return str(version["version"]), tags.get("inputs_sha256")


def _move_number(key: str) -> int:
    return int(key.removeprefix(MOVE_TAG_PREFIX))


def registry(uri: str) -> TablesRegistry | ServerRegistry | None:
    """The registry at ``uri``, or None for a store this module cannot read."""
    if uri.startswith("sqlite:///") or POSTGRES.match(uri):
        return TablesRegistry(uri)
    if uri.startswith(("http://", "https://")):
        return ServerRegistry(uri)
    return None
