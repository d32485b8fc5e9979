"""The durable prediction log: one row per answer, and the labels given later.

Where it is, ``MUSHROOM_PREDICTION_LOG``, chooses the database: a file path, SQLite, the
embedded default (``mushroom.data.log_sqlite``), or a ``postgresql://`` URL, one log for
many replicas (``mushroom.data.log_postgres``). Both keep the same tables and promises:
nothing answered unlogged (each batch of answers committed before it is returned), a label
never rewritten, a log that cannot record refusing answers (``LogUnavailable``) until it
works again. Each trait is a column holding its readable name (``missing``: "not recorded",
as in the prepared data) or measurement, NULL where the description left it out (unknown),
so the readers give frames the drift stage takes as they are. Each answer also keeps
whether its description was unfamiliar and its reasons.

What reads it is ``mushroom.data.log_reading``; what writes it, ``PredictionLog``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Sequence
from typing import NamedTuple

from mushroom.core.catalogue import POISONOUS
from mushroom.data.log_schema import (
    ENV_VAR,
    LABEL,
    LOG_HELP,
    META_COLUMNS,
    TRAIT_COLUMNS,
    Database,
    Location,
    LogUnavailable,
    columns,
    insert_answers,
    location,
    log_location,
)
from mushroom.data.log_sqlite import SqliteStore

__all__ = [
    "ENV_VAR",
    "LABEL",
    "LOG_HELP",
    "META_COLUMNS",
    "TRAIT_COLUMNS",
    "Database",
    "Label",
    "LabelledAnswer",
    "Location",
    "LogUnavailable",
    "PredictionLog",
    "UnknownPrediction",
    "columns",
    "location",
    "log_location",
    "store_for",
]

RETRY_SECONDS = 1.0

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


def store_for(where: Location):
    """The database behind ``where``: SQLite for a path, PostgreSQL for a URL."""
    if isinstance(where, Database):
        from mushroom.data.log_postgres import PostgresStore  # psycopg only when used

        return PostgresStore(where)
    return SqliteStore(where)


class PredictionLog:
    """A failure of the log, at opening or later (disk full, a damaged page, tables of
    another shape, a read-only file, a database server stopped), makes ``append`` and
    ``add_feedback`` raise ``LogUnavailable``, nothing written, and ``ready()`` false. It is
    reopened at most every ``retry_seconds`` after that, and works again once the cause is
    gone. An SQLite file deleted or replaced while open: before a transaction, the file at
    the path is opened, or created anew; after one, the answers just written went to the
    lost file, so they raise."""

    def __init__(self, where: str | Location | None = None, retry_seconds: float = RETRY_SECONDS):
        self.path = location(where) if where else log_location()
        self.retry_seconds = retry_seconds
        self._store = store_for(self.path)
        self._lock = threading.Lock()
        self._db = None
        self._failure: LogUnavailable | None = None
        self._retry_at = 0.0
        self._statements: dict[tuple[str, ...], str] = {}
        self.ready()

    @staticmethod
    def check(where: str | Location) -> None:
        """Raise ``LogUnavailable`` unless the log at ``where`` can record answers."""
        store_for(location(where)).open().close()

    def ready(self) -> bool:
        """Whether the log can record answers now: (re)opens it if closed and a retry is due."""
        with self._lock:
            try:
                self._usable()
            except LogUnavailable:
                return False
            return True

    def _sql(self, statement: str) -> str:
        return statement.replace("?", self._store.placeholder)

    def append(self, traits: Sequence[str], rows: Sequence[tuple]) -> None:
        """Rows of META_COLUMNS followed by the values of ``traits``, in one transaction."""
        statement = self._statements.get(tuple(traits))
        if statement is None:
            statement = insert_answers(traits, self._store.placeholder)
            self._statements[tuple(traits)] = statement
        with self._transaction() as db:
            db.cursor().executemany(statement, rows)

    @contextlib.contextmanager
    def _transaction(self):
        """One write transaction, under the lock: committed, or rolled back with a database
        failure raised as ``LogUnavailable`` (any other error raised as it is); then, for a
        file, checked to be still at its path."""
        with self._lock:
            db = self._usable()
            try:
                self._store.begin(db)
                yield db
                self._store.commit(db)
            except self._store.errors as exc:
                raise self._failed(exc) from exc
            except BaseException:
                self._abandon(db)
                raise
            try:
                self._store.written()
            except LogUnavailable as failure:
                self._close()
                logger.warning(
                    "%s: they are refused; the next go to the file now at that path", failure
                )
                raise

    def add_feedback(
        self, request_id: str, true_class: str, received_at: str, source: str = ""
    ) -> Label:
        """Store the true class found out later, from ``source``, with the answer it labels,
        read in the same transaction (its row locked where the database can). Raises
        ``UnknownPrediction`` for a request id never answered.

        A label that disagrees with the one stored before is never refused: it is kept in
        ``label_conflicts``, and the request counts as poisonous from then on, whichever
        came first (a wrong first *edible* label once made the true *poisonous* one a 409,
        so no alarm and no replay gate ever saw it)."""
        sql = self._sql
        with self._transaction() as db:
            answered = db.execute(
                sql("select verdict, model_version from predictions where request_id = ?")
                + self._store.lock_row,
                (request_id,),
            ).fetchone()
            if not answered:
                raise UnknownPrediction(f"request_id {request_id!r}: no such prediction")
            stored = db.execute(
                sql("select true_class from feedback where request_id = ?"), (request_id,)
            ).fetchone()
            row = (request_id, true_class, received_at, source)
            if not stored:
                db.execute(sql("insert into feedback values (?, ?, ?, ?)"), row)
            elif stored[0] != true_class:
                db.execute(sql("insert into label_conflicts values (?, ?, ?, ?)"), row)
                if true_class == POISONOUS:
                    db.execute(
                        sql(
                            "update feedback set true_class = ?, received_at = ?, source = ? "
                            "where request_id = ?"
                        ),
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

    def _usable(self):
        """The open connection, (re)opened if need be; ``LogUnavailable`` otherwise."""
        if self._db is not None:
            if self._store.in_use():
                return self._db
            self._close()
            logger.warning(
                "prediction log %s was deleted or replaced while in use: opening what is "
                "at that path now (created if absent)",
                self.path,
            )
        elif self._failure is not None and (
            time.monotonic() < self._retry_at or self._store.blocked()
        ):
            raise self._failure
        try:
            db = self._store.open()
        except LogUnavailable as failure:
            self._failed(failure)
            raise
        self._db = db
        if self._failure is not None:
            logger.warning("prediction log %s works again", self.path)
            self._failure = None
        return db

    def _failed(self, exc: BaseException) -> LogUnavailable:
        """Close the connection (which ends any transaction left) and refuse until a retry."""
        cause = self._store.failed(exc)
        failure = exc if isinstance(exc, LogUnavailable) else LogUnavailable(self.path, cause)
        self._close()
        if self._failure is None or self._failure.cause != failure.cause:
            logger.error("%s; refusing answers until it works again", failure)
        self._failure, self._retry_at = failure, time.monotonic() + self.retry_seconds
        return failure

    def _abandon(self, db) -> None:
        """After an error that is not the database's: undo the transaction. If that fails,
        the connection is dropped (reopened next time) and the first error is the one
        raised."""
        try:
            self._store.roll_back(db)
        except self._store.errors as exc:
            self._failed(exc)

    def _close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(*self._store.errors):
                self._db.close()
        self._db = None
