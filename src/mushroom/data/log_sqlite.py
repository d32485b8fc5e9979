"""The prediction log in one SQLite file in WAL mode: the embedded default.

Every batch of answers is one transaction, committed before the answers are returned, so an
answered prediction is in the log even if the server is SIGKILLed right after (a committed
WAL frame is in the OS page cache; ``synchronous=normal`` trades only the last transactions
before a power loss for ~no fsync cost). Concurrent writers, threads or worker processes,
are serialised by SQLite's lock: rows cannot tear or interleave, which appends from several
processes to one text file cannot promise. A file deleted or replaced while open is noticed
before and after every transaction (a ``stat`` each, ~3 µs in all): SQLite would go on
writing to the deleted file. A damaged file is only retried once it changed (restored,
replaced).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from mushroom.core.paths import read_only_uri
from mushroom.data.log_schema import (
    LABEL_COLUMNS,
    META_COLUMNS,
    PROBE_ROW,
    SOURCE_COLUMN,
    TRAIT_COLUMNS,
    LogUnavailable,
    insert_answers,
)

ADDED_COLUMNS = {"unfamiliar": "integer not null default 0", "reasons": "text not null default ''"}
"""Columns later versions added: a log written before them (or before a trait was
catalogued) gains them when opened."""
CORRUPTION = ("SQLITE_CORRUPT", "SQLITE_NOTADB")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.strerror}: {exc.filename}"
    return str(exc)


def _describe_opening(exc: BaseException, path: Path) -> str:
    """SQLite says "unable to open database file" or "attempt to write a readonly database"
    whether the folder (where it keeps its -wal and -shm files) or the file is read-only:
    name which."""
    cause = _describe(exc)
    if getattr(exc, "sqlite_errorname", "").startswith(("SQLITE_CANTOPEN", "SQLITE_READONLY")):
        for target in (path.parent, path):
            if target.exists() and not os.access(target, os.W_OK):
                return f"{target} is not writable ({cause})"
    return cause


def _is_corruption(exc: BaseException | None) -> bool:
    while exc is not None:
        if getattr(exc, "sqlite_errorname", "").startswith(CORRUPTION):
            return True
        exc = exc.__cause__
    return False


def _file_version(path: Path) -> tuple[int, ...] | None:
    """Changes when the file is replaced or rewritten, as by restoring a backup over it."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


def _file_id(path: Path) -> tuple[int, int] | None:
    version = _file_version(path)
    return version[:2] if version else None


def _private(path: Path) -> None:
    """The log readable by its owner alone: request ids are what a label needs, and the
    descriptions are the users'. A folder made for it is 0700; the file is created 0600, or
    closed to others if it is ours and more open (SQLite gives its -wal and -shm files the
    database file's mode). A folder that existed is left as it is: it may be shared."""
    for folder in reversed(path.parents):
        if not folder.exists():
            folder.mkdir(mode=0o700)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_RDONLY | os.O_NONBLOCK, 0o600))
    except PermissionError:
        return  # SQLite's own error names what is not writable
    mode = path.stat()
    if mode.st_uid == os.getuid() and mode.st_mode & 0o077:
        path.chmod(mode.st_mode & 0o700)  # the owner's own bits stay: read-only stays so


def _create_tables(db: sqlite3.Connection, path: Path) -> None:
    traits = ", ".join(TRAIT_COLUMNS)
    db.execute(
        "create table if not exists predictions (request_id text primary key, "
        "logged_at text not null, model_version text not null, dataset text not null, "
        "probability real not null, verdict text not null, unfamiliar integer not null, "
        f"reasons text not null, {traits})"
    )
    present = {row[1] for row in db.execute("pragma table_info(predictions)")}
    lacking = [c for c in META_COLUMNS if c not in present | ADDED_COLUMNS.keys()]
    if lacking:
        raise LogUnavailable(
            path, f"its table predictions is not a prediction log: no {', '.join(lacking)}"
        )
    for column, declaration in (ADDED_COLUMNS | dict.fromkeys(TRAIT_COLUMNS, "")).items():
        if column not in present:
            db.execute(f"alter table predictions add column {column} {declaration}")
    db.execute(
        "create table if not exists feedback (request_id text primary key "
        f"references predictions, {LABEL_COLUMNS})"
    )
    if "source" not in {row[1] for row in db.execute("pragma table_info(feedback)")}:
        db.execute(f"alter table feedback add column source {SOURCE_COLUMN}")
    db.execute(
        "create table if not exists label_conflicts (request_id text not null "
        f"references predictions, {LABEL_COLUMNS}, source {SOURCE_COLUMN})"
    )


