"""Reading the prediction log (``mushroom.data.prediction_log``), live or as a snapshot.

Every reader streams: ``reading`` gives the log in chunks from one consistent read (a live
log while the service writes, SQLite or PostgreSQL, or a snapshot taken of it), so memory
stays flat however long the log grows: snapshot, export, replay and drift hold a chunk, the
labels and what they keep, never the whole log.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mushroom.core.atomic import atomic_path
from mushroom.data.log_schema import (
    LABEL,
    NUMERIC_TRAITS,
    Database,
    Location,
    LogUnavailable,
    columns,
    location,
    typed,
)
from mushroom.data.prediction_log import store_for

CHUNK_ROWS = 50_000
"""Rows a reader holds at once: ~50 MB of frame whatever the log's size."""
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
"""How the service writes ``logged_at``: in this form times sort as text, in SQL too."""


def exists(where: Location) -> bool:
    """Whether there may be a log to read: a database always may (reading says if not)."""
    return isinstance(where, Database) or where.exists()


class _DatabaseReader:
    """One read transaction of a live log (``reading``)."""

    def __init__(self, store, db):
        self._store, self._db = store, db
        self._labels = store.has_feedback(db)

    def _one(self, statement: str, params: tuple):
        statement = statement.replace("?", self._store.placeholder)
        return self._db.execute(statement, params).fetchone()

    def count_by_dataset(self) -> dict[str, int]:
        statement = "select dataset, count(*) from predictions group by dataset order by dataset"
        return {name: int(n) for name, n in self._db.execute(statement).fetchall()}

    def chunks(
        self,
        dataset: str | None = None,
        *,
        labelled_only: bool = False,
        days: float = 0,
        last: int = 0,
        chunk_rows: int = CHUNK_ROWS,
    ) -> Iterator[pd.DataFrame]:
        names = columns(dataset)
        if labelled_only and not self._labels:
            return
        join = "left join feedback f using (request_id)" if self._labels else ""
        label = "f.true_class" if self._labels else "null"
        filters, params = ["1 = 1"], []
        if dataset:
            filters.append("p.dataset = ?")
            params.append(dataset)
        if labelled_only:
            filters.append("f.true_class is not null")
        order = self._store.order
        if days:
            where = " and ".join(filters)
            newest = self._one(
                f"select max(p.logged_at) from predictions p {join} where {where}", tuple(params)
            )[0]
            if newest is not None:
                filters.append("p.logged_at >= ?")
                params.append(_days_before(newest, days))
        if last:
            where = " and ".join(filters)
            start = self._one(
                f"select {order} from predictions p {join} where {where} "
                f"order by {order} desc limit 1 offset ?",
                (*params, last - 1),
            )
            if start is not None:
                filters.append(f"{order} >= ?")
                params.append(start[0])
        statement = (
            f"select {', '.join(f'p.{c}' for c in names[:-1])}, {label} from predictions p "
            f"{join} where {' and '.join(filters)} order by {order}"
        ).replace("?", self._store.placeholder)
        cursor = self._store.rows(self._db, statement, tuple(params))
        while batch := cursor.fetchmany(chunk_rows):
            yield typed(pd.DataFrame.from_records(batch, columns=names))


def _days_before(newest: str, days: float) -> str:
    """The logged time ``days`` before ``newest``, in ``TIME_FORMAT``."""
    moment = pd.Timestamp(newest)
    moment = moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")
    return (moment - timedelta(days=days)).strftime(TIME_FORMAT)


