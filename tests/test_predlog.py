"""The prediction log when it cannot record answers: real SQLite files that are damaged, of
another shape, read-only, full or deleted, and real `bentoml serve` processes in front of
them. No answer may leave without its row in the log."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from mushroom.data.log_reading import read_predictions
from mushroom.data.prediction_log import TRAIT_COLUMNS, LogUnavailable, PredictionLog
from servefixtures import Promoted, Server, free_port, kill_tree

TRAITS = ["odor"]
NOBODY = 65534


def rows(first: int, count: int) -> list[tuple]:
    return [
        (f"{i:032x}", "2026-12-01T00:00:00Z", "m:1", "uci", 0.5, "edible", 0, "", "none")
        for i in range(first, first + count)
    ]


def logged_ids(path: Path) -> list[str]:
    return read_predictions(path)["request_id"].tolist()


def write_garbage(path: Path) -> str:
    path.parent.mkdir(parents=True)
    path.write_bytes(bytes(range(256)) * 20)
    return "file is not a database"


def truncate_a_log(path: Path) -> str:
    log = PredictionLog(path)
    log.append(TRAITS, rows(0, 2000))
    log.close()
    os.truncate(path, path.stat().st_size // 2)
    return "database disk image is malformed"


def make_parent_a_file(path: Path) -> str:
    path.parent.write_text("not a folder\n")
    return f"{path.parent} is a file, not a folder"


def make_path_a_folder(path: Path) -> str:
    path.mkdir(parents=True)
    return "is a folder, not a database file"


def create_a_foreign_table(path: Path) -> str:
    path.parent.mkdir(parents=True)
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("create table predictions (id integer primary key, payload text)")
        db.commit()
    return (
        "its table predictions is not a prediction log: "
        "no request_id, logged_at, model_version, dataset, probability, verdict"
    )


def add_a_required_column(path: Path) -> str:
    path.parent.mkdir(parents=True)
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute(
            "create table predictions (request_id text primary key, logged_at text, "
            "model_version text, dataset text, probability real, verdict text, "
            "owner text not null)"
        )
        db.commit()
    return "NOT NULL constraint failed: predictions.owner"


UNUSABLE = {
    "garbage file": write_garbage,
    "truncated log": truncate_a_log,
    "parent is a file": make_parent_a_file,
    "path is a folder": make_path_a_folder,
    "foreign table": create_a_foreign_table,
    "extra required column": add_a_required_column,
}


@pytest.mark.parametrize("fault", UNUSABLE)
def test_an_unusable_log_is_refused_naming_the_path_and_the_cause(tmp_path, fault):
    path = tmp_path / "monitoring" / "predictions.db"
    cause = UNUSABLE[fault](path)
    with pytest.raises(LogUnavailable) as refused:
        PredictionLog.check(path)
    assert str(refused.value) == f"prediction log {path}: {cause}"
    log = PredictionLog(path)  # as a worker opens it: no exception, not ready, refusing
    assert not log.ready()
    with pytest.raises(LogUnavailable, match=re.escape(cause)):
        log.append(TRAITS, rows(0, 1))


@pytest.fixture
def open_folder():
    """A folder anyone may pass through: SQLite opens a log by its absolute path, and
    pytest's temporary folders are private to this user."""
    folder = Path(tempfile.mkdtemp(prefix="predlog-"))
    folder.chmod(0o711)
    yield folder
    for inside in (folder, *folder.iterdir()):
        inside.chmod(0o755)
    shutil.rmtree(folder)