class SqliteStore:
    """``mushroom.data.prediction_log``'s database at a file path."""

    placeholder, lock_row, order = "?", "", "p.rowid"
    errors = (sqlite3.Error,)

    def __init__(self, path: Path):
        self.where = path
        self._file: tuple[int, int] | None = None
        self._damaged: tuple[int, ...] | None = None

    def open(self) -> sqlite3.Connection:
        """The log, created if absent, its tables created or upgraded, and proven to take a
        row of every column (written and deleted in one transaction): what is wrong with it
        (a folder that cannot be made or written, a file that is not a database or is
        damaged, tables of another shape, a full disk) shows here rather than on the first
        answer. Raises ``LogUnavailable``."""
        path = self.where
        existing = next(folder for folder in path.parents if folder.exists())
        if not existing.is_dir():
            raise LogUnavailable(path, f"{existing} is a file, not a folder")
        if path.is_dir():
            raise LogUnavailable(path, "is a folder, not a database file")
        db = None
        try:
            _private(path)
            db = sqlite3.connect(path, check_same_thread=False, timeout=30, isolation_level=None)
            db.execute("pragma journal_mode=wal")
            db.execute("pragma synchronous=normal")
            _create_tables(db, path)
            self.begin(db)
            try:
                db.execute(insert_answers(TRAIT_COLUMNS, self.placeholder), PROBE_ROW)
                db.execute("insert into feedback values ('', 'edible', '', '')")
                db.execute("delete from feedback where request_id = ''")
                db.execute("delete from predictions where request_id = ''")
                db.execute("commit")  # written out, so a full disk shows here
            except sqlite3.Error:
                with contextlib.suppress(sqlite3.Error):  # the first error is the one to tell
                    self.roll_back(db)
                raise
        except (OSError, sqlite3.Error, LogUnavailable) as exc:
            if db is not None:
                with contextlib.suppress(sqlite3.Error):
                    db.close()
            if isinstance(exc, LogUnavailable):
                raise
            raise LogUnavailable(path, _describe_opening(exc, path)) from exc
        self._file, self._damaged = _file_id(path), None
        return db

    @staticmethod
    def begin(db: sqlite3.Connection) -> None:
        db.execute("begin immediate")

    @staticmethod
    def commit(db: sqlite3.Connection) -> None:
        db.execute("commit")

    @staticmethod
    def roll_back(db: sqlite3.Connection) -> None:
        """SQLite rolls a transaction back by itself after some errors (disk full, I/O
        error), and a rollback then fails: only roll back a transaction still open."""
        if db.in_transaction:
            db.execute("rollback")

    def in_use(self) -> bool:
        """Whether the file opened is still the one at the path."""
        return _file_id(self.where) == self._file

    def written(self) -> None:
        """After a commit: the rows just written are in the file at the path."""
        if not self.in_use():
            raise LogUnavailable(
                self.where, "the file was deleted or replaced while these answers were written"
            )

    def blocked(self) -> bool:
        """A damaged file is not reopened until it changed."""
        return self._damaged is not None and self._damaged == _file_version(self.where)

    def failed(self, exc: BaseException) -> str:
        """Why ``exc`` stopped the log, noting a damaged file."""
        self._damaged = _file_version(self.where) if _is_corruption(exc) else None
        return _describe(exc)

    @contextlib.contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """A read-only connection in one read transaction (so one consistent state while
        the service writes: WAL readers see the log as it was at their first read)."""
        path = self.where
        if not path.exists():
            raise LogUnavailable(
                path, "no such file (serve and answer first, or name it with --log)"
            )
        if path.is_dir():
            raise LogUnavailable(path, "is a folder, not a database file")
        try:
            with contextlib.closing(
                sqlite3.connect(read_only_uri(path), uri=True, isolation_level=None)
            ) as db:
                db.execute("begin")
                tables = {row[0] for row in db.execute("select name from sqlite_master")}
                if "predictions" not in tables:
                    raise LogUnavailable(path, "holds no prediction log (no table predictions)")
                yield db
                db.execute("rollback")
        except sqlite3.Error as exc:
            raise LogUnavailable(path, str(exc)) from exc

    @staticmethod
    def has_feedback(db: sqlite3.Connection) -> bool:
        return bool(db.execute("select 1 from sqlite_master where name = 'feedback'").fetchone())

    @staticmethod
    def rows(db: sqlite3.Connection, statement: str, params: tuple):
        """A cursor over ``statement``'s rows, fetched as asked."""
        return db.execute(statement, params)
