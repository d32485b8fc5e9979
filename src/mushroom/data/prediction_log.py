"""The durable prediction log: one SQLite database in WAL mode, one row per answer.

Why SQLite and not JSON lines: every batch of answers is one transaction, committed before
the answers are returned, so an answered prediction is in the log even if the server is
SIGKILLed right after (a committed WAL frame is in the OS page cache; ``synchronous=normal``
trades only the last transactions before a power loss for ~no fsync cost). Concurrent
writers, threads or worker processes, are serialised by SQLite's lock: rows cannot tear or
interleave, which appends from several processes to one text file cannot promise. Each
trait is a column holding its readable name (``missing``: "not recorded", as in the
prepared data) or measurement, NULL where the description left it out (unknown), so the
drift stage reads the log straight into a frame. Each answer also keeps whether its
description was unfamiliar and its reasons.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from mushroom.core import paths
from mushroom.core.catalogue import CATALOGUES, POISONOUS
from mushroom.core.paths import read_only_uri

ENV_VAR = "MUSHROOM_PREDICTION_LOG"
META_COLUMNS = (
    "request_id",
    "logged_at",
    "model_version",
    "dataset",
    "probability",
    "verdict",
    "unfamiliar",
    "reasons",
)
ADDED_COLUMNS = {"unfamiliar": "integer not null default 0", "reasons": "text not null default ''"}
"""Columns later versions added: a log written before them (or before a trait was
catalogued) gains them when opened."""
TRAIT_COLUMNS = tuple(dict.fromkeys(t.name for c in CATALOGUES.values() for t in c.traits))
LABEL = "true_class"
"""The feedback label beside each answer read from the log (None until given)."""
SOURCE_COLUMN = "text not null default ''"
"""Who gave a label: through the service ``token`` (``MUSHROOM_FEEDBACK_TOKEN`` is set and
was given) or ``open`` (no token configured); '' when not said (labels stored before
sources were kept, or in-process callers that name none)."""
RETRY_SECONDS = 1.0
CORRUPTION = ("SQLITE_CORRUPT", "SQLITE_NOTADB")

logger = logging.getLogger(__name__)


class LabelledAnswer(NamedTuple):
    verdict: str
    model_version: str


class Label(NamedTuple):
    """What storing a label did. ``counts_as`` is the request's label now: ``poisonous``
    once any label said so (the safe label wins). ``newly`` is the class it newly counts as
    (None when it counted so before); ``conflict``, whether it disagreed with the label
    stored before (kept, with its source, in ``label_conflicts``)."""

    answered: LabelledAnswer
    counts_as: str
    newly: str | None
    conflict: bool


class UnknownPrediction(LookupError):
    pass


class LogUnavailable(RuntimeError):
    """The log cannot record answers now; ``cause`` says why, in SQLite's or the system's
    words."""

    def __init__(self, path: Path, cause: str):
        super().__init__(f"prediction log {path}: {cause}")
        self.path, self.cause = path, cause


def log_path(start: Path | None = None) -> Path:
    """Where answers are logged: ``MUSHROOM_PREDICTION_LOG`` when set, else the project's
    ``data/live/predictions.db``, the project found from ``start`` (the working directory)
    upwards. A bento served from the project's own store (``.bentoml/`` inside it) runs in
    its folder there, so it logs where ``mushroom monitor check --live`` looks by default."""
    configured = os.environ.get(ENV_VAR)
    return Path(configured) if configured else paths.project_root(start) / paths.PREDICTION_LOG


LOG_HELP = f"the live log (default: ${ENV_VAR}, else the project's {paths.PREDICTION_LOG})"


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


def _file_id(path: Path) -> tuple[int, int] | None:
    version = _file_version(path)
    return version[:2] if version else None


def _file_version(path: Path) -> tuple[int, ...] | None:
    """Changes when the file is replaced or rewritten, as by restoring a backup over it."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


