"""The prediction log in a PostgreSQL database: one log for many replicas.

The same tables and promises as the SQLite file (``mushroom.data.log_sqlite``): each batch
of answers one transaction committed before they are returned, a label and the answer it
labels read and written in one transaction (the answer's row locked, so two replicas
labelling one request at once are serialised as SQLite's lock serialises them). Tables are
created or upgraded at start-up under an advisory lock, so replicas starting together do
not race. ``seq``, an identity column, keeps the order answers were logged in, which SQLite's
rowid keeps. A connection lost (the server stopped, restarted, unreachable) fails the
transaction under way; ``PredictionLog`` then refuses answers until a new connection works.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from itertools import count

import psycopg

from mushroom.data.log_schema import (
    LABEL_COLUMNS,
    META_COLUMNS,
    NUMERIC_TRAITS,
    PROBE_ROW,
    SOURCE_COLUMN,
    TRAIT_COLUMNS,
    Database,
    LogUnavailable,
    insert_answers,
)

CONNECT_SECONDS = 5
STATEMENT_MILLISECONDS = 10_000
"""A database that stops answering fails the service's request in bounded time (then 503),
rather than holding it until BentoML's timeout. Readers have no such bound: ordering a
log of 5 x 10^6 answers before its first row took longer."""
MIGRATION_LOCK = 0x6D757368  # any fixed key: the replicas of one log take the same lock
CHUNK_ROWS_FETCHED = 10_000
_cursor_names = count()


def _describe(exc: BaseException) -> str:
    return re.sub(r"\s+", " ", str(exc)).strip() or type(exc).__name__


def _declaration(trait: str) -> str:
    return "double precision" if trait in NUMERIC_TRAITS else "text"


def _create_tables(db: psycopg.Connection, where: Database) -> None:
    traits = ", ".join(f"{t} {_declaration(t)}" for t in TRAIT_COLUMNS)
    db.execute("select pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
    db.execute(
        "create table if not exists predictions (seq bigint generated always as identity, "
        "request_id text primary key, logged_at text not null, model_version text not null, "
        "dataset text not null, probability double precision not null, verdict text not null, "
        f"unfamiliar boolean not null, reasons text not null, {traits})"
    )
    present = {
        row[0]
        for row in db.execute(
            "select column_name from information_schema.columns "
            "where table_schema = current_schema() and table_name = 'predictions'"
        )
    }
    lacking = [c for c in ("seq", *META_COLUMNS) if c not in present]
    if lacking:
        raise LogUnavailable(
            where, f"its table predictions is not a prediction log: no {', '.join(lacking)}"
        )
    for trait in TRAIT_COLUMNS:
        if trait not in present:
            db.execute(f"alter table predictions add column {trait} {_declaration(trait)}")
    db.execute("create index if not exists predictions_dataset on predictions (dataset, seq)")
    db.execute(
        "create table if not exists feedback (request_id text primary key "
        f"references predictions, {LABEL_COLUMNS}, source {SOURCE_COLUMN})"
    )
    db.execute(
        "create table if not exists label_conflicts (request_id text not null "
        f"references predictions, {LABEL_COLUMNS}, source {SOURCE_COLUMN})"
    )


class PostgresStore:
    """``mushroom.data.prediction_log``'s database at a ``postgresql://`` URL."""

    placeholder, lock_row, order = "%s", " for update", "p.seq"
    errors = (psycopg.Error,)

    def __init__(self, database: Database):
        self.where = database

    def _connect(self, statement_milliseconds: int, **settings) -> psycopg.Connection:
        return psycopg.connect(
            self.where.url,
            connect_timeout=CONNECT_SECONDS,
            options=f"-c statement_timeout={statement_milliseconds}",
            **settings,
        )

    def open(self) -> psycopg.Connection:
        """A connection, the tables created or upgraded, proven to take a row of every
        column (written, then rolled back). Raises ``LogUnavailable``."""
        db = None
        try:
            db = self._connect(STATEMENT_MILLISECONDS, autocommit=True)
            with db.transaction():
                _create_tables(db, self.where)
            self.begin(db)
            db.execute(insert_answers(TRAIT_COLUMNS, self.placeholder), PROBE_ROW)
            db.execute("insert into feedback values ('', 'edible', '', '')")
            self.roll_back(db)
        except (psycopg.Error, LogUnavailable) as exc:
            if db is not None:
                db.close()
            if isinstance(exc, LogUnavailable):
                raise
            raise LogUnavailable(self.where, _describe(exc)) from exc
        return db

    @staticmethod
    def begin(db: psycopg.Connection) -> None:
        db.execute("begin")

    @staticmethod
    def commit(db: psycopg.Connection) -> None:
        db.execute("commit")

    @staticmethod
    def roll_back(db: psycopg.Connection) -> None:
        if not db.closed and db.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            db.execute("rollback")

    @staticmethod
    def in_use() -> bool:
        return True

    @staticmethod
    def written() -> None:
        """Committed is in the database: nothing to check after."""

    @staticmethod
    def blocked() -> bool:
        return False

    @staticmethod
    def failed(exc: BaseException) -> str:
        return _describe(exc)

    @contextlib.contextmanager
    def reading(self) -> Iterator[psycopg.Connection]:
        """A read-only connection in one repeatable-read transaction: one consistent state
        across its statements while the replicas write."""
        try:
            with self._connect(0) as db:
                db.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
                db.read_only = True
                if db.execute("select to_regclass('predictions')").fetchone()[0] is None:
                    raise LogUnavailable(
                        self.where, "holds no prediction log (no table predictions)"
                    )
                yield db
                db.rollback()
        except psycopg.Error as exc:
            raise LogUnavailable(self.where, _describe(exc)) from exc

    @staticmethod
    def has_feedback(db: psycopg.Connection) -> bool:
        return db.execute("select to_regclass('feedback')").fetchone()[0] is not None

    @staticmethod
    def rows(db: psycopg.Connection, statement: str, params: tuple):
        """A server-side cursor over ``statement``'s rows: fetched as asked, never all at
        once."""
        cursor = db.cursor(name=f"log_rows_{next(_cursor_names)}")
        cursor.itersize = CHUNK_ROWS_FETCHED
        cursor.execute(statement, params)
        return cursor
