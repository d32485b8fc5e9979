"""Atomic writes: a stage output is either the complete new file or not there at all."""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SQLITE_HEADER = b"SQLite format 3\x00"


class OutputRefused(ValueError):
    """An output path a new file must not be renamed over; the message says why."""


def check_replaceable(output: Path, source: Path | None = None) -> None:
    """Refuse an output path that renaming a new file over it would mishandle: a link, FIFO
    or device would be replaced rather than written through, a directory cannot be; the
    input, an SQLite database (a prediction log) or a read-only file must not be. Checked
    before any work is done."""
    try:
        found = output.lstat()
    except OSError:  # not there (or under a non-directory, reported below)
        found = None
    if found is not None:
        if stat.S_ISLNK(found.st_mode):
            raise OutputRefused(f"{output}: is a symbolic link; give the path of a regular file")
        if stat.S_ISDIR(found.st_mode):
            raise OutputRefused(f"{output}: is a directory; give a file path")
        if not stat.S_ISREG(found.st_mode):
            raise OutputRefused(
                f"{output}: is not a regular file (a FIFO, device or socket); the output is "
                "written to a new file that replaces it, so give a file path"
            )
        if source is not None and source.exists() and output.samefile(source):
            raise OutputRefused(f"{output}: is the input file; write to another file")
        with open(output, "rb") as existing:
            if existing.read(len(SQLITE_HEADER)) == SQLITE_HEADER:
                raise OutputRefused(f"{output}: is an SQLite database (a log?); not replacing it")
        if not (found.st_mode & 0o222 and os.access(output, os.W_OK)):
            raise OutputRefused(f"{output}: is read-only; not replacing it")
    folder = output.absolute().parent
    while not folder.exists():  # missing folders are created on writing
        folder = folder.parent
    if not folder.is_dir():
        raise OutputRefused(f"{output}: {folder} is not a directory")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputRefused(f"{output}: cannot create files in {folder}: permission denied")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling path; on success rename it over ``target``.

    The temporary lives in the same directory so ``os.replace`` is a same-filesystem
    rename. On any exception the temporary is removed and ``target`` is left untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.chmod(0o666 & ~_umask())  # mkstemp makes it private; outputs are ordinary files
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary directory; on success it replaces ``target`` whole."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    tmp.chmod(0o777 & ~_umask())
    try:
        yield tmp
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old)
        else:
            os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_with(target: str | Path, writer: Callable[[Path], Any]) -> None:
    """Call ``writer(tmp_path)`` and atomically move the result to ``target``."""
    with atomic_path(target) as tmp:
        writer(tmp)


def write_json(target: str | Path, data: Any) -> None:
    write_with(target, lambda p: p.write_text(json.dumps(data, indent=2, default=str) + "\n"))


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())