def _roll_back(db: sqlite3.Connection) -> None:
    """SQLite rolls a transaction back by itself after some errors (disk full, I/O error),
    and a rollback then fails: only roll back a transaction that is still open."""
    if db.in_transaction:
        db.execute("rollback")


def _private(path: Path) -> None:
    """The log readable by its owner alone: request ids are what a label needs, and the
    descriptions are the users'. A folder made for it is 0700; the file is created 0600, or
    closed to others if it is ours and more open (SQLite gives its -wal and -shm files the database
    file's mode). A folder that existed is left as it is: it may be shared."""
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


def _open(path: Path) -> sqlite3.Connection:
    """The log at ``path``, created if absent, its tables created or upgraded, and proven to
    take a row of every column (written and deleted in one transaction): what is wrong with
    it (a folder that cannot be made or written, a file that is not a database or is
    damaged, tables of another shape, a full disk) shows here rather than on the first
    answer. Raises ``LogUnavailable``."""
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
        traits = ", ".join(f"{name}" for name in TRAIT_COLUMNS)
        db.execute(
            "create table if not exists predictions (request_id text primary key, "
            "logged_at text not null, model_version text not null, dataset text not null, "
            f"probability real not null, verdict text not null, unfamiliar integer not null, "
            f"reasons text not null, {traits})"
        )
        present = {row[1] for row in db.execute("pragma table_info(predictions)")}
        lacking = [c for c in META_COLUMNS if c not in present | ADDED_COLUMNS.keys()]
        if lacking:
            raise LogUnavailable(
                path, f"its table predictions is not a prediction log: no {', '.join(lacking)}"
            )
        added = ADDED_COLUMNS | {trait: "" for trait in TRAIT_COLUMNS}
        for column, declaration in added.items():
            if column not in present:
                db.execute(f"alter table predictions add column {column} {declaration}")
        db.execute(
            "create table if not exists feedback (request_id text primary key "
            "references predictions, true_class text not null "
            "check (true_class in ('edible', 'poisonous')), received_at text not null)"
        )
        labelled = {row[1] for row in db.execute("pragma table_info(feedback)")}
        if "source" not in labelled:
            db.execute(f"alter table feedback add column source {SOURCE_COLUMN}")
        db.execute(
            "create table if not exists label_conflicts (request_id text not null "
            "references predictions, true_class text not null "
            "check (true_class in ('edible', 'poisonous')), received_at text not null, "
            f"source {SOURCE_COLUMN})"
        )
        columns = META_COLUMNS + TRAIT_COLUMNS
        db.execute("begin immediate")
        try:
            db.execute(
                f"insert into predictions ({', '.join(columns)}) "
                f"values ({', '.join('?' * len(columns))})",
                ("", "", "", "", 0.0, "", 0, "") + (None,) * len(TRAIT_COLUMNS),
            )
            db.execute("insert into feedback values ('', 'edible', '', '')")
            db.execute("delete from feedback where request_id = ''")
            db.execute("delete from predictions where request_id = ''")
            db.execute("commit")  # written out, so a full disk shows here
        except sqlite3.Error:
            with contextlib.suppress(sqlite3.Error):  # the first error is the one to tell
                _roll_back(db)
            raise
    except (OSError, sqlite3.Error, LogUnavailable) as exc:
        if db is not None:
            with contextlib.suppress(sqlite3.Error):
                db.close()
        if isinstance(exc, LogUnavailable):
            raise
        raise LogUnavailable(path, _describe_opening(exc, path)) from exc
    return db