class _SnapshotReader:
    """A snapshot (``write_snapshot``'s Parquet file) read as a live log is."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self._file = pq.ParquetFile(path)
        except FileNotFoundError:
            hint = "take one with: mushroom monitor snapshot"
            raise LogUnavailable(path, f"no such file ({hint})") from None
        except (OSError, ValueError) as exc:  # pyarrow's errors are ValueErrors
            raise LogUnavailable(path, f"not a snapshot of the prediction log: {exc}") from exc

    def _read(self, names: list[str]) -> pa.Table:
        absent = [c for c in names if c not in self._file.schema_arrow.names]
        if absent:
            problem = f"not a snapshot of the prediction log: no column {', '.join(absent)}"
            raise LogUnavailable(self.path, problem)
        return self._file.read(columns=names)

    def count_by_dataset(self) -> dict[str, int]:
        counts = pc.value_counts(self._read(["dataset"]).column("dataset")).to_pylist()
        return {c["values"]: c["counts"] for c in sorted(counts, key=lambda c: c["values"])}

    def chunks(
        self,
        dataset: str | None = None,
        *,
        labelled_only: bool = False,
        days: float = 0,
        last: int = 0,
        chunk_rows: int = CHUNK_ROWS,
    ) -> Iterator[pd.DataFrame]:
        names = columns(dataset)
        index = self._read(["dataset", "logged_at", LABEL])
        keep = np.ones(index.num_rows, dtype=bool)
        if dataset:
            keep &= _true(pc.equal(index["dataset"], dataset))
        if labelled_only:
            keep &= _true(pc.is_valid(index[LABEL]))
        if days and keep.any():
            newest = pc.max(index["logged_at"].filter(pa.array(keep))).as_py()
            keep &= _true(pc.greater_equal(index["logged_at"], _days_before(newest, days)))
        if last:
            positions = keep.nonzero()[0]
            keep[positions[: max(len(positions) - last, 0)]] = False
        self._read(names)  # a missing column is named before any row is given
        start = 0
        for batch in self._file.iter_batches(batch_size=chunk_rows, columns=names):
            chosen = keep[start : start + batch.num_rows]
            start += batch.num_rows
            if chosen.any():
                yield typed(batch.to_pandas()[chosen].reset_index(drop=True))


def _true(mask: pa.ChunkedArray) -> np.ndarray:
    return mask.fill_null(False).to_numpy(zero_copy_only=False)


@contextlib.contextmanager
def reading(where: Location):
    """One consistent read of the log at ``where``: a live log (SQLite file or PostgreSQL),
    or a snapshot of one (``.parquet``). The reader's ``chunks(dataset, labelled_only=,
    days=, last=)`` yields its answers oldest first, as frames of ``columns(dataset)``;
    ``count_by_dataset()`` counts them. A log that cannot be read raises ``LogUnavailable``."""
    where = location(where)
    if isinstance(where, Path) and where.suffix == ".parquet":
        yield _SnapshotReader(where)
        return
    store = store_for(where)
    with store.reading() as db:
        yield _DatabaseReader(store, db)


def read_predictions(
    where: Location, dataset: str | None = None, *, labelled_only: bool = False
) -> pd.DataFrame:
    """The log's answers (``dataset``'s, and only the labelled ones if asked) as one frame
    of ``columns(dataset)``, oldest first: for what is bounded (the labels) or small."""
    with reading(where) as log:
        chunks = list(log.chunks(dataset, labelled_only=labelled_only))
    if not chunks:
        return typed(pd.DataFrame(columns=columns(dataset)))
    return pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0]


def arrow_schema() -> pa.Schema:
    """A snapshot's columns, whatever the chunks hold."""
    kinds = {"probability": pa.float64(), "unfamiliar": pa.int64()}
    kinds |= dict.fromkeys(NUMERIC_TRAITS, pa.float64())
    return pa.schema([(name, kinds.get(name, pa.string())) for name in columns()])


def write_snapshot(where: Location, out: Path) -> int:
    """Every answer in the live log with its label, from one read, streamed in chunks into
    ``out``, Parquet, written atomically. Returns the number of answers."""
    schema, rows = arrow_schema(), 0
    with reading(where) as log, atomic_path(out) as tmp:
        with pq.ParquetWriter(tmp, schema) as writer:
            for chunk in log.chunks():
                writer.write_table(pa.Table.from_pandas(chunk, schema=schema, preserve_index=False))
                rows += len(chunk)
    return rows
