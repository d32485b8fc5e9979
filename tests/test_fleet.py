"""A fleet: two real `bentoml serve` replicas on one PostgreSQL prediction log (a real,
throwaway cluster). Under 2 x 32 clients every answer is one row; a label reaches the log
through either replica; the readers see both replicas' answers; PostgreSQL stopped mid-load
makes both refuse (503, Retry-After, /readyz 503) with nothing answered unlogged, and they
recover on their own once it is back."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest

import rawfixtures
from mushroom.cli import main as mushroom
from mushroom.data.log_reading import read_predictions
from mushroom.data.log_schema import location
from mushroom.lifecycle import alias_moves, registry
from mushroom.lifecycle.replay import replay
from mushroom.stages import evaluate as evaluate_stage
from mushroom.stages import train as train_stage
from servefixtures import Promoted, Server, environment, free_port, kill_tree, stage_args
from test_metrics import counters, total

CLIENTS_PER_REPLICA = 32
LOAD_SECONDS = 30.0
ODORS = ["almond", "anise", "creosote", "fishy", "foul", "musty", "none", "pungent", "spicy"]


async def load(urls: list[str], seconds: float, during=None) -> dict:
    """``CLIENTS_PER_REPLICA`` clients per replica posting one mushroom each, back to back,
    for ``seconds``; ``during`` (a coroutine function) runs alongside. What each got."""
    outcome = {"answered": [], "refused": [], "retry_after": set(), "other": []}
    outcome["by_replica"] = dict.fromkeys(urls, 0)
    deadline = time.monotonic() + seconds
    # A kept-alive connection is dropped after 1 s idle, before uvicorn closes it (5 s): at
    # httpx's default, also 5 s, a request could be sent on a connection the server was
    # closing, and fail with no answer (a ReadError) that says nothing of the service.
    limits = httpx.Limits(max_connections=len(urls) * CLIENTS_PER_REPLICA, keepalive_expiry=1.0)

    async def client(http: httpx.AsyncClient, url: str, seed: int) -> None:
        pick = random.Random(seed)
        while time.monotonic() < deadline:
            body = {"mushrooms": [{"odor": pick.choice(ODORS), "habitat": "d"}]}
            try:
                response = await http.post(f"{url}/classify", json=body)
            except httpx.TransportError as exc:
                outcome["other"].append(repr(exc))
                continue
            if response.status_code == 200:
                outcome["answered"].append(response.json()[0]["request_id"])
                outcome["by_replica"][url] += 1
            elif response.status_code == 503:
                outcome["refused"].append(response.json()["error"])
                outcome["retry_after"].add(response.headers.get("retry-after"))
            else:
                outcome["other"].append(f"{response.status_code} {response.text[:200]}")

    async with httpx.AsyncClient(timeout=30, limits=limits) as http:
        tasks = [
            client(http, url, CLIENTS_PER_REPLICA * n + k)
            for n, url in enumerate(urls)
            for k in range(CLIENTS_PER_REPLICA)
        ]
        await asyncio.gather(*tasks, *([during()] if during else []))
    return outcome


def logged_ids(url: str) -> list[str]:
    with psycopg.connect(url) as db:
        return [row[0] for row in db.execute("select request_id from predictions")]


@pytest.fixture
def fleet(uci_model, postgres, tmp_path):
    url = postgres.new_database()
    replicas = []
    try:
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            replicas.append(
                Server(
                    uci_model,
                    tmp_path / name / "unused.db",
                    extra_env={"MUSHROOM_PREDICTION_LOG": url, "MUSHROOM_REPLICA": name},
                )
            )
        yield url, replicas
    finally:
        for replica in replicas:
            replica.stop()


def test_two_replicas_share_one_log_that_any_reader_sees_whole(fleet, uci_model, tmp_path):
    url, (a, b) = fleet
    outcome = asyncio.run(load([a.url, b.url], LOAD_SECONDS))
    assert outcome["refused"] == [] and outcome["other"] == []
    answered = outcome["answered"]
    assert len(answered) > 1000
    assert sorted(logged_ids(url)) == sorted(answered)  # rows == answers, one each
    for name, replica in (("a", a), ("b", b)):  # each counts its own, under its name
        series = [s for s in counters(replica) if s[0] == "mushroom_answers_total"]
        assert {labels["replica"] for _, labels, _ in series} == {name}
        assert total(series, "mushroom_answers_total") == outcome["by_replica"][replica.url]
    assert "prediction log postgresql://postgres@127.0.0.1" in a.server_log()

    first, second = answered[0], answered[-1]
    through_b = httpx.post(
        f"{b.url}/feedback", json={"request_id": first, "true_class": "edible"}, timeout=30
    )
    assert through_b.status_code == 200 and through_b.json()["counts_as"] == "edible"
    conflicting = httpx.post(
        f"{a.url}/feedback", json={"request_id": first, "true_class": "poisonous"}, timeout=30
    )
    assert conflicting.json() | {"request_id": ""} == {
        "request_id": "",
        "true_class": "poisonous",
        "stored": True,
        "counts_as": "poisonous",
        "conflict": True,
    }
    assert httpx.post(
        f"{a.url}/feedback", json={"request_id": second, "true_class": "poisonous"}, timeout=30
    ).json()["stored"]
    assert "label conflict" in a.server_log()

    snapshot, exported = tmp_path / "window.parquet", tmp_path / "labelled.parquet"
    assert mushroom(["monitor", "snapshot", "--log", url, "--out", str(snapshot), "--no-dvc"]) == 0
    assert mushroom(["feedback", "export", "--log", url, "--out", str(exported), "--no-dvc"]) == 0
    assert len(read_predictions(snapshot)) == len(answered)
    labels = read_predictions(exported).set_index("request_id")["true_class"]
    assert labels.to_dict() == {first: "poisonous", second: "poisonous"}
    models = uci_model.workdir / "models"
    summary = replay(
        location(url), models / "model.joblib", models / "policy.json", tmp_path / "none.parquet"
    )
    assert summary["replayed"] == len(answered) and summary["labelled"] == 2


def test_postgresql_stopped_mid_load_refuses_with_nothing_unlogged_and_recovers(fleet, postgres):
    url, (a, b) = fleet
    seen = {"ready_while_down": set()}

    async def outage() -> None:
        await asyncio.sleep(3)
        await asyncio.to_thread(postgres.stop)
        await asyncio.sleep(1.5)
        async with httpx.AsyncClient(timeout=10) as http:
            for replica in (a, b):
                seen["ready_while_down"].add((await http.get(f"{replica.url}/readyz")).status_code)
        await asyncio.sleep(1.5)
        await asyncio.to_thread(postgres.start)

    outcome = asyncio.run(load([a.url, b.url], 14, during=outage))
    assert outcome["other"] == []
    assert outcome["refused"] and outcome["retry_after"] == {"1"}
    assert all("the prediction log cannot record answers" in e for e in outcome["refused"])
    assert seen["ready_while_down"] == {503}
    assert set(outcome["answered"]) <= set(logged_ids(url))  # nothing answered unlogged
    for replica in (a, b):
        replica.wait_ready(timeout=10)
        again = httpx.post(
            f"{replica.url}/classify", json={"mushrooms": [{"odor": "foul"}]}, timeout=30
        )
        assert again.status_code == 200
        assert again.json()[0]["request_id"] in logged_ids(url)
    assert "works again" in a.server_log() and "works again" in b.server_log()
    assert Path(a.log_path).exists() is False  # the file path was never used


def in_workdir(workdir: Path, env: dict[str, str], module: str, *args: str) -> str:
    """``python -m module args`` run from ``workdir`` (MLflow's artifacts for a database
    store go to the project there: mushroom.lifecycle.tracking.artifact_root): for what
    saves to the BentoML store, which BentoML finds once per process."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"{module} {args}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def in_process(workdir: Path, env: dict[str, str], main, *args: str) -> None:
    """``main(args)`` in this process, from ``workdir``, under ``env``: a process would
    spend seconds importing."""
    with environment(env), contextlib.chdir(workdir):
        assert main(list(args)) == 0