class PredictionLog:
    """A failure of the log, at opening or later (disk full, a damaged page, tables of
    another shape, a read-only file), makes ``append`` and ``add_feedback`` raise
    ``LogUnavailable``, nothing written, and ``ready()`` false. It is reopened at most every
    ``retry_seconds`` after that, and works again once the cause is gone; a damaged file is
    only retried once it changed (restored, replaced). A log file deleted or replaced while
    open is noticed before and after every transaction (a ``stat`` each, ~3 µs in all): SQLite would
    go on writing to the deleted file. Before, the file at the path is opened, or created
    anew; after, the answers just written went to the lost file, so they raise."""

    def __init__(self, path: str | Path | None = None, retry_seconds: float = RETRY_SECONDS):
        self.path = Path(path) if path else log_path()
        self.retry_seconds = retry_seconds
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._file: tuple[int, int] | None = None
        self._failure: LogUnavailable | None = None
        self._damaged: tuple[int, ...] | None = None
        self._retry_at = 0.0
        self._statements: dict[tuple[str, ...], str] = {}
        self.ready()

    @staticmethod
    def check(path: str | Path) -> None:
        """Raise ``LogUnavailable`` unless the log at ``path`` can record answers."""
        _open(Path(path)).close()

    def ready(self) -> bool:
        """Whether the log can record answers now: (re)opens it if closed and a retry is due."""
        with self._lock:
            try:
                self._usable()
            except LogUnavailable:
                return False
            return True

    def append(self, traits: Sequence[str], rows: Sequence[tuple]) -> None:
        """Rows of META_COLUMNS followed by the values of ``traits``, in one transaction."""
        statement = self._statements.get(tuple(traits))
        if statement is None:
            columns = META_COLUMNS + tuple(traits)
            statement = (
                f"insert into predictions ({', '.join(columns)}) "
                f"values ({', '.join('?' * len(columns))})"
            )
            self._statements[tuple(traits)] = statement
        with self._transaction() as db:
            db.executemany(statement, rows)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, under the lock: committed, or rolled back with an SQLite
        failure raised as ``LogUnavailable`` (any other error raised as it is); then the
        file is checked to be still at its path."""
        with self._lock:
            db = self._usable()
            try:
                db.execute("begin immediate")
                yield db
                db.execute("commit")
            except sqlite3.Error as exc:
                raise self._failed(exc) from exc
            except BaseException:
                self._abandon(db)
                raise
            self._still_at_path()

    def add_feedback(
        self, request_id: str, true_class: str, received_at: str, source: str = ""
    ) -> Label:
        """Store the true class found out later, from ``source``, with the answer it labels,
        read in the same transaction. Raises ``UnknownPrediction`` for a request id never
        answered.

        A label that disagrees with the one stored before is never refused: it is kept in
        ``label_conflicts``, and the request counts as poisonous from then on, whichever
        came first (a wrong first *edible* label once made the true *poisonous* one a 409,
        so no alarm and no replay gate ever saw it)."""
        with self._transaction() as db:
            answered = db.execute(
                "select verdict, model_version from predictions where request_id = ?",
                (request_id,),
            ).fetchone()
            if not answered:
                raise UnknownPrediction(f"request_id {request_id!r}: no such prediction")
            stored = db.execute(
                "select true_class from feedback where request_id = ?", (request_id,)
            ).fetchone()
            row = (request_id, true_class, received_at, source)
            if not stored:
                db.execute("insert into feedback values (?, ?, ?, ?)", row)
            elif stored[0] != true_class:
                db.execute("insert into label_conflicts values (?, ?, ?, ?)", row)
                if true_class == POISONOUS:
                    db.execute(
                        "update feedback set true_class = ?, received_at = ?, source = ? "
                        "where request_id = ?",
                        (true_class, received_at, source, request_id),
                    )
        before = stored[0] if stored else None
        counts_as = POISONOUS if POISONOUS in (before, true_class) else true_class
        newly = None if counts_as == before else counts_as
        conflict = before not in (None, true_class)
        if conflict:
            logger.warning(
                "label conflict: request %s was labelled %s, now %s (source %r): it counts as %s",
                request_id,
                before,
                true_class,
                source,
                counts_as,
            )
        return Label(LabelledAnswer(*answered), counts_as, newly, conflict)

    def close(self) -> None:
        with self._lock:
            self._close()

    def _usable(self) -> sqlite3.Connection:
        """The open connection, (re)opened if need be; ``LogUnavailable`` otherwise."""
        if self._db is not None:
            if _file_id(self.path) == self._file:
                return self._db
            self._close()
            logger.warning(
                "prediction log %s was deleted or replaced while in use: opening what is "
                "at that path now (created if absent)",
                self.path,
            )
        elif self._failure is not None and (
            time.monotonic() < self._retry_at
            or (self._damaged is not None and self._damaged == _file_version(self.path))
        ):
            raise self._failure
        try:
            db = _open(self.path)
        except LogUnavailable as failure:
            self._failed(failure)
            raise
        self._db, self._file = db, _file_id(self.path)
        if self._failure is not None:
            logger.warning("prediction log %s works again", self.path)
            self._failure, self._damaged = None, None
        return db

    def _failed(self, exc: BaseException) -> LogUnavailable:
        """Close the connection (which ends any transaction left) and refuse until a retry."""
        failure = (
            exc if isinstance(exc, LogUnavailable) else LogUnavailable(self.path, _describe(exc))
        )
        self._close()
        if self._failure is None or self._failure.cause != failure.cause:
            logger.error("%s; refusing answers until it works again", failure)
        self._failure, self._retry_at = failure, time.monotonic() + self.retry_seconds
        self._damaged = _file_version(self.path) if _is_corruption(exc) else None
        return failure

    def _abandon(self, db: sqlite3.Connection) -> None:
        """After an error that is not SQLite's: undo the transaction. If that fails, the
        connection is dropped (reopened next time) and the first error is the one raised."""
        try:
            _roll_back(db)
        except sqlite3.Error as exc:
            self._failed(exc)

    def _still_at_path(self) -> None:
        """After a commit: the rows just written are in the file at the path."""
        if _file_id(self.path) != self._file:
            self._close()
            failure = LogUnavailable(
                self.path, "the file was deleted or replaced while these answers were written"
            )
            logger.warning(
                "%s: they are refused; the next go to the file now at that path", failure
            )
            raise failure

    def _close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
        self._db = self._file = None


def columns(dataset: str | None = None) -> list[str]:
    """What ``read_predictions`` returns: the answers' columns, the traits (``dataset``'s, or
    every catalogued one) and ``LABEL``."""
    traits = [t.name for t in CATALOGUES[dataset].traits] if dataset else list(TRAIT_COLUMNS)
    return [*META_COLUMNS, *traits, LABEL]


def read_predictions(path: str | Path, dataset: str | None = None) -> pd.DataFrame:
    """The log as a frame (``columns``), oldest first, with each answer's feedback label
    (``LABEL``, None until given); only ``dataset``'s rows and traits when one is named. Read in one
    statement (one read transaction: a consistent state while the service writes); a file
    that is not a readable prediction log raises ``LogUnavailable``."""
    path = Path(path)
    if not path.exists():
        raise LogUnavailable(path, "no such file (serve and answer first, or name it with --log)")
    if path.is_dir():
        raise LogUnavailable(path, "is a folder, not a database file")
    answer_columns = ", ".join(f"p.{c}" for c in columns(dataset)[:-1])
    where, params = ("where p.dataset = ?", (dataset,)) if dataset else ("", ())
    try:
        with contextlib.closing(sqlite3.connect(read_only_uri(path), uri=True)) as db:
            labels = db.execute("select 1 from sqlite_master where name = 'feedback'").fetchone()
            label, join = (
                ("f.true_class", "left join feedback f using (request_id)")
                if labels
                else ("null as true_class", "")
            )
            return pd.read_sql(
                f"select {answer_columns}, {label} from predictions p {join} {where} "
                "order by p.rowid",
                db,
                params=params,
            )
    except (sqlite3.Error, pd.errors.DatabaseError) as exc:
        cause = exc.__cause__ or exc  # pandas' message repeats the whole statement
        raise LogUnavailable(path, str(cause)) from exc
