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

import os
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from mushroom.catalogue import CATALOGUES

DEFAULT_PATH = Path("data/monitoring/predictions.db")
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
"""Columns later versions added: a log written before them gains them when opened."""
TRAIT_COLUMNS = tuple(dict.fromkeys(t.name for c in CATALOGUES.values() for t in c.traits))


class UnknownPrediction(LookupError):
    pass


class LabelConflict(ValueError):
    pass


def log_path() -> Path:
    return Path(os.environ.get(ENV_VAR) or DEFAULT_PATH)


class PredictionLog:
    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else log_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            self.path, check_same_thread=False, timeout=30, isolation_level=None
        )
        self._db.execute("pragma journal_mode=wal")
        self._db.execute("pragma synchronous=normal")
        traits = ", ".join(f"{name}" for name in TRAIT_COLUMNS)
        self._db.execute(
            "create table if not exists predictions (request_id text primary key, "
            "logged_at text not null, model_version text not null, dataset text not null, "
            f"probability real not null, verdict text not null, unfamiliar integer not null, "
            f"reasons text not null, {traits})"
        )
        present = {row[1] for row in self._db.execute("pragma table_info(predictions)")}
        for column, declaration in ADDED_COLUMNS.items():
            if column not in present:
                self._db.execute(f"alter table predictions add column {column} {declaration}")
        self._db.execute(
            "create table if not exists feedback (request_id text primary key "
            "references predictions, true_class text not null "
            "check (true_class in ('edible', 'poisonous')), received_at text not null)"
        )
        self._statements: dict[tuple[str, ...], str] = {}

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
        with self._lock:
            self._db.execute("begin immediate")
            try:
                self._db.executemany(statement, rows)
                self._db.execute("commit")
            except BaseException:
                self._db.execute("rollback")
                raise

    def add_feedback(self, request_id: str, true_class: str, received_at: str) -> bool:
        """Store the true class found out later; False if it was already stored.

        Raises ``UnknownPrediction`` for a request id never answered and ``LabelConflict``
        when a different class was stored before: a label, once given, is not rewritten."""
        with self._lock:
            self._db.execute("begin immediate")
            try:
                if not self._db.execute(
                    "select 1 from predictions where request_id = ?", (request_id,)
                ).fetchone():
                    raise UnknownPrediction(f"request_id {request_id!r}: no such prediction")
                stored = self._db.execute(
                    "select true_class from feedback where request_id = ?", (request_id,)
                ).fetchone()
                if stored and stored[0] != true_class:
                    raise LabelConflict(
                        f"request_id {request_id!r} is already labelled "
                        f"{stored[0]!r}, not {true_class!r}"
                    )
                if not stored:
                    self._db.execute(
                        "insert into feedback values (?, ?, ?)",
                        (request_id, true_class, received_at),
                    )
                self._db.execute("commit")
                return not stored
            except BaseException:
                self._db.execute("rollback")
                raise

    def close(self) -> None:
        self._db.close()


def read_predictions(path: str | Path, dataset: str | None = None) -> pd.DataFrame:
    """The log as a frame, oldest first, with each answer's feedback label (``true_class``,
    None until given); only ``dataset``'s rows and traits when one is named."""
    traits = [t.name for t in CATALOGUES[dataset].traits] if dataset else list(TRAIT_COLUMNS)
    columns = ", ".join(f"p.{c}" for c in META_COLUMNS + tuple(traits))
    where, params = ("where p.dataset = ?", (dataset,)) if dataset else ("", ())
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        labels = db.execute("select 1 from sqlite_master where name = 'feedback'").fetchone()
        label, join = (
            ("f.true_class", "left join feedback f using (request_id)")
            if labels
            else ("null as true_class", "")
        )
        return pd.read_sql(
            f"select {columns}, {label} from predictions p {join} {where} order by p.rowid",
            db,
            params=params,
        )
