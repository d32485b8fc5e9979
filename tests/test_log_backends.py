"""The prediction log on SQLite and on a real PostgreSQL keeps the same promises, and every
reader streams: the same answers and labels read back from either, chunk by chunk, windowed
by days and rows alike, from a live log or a snapshot of it."""

from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd
import psycopg
import pytest

from mushroom.data.log_reading import read_predictions, reading, write_snapshot
from mushroom.data.log_schema import Database, location
from mushroom.data.prediction_log import (
    LogUnavailable,
    PredictionLog,
    UnknownPrediction,
    store_for,
)

TRAITS = ["odor", "cap_diameter"]


def rows(first: int, count: int, dataset: str = "uci", day: int = 1) -> list[tuple]:
    return [
        (
            f"{i:032x}",
            f"2026-12-{day:02d}T{i % 24:02d}:00:00Z",
            "m:1",
            dataset,
            (i % 100) / 100,
            ("edible", "poisonous", "uncertain")[i % 3],
            i % 7 == 0,
            "unfamiliar" if i % 7 == 0 else "",
            None if i % 5 == 0 else ("none", "foul")[i % 2],
            None if dataset == "uci" else float(i % 30),
        )
        for i in range(first, first + count)
    ]


@pytest.fixture(params=["sqlite", "postgres"])
def where(request, tmp_path):
    if request.param == "sqlite":
        return tmp_path / "predictions.db"
    return location(request.getfixturevalue("postgres").new_database())


def filled(where) -> PredictionLog:
    """Answers of two datasets over three days, and labels: one plain, one conflicting."""
    log = PredictionLog(where)
    log.append(TRAITS, rows(0, 3000, "uci", day=1))
    log.append(TRAITS, rows(3000, 2000, "secondary", day=2))
    log.append(TRAITS, rows(5000, 3000, "uci", day=4))
    log.add_feedback(f"{7:032x}", "poisonous", "2026-12-05T00:00:00Z", "token")
    log.add_feedback(f"{8:032x}", "edible", "2026-12-05T00:00:00Z", "open")
    conflict = log.add_feedback(f"{8:032x}", "poisonous", "2026-12-05T00:01:00Z", "open")
    assert conflict.conflict and conflict.counts_as == "poisonous"
    return log


def test_both_databases_give_back_the_same_answers_and_labels(tmp_path, postgres):
    logs = [tmp_path / "predictions.db", location(postgres.new_database())]
    frames = []
    for where in logs:
        filled(where).close()
        frames.append(read_predictions(where))
    sqlite, pg = frames
    pd.testing.assert_frame_equal(sqlite, pg)
    assert len(sqlite) == 8000 and sqlite["true_class"].notna().sum() == 2
    assert sqlite.set_index("request_id").loc[f"{8:032x}", "true_class"] == "poisonous"
    assert sqlite["cap_diameter"].dtype == float and sqlite["unfamiliar"].isin([0, 1]).all()


def test_readers_stream_in_chunks_windowed_alike_live_and_from_a_snapshot(where, tmp_path):
    filled(where).close()
    whole = read_predictions(where, "uci")
    snapshot = tmp_path / "window.parquet"
    assert write_snapshot(where, snapshot) == 8000
    newest = pd.to_datetime(whole["logged_at"]).max()
    in_days = whole[pd.to_datetime(whole["logged_at"]) >= newest - pd.Timedelta(days=1)]
    for source in (where, snapshot):
        with reading(source) as log:
            assert log.count_by_dataset() == {"secondary": 2000, "uci": 6000}
            chunks = list(log.chunks("uci", chunk_rows=1000))
            window = pd.concat(log.chunks("uci", days=1, last=500, chunk_rows=400))
            labelled = pd.concat(log.chunks("uci", labelled_only=True))
        assert [len(c) for c in chunks] == [1000] * 6
        pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), whole)
        expected = in_days.tail(500).reset_index(drop=True)
        pd.testing.assert_frame_equal(window.reset_index(drop=True), expected)
        assert labelled["request_id"].tolist() == [f"{7:032x}", f"{8:032x}"]


