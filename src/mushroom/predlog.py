"""The durable prediction log: one SQLite database in WAL mode.

Why SQLite and not JSON lines: every batch of answers is one transaction, committed before
the answers are returned, so a prediction that was answered is in the log even if the
server is SIGKILLed right after (a committed WAL frame is in the OS page cache; only a
power loss could take it, and ``synchronous=FULL`` covers that at ~1 fsync per batch).
Concurrent writers (threads, worker processes) are serialised by SQLite's lock: rows can
never interleave or tear, which appends from several processes to one text file cannot
promise. The drift stage and feedback labels query it with SQL.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PATH = Path("data/monitoring/predictions.db")
ENV_VAR = "MUSHROOM_PREDICTION_LOG"

SCHEMA = """
create table if not exists predictions (
    request_id    text primary key,
    logged_at     text not null,   -- UTC, ISO 8601
    model_version text not null,
    probability   real not null,   -- P(poisonous)
    verdict       text not null,
    traits        text not null    -- JSON object: trait -> readable name, number or null
)
"""


@dataclass(frozen=True)
class Prediction:
    request_id: str
    logged_at: str
    model_version: str
    probability: float
    verdict: str
    traits: dict


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
        self._db.execute(SCHEMA)

    def append(self, predictions: Iterable[Prediction]) -> None:
        rows = [
            (
                p.request_id,
                p.logged_at,
                p.model_version,
                p.probability,
                p.verdict,
                json.dumps(p.traits, separators=(",", ":")),
            )
            for p in predictions
        ]
        with self._lock:
            self._db.execute("begin immediate")
            try:
                self._db.executemany("insert into predictions values (?, ?, ?, ?, ?, ?)", rows)
                self._db.execute("commit")
            except BaseException:
                self._db.execute("rollback")
                raise

    def close(self) -> None:
        self._db.close()


def read_predictions(path: str | Path) -> list[Prediction]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute("select * from predictions order by logged_at, rowid").fetchall()
    return [Prediction(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows]