def history(workdir: Path, env: dict[str, str]) -> list[dict]:
    """``mushroom history --json``, in this process."""
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        in_process(workdir, env, alias_moves.history_main, "--json")
    return json.loads(output.getvalue())


def served_model(promoted: Promoted, folder: Path, env: dict[str, str]) -> dict:
    folder.mkdir()
    server = Server(promoted, folder / "predictions.db", extra_env=env | {"MUSHROOM_MODEL": ""})
    try:
        return httpx.get(f"{server.url}/model", timeout=30).json()
    finally:
        server.stop()


def test_mlflow_on_postgresql_promotes_rolls_back_and_serves_through_a_tracking_server(
    uci_model, postgres, tmp_path
):
    """The registry a fleet shares: a PostgreSQL store, named as users write it
    (``postgresql://``), and an ``mlflow server`` in front of it."""
    workdir = tmp_path / "work"
    ignored = shutil.ignore_patterns("mlruns", "mlflow.db", "live", "feedback")
    shutil.copytree(uci_model.workdir, workdir, symlinks=True, ignore=ignored)
    store = postgres.new_database()
    env = uci_model.env | {"MLFLOW_TRACKING_URI": store, "BENTOML_HOME": str(tmp_path / "bento")}
    promote = [
        "mushroom.cli", "promote", "--params", "params.yaml", "--prepared", "prepared",
        "--model", "models/model.joblib", "--policy", "models/policy.json",
        "--reports", "reports", "--train-info", "models/train_info.json",
        "--log", "live/predictions.db", "--feedback", "feedback/labelled.parquet",
    ]  # fmt: skip
    evaluate = [*stage_args(workdir)["evaluate"], "--params", "params.yaml"]
    in_process(workdir, env, evaluate_stage.main, *evaluate)
    assert "version 1 is 'champion'" in in_workdir(workdir, env, *promote)
    rawfixtures.set_params(workdir / "params.yaml", {"train.logreg.C": 0.25})
    in_process(workdir, env, train_stage.main, *stage_args(workdir)["train"], "--params",
               "params.yaml")  # fmt: skip
    in_process(workdir, env, evaluate_stage.main, *evaluate)
    assert "version 2 is 'champion'" in in_workdir(workdir, env, *promote, "--reason", "smaller C")
    rolled = in_workdir(workdir, env, "mushroom.cli", "rollback", "--reason", "field reports")
    assert "'champion' moved from version 2 to 1" in rolled
    moves = history(workdir, env)
    assert [(m["action"], m["from"], m["to"]) for m in moves] == [
        ("promote", None, "1"),
        ("promote", "1", "2"),
        ("rollback", "2", "1"),
    ]
    promoted = Promoted(workdir, env, tag="", version="1")
    direct = served_model(promoted, tmp_path / "direct", env)
    assert (direct["version"], direct["chosen_by"]) == ("1", "champion")
    assert direct["champion_history"] == moves

    port = free_port()
    tracking = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mlflow"), "server", "--backend-store-uri",
            registry.for_mlflow(store), "--host", "127.0.0.1", "--port", str(port),
            "--workers", "1",
        ],
        env=env,
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        server_uri = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{server_uri}/health", timeout=1).status_code == 200:
                    break
            time.sleep(0.3)
        through_server = env | {"MLFLOW_TRACKING_URI": server_uri}
        assert history(workdir, through_server) == moves
        served = served_model(promoted, tmp_path / "server", through_server)
        assert (served["version"], served["bento_model"]) == ("1", direct["bento_model"])
        assert served["champion_history"] == moves
    finally:
        kill_tree(tracking.pid)