def test_any_replica_labels_any_request_and_simultaneous_labels_serialise(postgres):
    url = location(postgres.new_database())
    first, second = PredictionLog(url), PredictionLog(url)
    first.append(TRAITS, rows(0, 10))
    assert second.add_feedback(f"{3:032x}", "edible", "t", "open").newly == "edible"
    with pytest.raises(UnknownPrediction):
        second.add_feedback("never-answered", "edible", "t", "open")
    results, barrier = [], threading.Barrier(2)

    def label(log: PredictionLog, true_class: str) -> None:
        barrier.wait()
        results.append(log.add_feedback(f"{4:032x}", true_class, "t", "open"))

    threads = [
        threading.Thread(target=label, args=(log, cls))
        for log, cls in ((first, "edible"), (second, "poisonous"))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.conflict for r in results) == [False, True]
    with psycopg.connect(url.url) as db:
        stored = db.execute("select true_class from feedback where request_id = %s", (f"{4:032x}",))
        assert stored.fetchall() == [("poisonous",)]
        assert db.execute("select count(*) from label_conflicts").fetchone() == (1,)


def test_only_the_service_s_statements_are_bounded_in_time(postgres):
    """A reader of a long log orders millions of rows before its first one: the service's
    10 s bound on a statement failed the snapshot of 5 x 10^6 answers."""
    url = location(postgres.new_database())
    log = PredictionLog(url)
    log.append(TRAITS, rows(0, 10))
    assert log._db.execute("show statement_timeout").fetchone() == ("10s",)
    with store_for(url).reading() as db:
        assert db.execute("show statement_timeout").fetchone() == ("0",)
    log.close()


def test_an_older_table_gains_new_traits_and_another_shape_is_refused(postgres):
    url = postgres.new_database()
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(
            "create table predictions (seq bigint generated always as identity, request_id "
            "text primary key, logged_at text not null, model_version text not null, dataset "
            "text not null, probability double precision not null, verdict text not null, "
            "unfamiliar boolean not null, reasons text not null, odor text)"
        )
    PredictionLog.check(url)
    with psycopg.connect(url) as db:
        columns = {r[0] for r in db.execute("select column_name from information_schema.columns")}
    assert {"cap_diameter", "season", "habitat"} <= columns
    other = postgres.new_database()
    with psycopg.connect(other, autocommit=True) as db:
        db.execute("create table predictions (id integer)")
    with pytest.raises(LogUnavailable, match="not a prediction log: no seq, request_id"):
        PredictionLog.check(other)


def test_an_unreachable_database_is_refused_with_its_password_hidden(tmp_path):
    from servefixtures import free_port

    where = location(f"postgresql://mushroom:s3cret@127.0.0.1:{free_port()}/log")
    assert isinstance(where, Database) and "s3cret" not in str(where)
    log = PredictionLog(where, retry_seconds=60)
    assert not log.ready()
    with pytest.raises(LogUnavailable) as refused:
        log.append(TRAITS, rows(0, 1))
    assert "s3cret" not in str(refused.value) and "Connection refused" in str(refused.value)
    assert str(refused.value).startswith("prediction log postgresql://mushroom:***@127.0.0.1")
    assert location("postgres://h/db") == Database("postgresql://h/db")
    assert location("logs/predictions.db") == Path("logs/predictions.db")


def test_a_window_larger_than_max_rows_is_judged_on_a_uniform_sample_in_bounded_memory(tmp_path):
    from mushroom.core.catalogue import UCI
    from mushroom.core.params import load_params
    from mushroom.data.prepared import Schema
    from mushroom.monitoring.drift import current_rows

    where = tmp_path / "predictions.db"
    filled(where).close()
    params = load_params(Path("params.yaml")).drift.model_copy(update={"max_rows": 1000})
    schema = Schema("uci", "random", UCI.trait_names)
    labelled, current, source = current_rows(params, where, tmp_path, schema)
    assert len(current) == 1000 and labelled["request_id"].tolist() == [
        f"{7:032x}",
        f"{8:032x}",
    ]
    assert (
        source
        == f"{where}: 1000 of 6000 logged uci answers (a uniform sample of the 6000 in the window)"
    )
    order = current["request_id"].map(lambda r: int(r, 16))
    assert order.is_monotonic_increasing  # oldest first, as the log gave them
    assert 800 < (order < 3000).sum() * 2 < 1200  # a half of the window: about a half
    again = current_rows(params, where, tmp_path, schema)[1]
    pd.testing.assert_frame_equal(again, current)  # seeded: a report judged again agrees
    whole = params.model_copy(update={"max_rows": 10_000, "window_rows": 2500})
    _, current, source = current_rows(whole, where, tmp_path, schema)
    assert len(current) == 2500 and source == f"{where}: 2500 of 6000 logged uci answers"