def refusal_to(path: Path) -> str:
    """``PredictionLog.check(path)`` in a forked child refused what this user is: as root,
    whom permissions do not stop, the child becomes nobody."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read)
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            try:
                PredictionLog.check(path)
                message = "accepted"
            except LogUnavailable as refused:
                message = str(refused)
            os.write(write, message.encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        message = pipe.read()
    os.waitpid(pid, 0)
    return message


def test_a_read_only_log_or_folder_is_refused_naming_which(open_folder):
    folder = open_folder / "monitoring"
    log = folder / "predictions.db"
    PredictionLog(log).close()
    folder.chmod(0o777)
    log.chmod(0o444)
    assert refusal_to(log) == (
        f"prediction log {log}: {log} is not writable (attempt to write a readonly database)"
    )
    folder.chmod(0o555)
    assert refusal_to(folder / "new.db") == (
        f"prediction log {folder}/new.db: {folder} is not writable (unable to open database file)"
    )


def test_an_old_log_gains_the_columns_of_traits_catalogued_since(tmp_path):
    path = tmp_path / "predictions.db"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute(
            "create table predictions (request_id text primary key, logged_at text not null, "
            "model_version text not null, dataset text not null, probability real not null, "
            "verdict text not null, odor)"
        )
        db.execute(
            "insert into predictions values ('old', 't', 'm:1', 'uci', 0.9, 'poisonous', 'foul')"
        )
        db.commit()
    PredictionLog.check(path)
    old = read_predictions(path).set_index("request_id").loc["old"]
    assert pd.isna(old["cap_diameter"]) and old["reasons"] == ""


def test_a_full_disk_is_named_not_hidden_by_a_failed_rollback_and_the_log_recovers(tmp_path):
    path = tmp_path / "predictions.db"
    log = PredictionLog(path, retry_seconds=0.5)
    log.append(TRAITS, rows(0, 5))
    # SQLite's page limit on the log's own connection: its "disk is full", no disk filled.
    # SQLite then rolls the transaction back itself; a second rollback used to fail and raise
    # "cannot rollback - no transaction is active" instead.
    pages = log._db.execute("pragma page_count").fetchone()[0]
    log._db.execute(f"pragma max_page_count = {pages}")
    with pytest.raises(LogUnavailable) as refused:
        log.append(TRAITS, rows(5, 3000))
    assert str(refused.value) == f"prediction log {path}: database or disk is full"
    assert refused.value.__cause__.sqlite_errorname == "SQLITE_FULL"
    assert not log.ready()  # retried after retry_seconds only
    assert logged_ids(path) == [r[0] for r in rows(0, 5)]
    time.sleep(0.5)
    assert log.ready()  # reopened: the new connection has room again
    log.append(TRAITS, rows(5, 3000))
    assert len(logged_ids(path)) == 3005


def test_a_damaged_page_refuses_answers_until_the_file_is_replaced(tmp_path):
    path = tmp_path / "predictions.db"
    log = PredictionLog(path)
    log.append(TRAITS, rows(0, 3000))
    log.close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        index_root = db.execute(
            "select rootpage from sqlite_master where name = 'sqlite_autoindex_predictions_1'"
        ).fetchone()[0]
        page_size = db.execute("pragma page_size").fetchone()[0]
    with open(path, "r+b") as file:  # every insert starts at the request id index's root
        file.seek((index_root - 1) * page_size)
        file.write(b"\xff" * page_size)
    log = PredictionLog(path, retry_seconds=0)
    assert not log.ready()
    with pytest.raises(LogUnavailable, match="database disk image is malformed"):
        log.append(TRAITS, rows(3000, 1))
    assert not log.ready()  # nothing changed: still refused
    path.rename(path.with_suffix(".damaged"))  # what an operator does with it
    assert log.ready()
    log.append(TRAITS, rows(3000, 1))
    assert logged_ids(path) == [rows(3000, 1)[0][0]]


def test_a_log_deleted_between_answers_is_created_again_and_says_so(tmp_path, caplog):
    folder = tmp_path / "monitoring"
    log = PredictionLog(folder / "predictions.db")
    log.append(TRAITS, rows(0, 2))
    shutil.rmtree(folder)  # SQLite alone would go on writing to the deleted file
    log.append(TRAITS, rows(2, 2))
    assert logged_ids(folder / "predictions.db") == [r[0] for r in rows(2, 2)]
    assert "was deleted or replaced while in use" in caplog.text


def test_answers_written_as_the_log_is_deleted_are_refused(tmp_path):
    folder = tmp_path / "monitoring"
    log = PredictionLog(folder / "predictions.db")
    log.append(TRAITS, rows(0, 2))
    # Deleted just as the answers are committed: they land in the deleted file.
    log._db.set_trace_callback(lambda sql: sql == "commit" and shutil.rmtree(folder))
    with pytest.raises(LogUnavailable, match="deleted or replaced while these answers"):
        log.append(TRAITS, rows(2, 3))
    log.append(TRAITS, rows(5, 1))
    assert logged_ids(folder / "predictions.db") == [rows(5, 1)[0][0]]


def serve_expecting_refusal(promoted: Promoted, log: Path, home: Path) -> tuple[int, str]:
    """Exit status and output of a `bentoml serve` that should stop at once. It has a
    BentoML home of its own: serving empties the home's Prometheus folder."""
    home.mkdir()
    (home / "models").symlink_to(Path(promoted.env["BENTOML_HOME"]) / "models")
    env = promoted.env | {
        "BENTOML_HOME": str(home),
        "MUSHROOM_MODEL": promoted.tag,
        "MUSHROOM_PREDICTION_LOG": str(log),
    }
    command = [str(Path(sys.executable).parent / "bentoml"), "serve"]
    command += ["mushroom.serving.service:MushroomClassifier", "--port", str(free_port())]
    process = subprocess.Popen(
        command,
        cwd=home,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        kill_tree(process.pid)
        output, _ = process.communicate()
        pytest.fail(f"bentoml serve did not stop:\n{output[-3000:]}")
    return process.returncode, output


def test_serve_stops_at_once_on_an_unusable_log(uci_model, tmp_path):
    """Any of the faults above: the check is the same."""
    log = tmp_path / "monitoring" / "predictions.db"
    cause = write_garbage(log)
    status, output = serve_expecting_refusal(uci_model, log, tmp_path / "home")
    assert status == 1, output
    assert output.strip().splitlines()[-1] == f"error: prediction log {log}: {cause}; not serving"
    assert "Traceback" not in output


def classify(server: Server, mushrooms: list[dict]) -> httpx.Response:
    return httpx.post(f"{server.url}/classify", json={"mushrooms": mushrooms}, timeout=30)


def change_tables(log: Path, statement: str) -> None:
    with contextlib.closing(sqlite3.connect(log)) as db:
        db.execute(statement)
        db.commit()


def test_a_log_failing_while_serving_is_not_ready_and_refuses_answers_until_it_works(
    uci_model, tmp_path
):
    log = tmp_path / "predictions.db"
    server = Server(uci_model, log)
    try:
        answered = classify(server, [{"odor": "foul"}])
        assert answered.status_code == 200
        request_id = answered.json()[0]["request_id"]

        change_tables(log, "alter table predictions rename column verdict to verdict_was")
        refused = classify(server, [{"odor": "foul"}, {"odor": "none"}])
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        assert refused.json() == {
            "error": "the prediction log cannot record answers (table predictions has no "
            "column named verdict): nothing was answered or stored, try again later"
        }
        labelled = httpx.post(
            f"{server.url}/feedback",
            json={"request_id": request_id, "true_class": "poisonous"},
            timeout=30,
        )
        assert labelled.status_code == 503 and "verdict" in labelled.json()["error"]
        assert httpx.get(f"{server.url}/readyz").status_code == 503
        with contextlib.closing(sqlite3.connect(log)) as db:
            assert db.execute("select request_id from predictions").fetchall() == [(request_id,)]
            assert db.execute("select count(*) from feedback").fetchone() == (0,)

        change_tables(log, "alter table predictions rename column verdict_was to verdict")
        server.wait_ready(timeout=10)
        again = classify(server, [{"odor": "none"}])
        assert again.status_code == 200
        assert logged_ids(log) == [request_id, again.json()[0]["request_id"]]

        for file in (log, log.with_name(f"{log.name}-wal"), log.with_name(f"{log.name}-shm")):
            file.unlink(missing_ok=True)
        after = classify(server, [{"odor": "almond"}])
        assert after.status_code == 200
        assert logged_ids(log) == [after.json()[0]["request_id"]]
        assert "was deleted or replaced while in use" in server.server_log()
    finally:
        server.stop()


def test_the_log_and_a_folder_made_for_it_are_its_owners_alone(tmp_path):
    """Request ids are what a label needs: other users may not read them."""
    path = tmp_path / "made" / "for" / "it.db"
    log = PredictionLog(path)
    try:
        log.append(
            list(TRAIT_COLUMNS),
            [("r1", "t", "m:1", "uci", 0.5, "uncertain", 1, "") + (None,) * len(TRAIT_COLUMNS)],
        )
    finally:
        log.close()
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (path.parent, path)}
    assert modes == {"for": 0o700, "it.db": 0o600}
    assert stat.S_IMODE((tmp_path / "made").stat().st_mode) == 0o700
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    opened = shared / "open.db"
    opened.touch()
    opened.chmod(0o644)
    PredictionLog.check(opened)
    assert stat.S_IMODE(opened.stat().st_mode) == 0o600
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755  # a folder that existed: as it was
