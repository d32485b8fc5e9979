"""The MLflow registry decides what serves: `bentoml serve` follows the ``champion`` alias
(not the store's latest entry), `mushroom rollback` moves it with a reason, and every move
is in `mushroom history` and in the served ``GET /model``.

The session's promoted UCI model is version 1 of a copy of its workdir and MLflow store;
version 2 is promoted from the copy after changing only ``train.logreg.C`` and rerunning
train and evaluate.
Real MLflow SQLite store, real BentoML store, real servers."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import rawfixtures
import repocopy
from servefixtures import (
    SOURCE_SERVICE,
    Promoted,
    Server,
    free_port,
    kill_tree,
    process_tree,
    promote,
    run_module,
    stage_args,
)

SERVE_THE_CHAMPION = {"MUSHROOM_MODEL": ""}  # Server names its model; empty = not set


def promoted(workdir: Path, env: dict[str, str], reason: str) -> Promoted:
    done = promote(workdir, env, "--reason", reason)
    assert done.returncode == 0, done.stderr
    found = re.search(r"version (\d+) is 'champion'.*BentoML model (\S+)", done.stdout)
    return Promoted(workdir, env, tag=found.group(2), version=found.group(1))


def rerun(workdir: Path, env: dict[str, str], *stages: str) -> None:
    for stage in stages:
        args = ["--params", str(workdir / "params.yaml"), *stage_args(workdir)[stage]]
        done = run_module(f"mushroom.stages.{stage}", args, env)
        assert done.returncode == 0, done.stderr


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return run_module("mushroom.cli", list(args), env)


def model_info(target: Promoted, log: Path) -> dict:
    server = Server(target, log, extra_env=SERVE_THE_CHAMPION)
    try:
        return httpx.get(f"{server.url}/model", timeout=30).json()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def two_versions(uci_model, tmp_path_factory) -> tuple[Promoted, Promoted]:
    """Version 1, the session's promoted model, and version 2 (``train.logreg.C`` = 0.25),
    promoted after it, in a copy of its workdir, MLflow store and store entry: version 2
    is champion and latest."""
    workdir = tmp_path_factory.mktemp("lifecycle") / "work"
    shutil.copytree(
        uci_model.workdir, workdir, symlinks=True, ignore=shutil.ignore_patterns("mlruns")
    )
    with sqlite3.connect(workdir / "mlflow.db") as db:  # new runs' artifacts: in the copy
        db.execute(
            "UPDATE experiments SET artifact_location = ? WHERE name = 'mushroom'",
            (str(workdir / "mlruns" / "mushroom"),),
        )
    home = tmp_path_factory.mktemp("lifecycle-bentoml")
    entry = Path("models", *uci_model.tag.split(":"))
    shutil.copytree(Path(uci_model.env["BENTOML_HOME"], entry), home / entry)
    env = uci_model.env | {
        "MLFLOW_TRACKING_URI": f"sqlite:///{workdir / 'mlflow.db'}",
        "BENTOML_HOME": str(home),
    }
    first = Promoted(workdir, env, tag=uci_model.tag, version=uci_model.version)
    rawfixtures.set_params(workdir / "params.yaml", {"train.logreg.C": 0.25})
    rerun(workdir, env, "train", "evaluate")
    second = promoted(workdir, env, "smaller C")
    return first, second


def test_the_champion_serves_and_a_rollback_moves_it(two_versions, tmp_path):
    first, second = two_versions
    assert (first.version, second.version) == ("1", "2") and first.tag != second.tag
    serving = model_info(second, tmp_path / "before.db")
    assert (serving["version"], serving["bento_model"]) == ("2", second.tag)
    assert serving["chosen_by"] == "champion"

    rolled = cli(second.env, "rollback", "--reason", "false edibles in the field")
    assert rolled.returncode == 0, rolled.stderr
    assert "'champion' moved from version 2 to 1; restart the server" in rolled.stdout

    # Version 2's entry is still the store's latest: the restarted server follows the alias.
    store = Path(second.env["BENTOML_HOME"], "models", "mushroom-classifier")
    assert (store / "latest").read_text().strip() == second.tag.split(":")[1]
    restarted = model_info(second, tmp_path / "after.db")
    assert (restarted["version"], restarted["bento_model"]) == ("1", first.tag)
    moves = restarted["champion_history"]
    assert [(m["action"], m["from"], m["to"], m["reason"]) for m in moves] == [
        ("promote", None, "1", "the evaluate gate passed"),
        ("promote", "1", "2", "smaller C"),
        ("rollback", "2", "1", "false edibles in the field"),
    ]
    assert set(moves[0]["metrics"]) == {
        "test.accuracy",
        "test.false_edible",
        "test.coverage",
        "cv.accuracy",
    }
    assert moves[0]["metrics"] == moves[2]["metrics"] != moves[1]["metrics"]

    # The CLI reads the history through MLflow, the service straight from its tables.
    listed = cli(second.env, "history", "--json")
    assert json.loads(listed.stdout) == moves
    lines = cli(second.env, "history").stdout.splitlines()
    assert "rollback 2 -> 1" in lines[2] and lines[2].endswith("reason: false edibles in the field")
    assert lines[-1] == "champion: version 1"


REGISTER_BY_HAND = """
import mlflow
run_id = mlflow.MlflowClient().get_model_version("mushroom-classifier", "1").run_id
for tags in ({}, {"gate": "passed"}):
    print(mlflow.register_model(f"runs:/{run_id}/model", "mushroom-classifier", tags=tags).version)
"""


def alias_and_moves(workdir: Path) -> tuple[list, list]:
    with sqlite3.connect(workdir / "mlflow.db") as db:
        aliases = db.execute("SELECT alias, version FROM registered_model_aliases").fetchall()
        tags = db.execute("SELECT key, value FROM registered_model_tags ORDER BY key").fetchall()
    return aliases, tags


def test_rollback_refuses_what_the_service_could_not_serve(two_versions):
    env = two_versions[0].env
    # Registered without promotion: one has no gate verdict, neither has a store entry.
    done = subprocess.run(
        [sys.executable, "-c", REGISTER_BY_HAND], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    ungated, unsaved = done.stdout.split()
    before = alias_and_moves(two_versions[0].workdir)

    refused = cli(env, "rollback", "--to", ungated, "--reason", "try it")
    assert refused.returncode == 3
    assert (
        f"refused: version {ungated} did not pass the evaluate gate at promotion "
        "(its tag 'gate' is None)" in refused.stderr
    )
    refused = cli(env, "rollback", "--to", unsaved, "--reason", "try it")
    assert refused.returncode == 3
    assert f"refused: version {unsaved} has no entry in the BentoML store" in refused.stderr
    refused = cli(env, "rollback", "--to", "99", "--reason", "try it")
    assert refused.returncode == 3
    assert f"has no version 99 (versions: 1, 2, {ungated}, {unsaved})" in refused.stderr
    assert alias_and_moves(two_versions[0].workdir) == before  # nothing moved


def test_a_built_bento_serves_the_champion_it_was_built_with(two_versions, tmp_path):
    """A container has no MLflow store: `bentoml build` resolves the alias, the bento keeps it."""
    target = two_versions[1]
    champion = alias_and_moves(target.workdir)[0]
    built = subprocess.run(
        [str(Path(sys.executable).parent / "bentoml"), "build", "-f", "bentofile.yaml", "src"]
        + ["--output", "tag"],
        cwd=repocopy.REPO,
        env=target.env | SERVE_THE_CHAMPION,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr
    tag = built.stdout.strip().splitlines()[-1].removeprefix("__tag__:")
    no_registry = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'absent.db'}"}
    server = Server(target, tmp_path / "log.db", tag, SERVE_THE_CHAMPION | no_registry)
    try:
        info = httpx.get(f"{server.url}/model", timeout=30).json()
    finally:
        server.stop()
    assert champion == [("champion", int(info["version"]))]
    assert info["chosen_by"] == "bento" and info["champion_history"] == []


def serve_exit(env: dict[str, str], cwd: Path) -> tuple[int, list[str]]:
    bentoml = str(Path(sys.executable).parent / "bentoml")
    port = str(free_port())
    done = subprocess.run(
        [bentoml, "serve", SOURCE_SERVICE, "--host", "127.0.0.1", "--port", port],
        cwd=cwd,
        env=env | SERVE_THE_CHAMPION,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, (done.stdout + done.stderr).splitlines()


def test_without_a_servable_champion_serve_exits_saying_what_to_run(two_versions, tmp_path):
    env = two_versions[0].env
    no_store = tmp_path / "mlflow.db"
    code, lines = serve_exit(env | {"MLFLOW_TRACKING_URI": f"sqlite:///{no_store}"}, tmp_path)
    assert code != 0
    assert lines == [
        f"error: no MLflow store at {no_store}; run `make promote` (or set MUSHROOM_MODEL to "
        "a store tag); not serving"
    ]
    assert not no_store.exists()
    empty_home = tmp_path / "bentoml"
    code, lines = serve_exit(env | {"BENTOML_HOME": str(empty_home)}, tmp_path)
    assert code != 0
    assert len(lines) == 1 and lines[0].startswith(
        "error: 'champion' is mushroom-classifier version"
    )
    assert lines[0].endswith(
        f"which has no entry in the BentoML store {empty_home}/models; run `make promote` (or set "
        "MUSHROOM_MODEL to a store tag); not serving"
    )


def test_each_checkout_has_its_own_bentoml_home(tmp_path):
    """env.sh (every make target) points BentoML at its own checkout's .bentoml unless set,
    wherever it is sourced from."""
    env = {k: v for k, v in repocopy.tool_env().items() if k != "BENTOML_HOME"}
    shell = ["bash", "-c", f"source {repocopy.REPO / 'env.sh'} && echo $BENTOML_HOME"]
    default = subprocess.run(shell, env=env, cwd=tmp_path, capture_output=True, text=True)
    assert default.stdout.strip() == str(repocopy.REPO / ".bentoml")
    chosen = subprocess.run(
        shell,
        env=env | {"BENTOML_HOME": str(tmp_path)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert chosen.stdout.strip() == str(tmp_path)


def test_bentoml_serve_without_env_sh_serves_the_projects_champion(two_versions, tmp_path):
    """A shell with the venv but not env.sh: no BENTOML_HOME, no MLFLOW_TRACKING_URI. Run
    from the project, the server finds the project's MLflow store and BentoML store."""
    champion = two_versions[1]  # its MLflow store holds both versions
    project = tmp_path / "project"
    project.mkdir()
    (project / "dvc.yaml").write_text("stages: {}\n")
    (project / "mlflow.db").symlink_to(champion.workdir / "mlflow.db")
    (project / ".bentoml").symlink_to(champion.env["BENTOML_HOME"])
    env = {
        k: v
        for k, v in champion.env.items()
        if k not in {"BENTOML_HOME", "MLFLOW_TRACKING_URI", "MUSHROOM_MODEL"}
    }
    port = free_port()
    bentoml = str(Path(sys.executable).parent / "bentoml")
    output = open(tmp_path / "server.log", "w")  # noqa: SIM115
    server = subprocess.Popen(
        [bentoml, "serve", SOURCE_SERVICE, "--host", "127.0.0.1", "--port", str(port)],
        cwd=project,
        env=env | {"MUSHROOM_PREDICTION_LOG": str(tmp_path / "predictions.db")},
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while server.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            time.sleep(0.5)
        said = (tmp_path / "server.log").read_text()
        assert server.poll() is None, said
        served = httpx.get(f"http://127.0.0.1:{port}/model", timeout=30).json()
    finally:
        kill_tree(server.pid)
        server.wait(timeout=30)
        output.close()
    with sqlite3.connect(champion.workdir / "mlflow.db") as db:  # where the alias is now
        (alias_version,) = db.execute(
            "SELECT version FROM registered_model_aliases WHERE alias = 'champion'"
        ).fetchone()
    assert (served["version"], served["chosen_by"]) == (str(alias_version), "champion")
    assert served["bento_model"] in {promoted.tag for promoted in two_versions}
    assert f"mushroom: BENTOML_HOME unset: using {project / '.bentoml'}" in said
    assert f"MLflow store sqlite:///{project / 'mlflow.db'};" in said


def champion_version(promoted: Promoted) -> str:
    with contextlib.closing(sqlite3.connect(promoted.workdir / "mlflow.db")) as db:
        return db.execute(
            "SELECT version FROM registered_model_aliases WHERE alias = 'champion'"
        ).fetchone()[0]


def test_a_worker_restarted_after_a_champion_move_serves_what_its_server_chose(
    two_versions, tmp_path
):
    """A worker killed and restarted by the process manager after a promotion came back on
    the new champion, unrecorded: now it serves the version its server chose at start, and
    says the champion moved."""
    first, second = two_versions
    server = Server(second, tmp_path / "log.db", extra_env=SERVE_THE_CHAMPION)
    try:
        before = httpx.get(f"{server.url}/model", timeout=30).json()
        assert before["chosen_by"] == "champion"
        other = first.version if before["version"] == second.version else second.version
        moved = cli(second.env, "rollback", "--to", other, "--reason", "a worker restarts")
        assert moved.returncode == 0, moved.stderr
        assert champion_version(second) != before["version"]
        (worker,) = process_tree(server.process.pid)[1:]
        os.kill(worker, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while process_tree(server.process.pid)[1:] in ([], [worker]):
            assert time.monotonic() < deadline, server.server_log()
            time.sleep(0.2)
        server.wait_ready()
        after = httpx.get(f"{server.url}/model", timeout=30).json()
        said = server.server_log()
    finally:
        server.stop()
        back = ("--to", before["version"], "--reason", "back to where the module left it")
        assert cli(second.env, "rollback", *back).returncode == 0
    assert (after["version"], after["bento_model"]) == (before["version"], before["bento_model"])
    assert "restart the server to serve the new champion" in said


def test_a_killed_server_takes_its_worker_with_it_and_frees_the_port(uci_model, tmp_path):
    server = Server(uci_model, tmp_path / "log.db")
    workers = process_tree(server.process.pid)[1:]
    assert workers
    server.process.kill()  # SIGKILL: no shutdown of its own
    server.process.wait(timeout=30)
    deadline = time.monotonic() + 10
    while [pid for pid in workers if alive(pid)]:
        assert time.monotonic() < deadline, f"workers {workers} outlived their server"
        time.sleep(0.1)
    again = Server(uci_model, tmp_path / "again.db", port=server.port)
    try:
        answered = httpx.post(f"{again.url}/classify", json={"mushrooms": [{}]}, timeout=30)
    finally:
        again.stop()
        server.output.close()
    assert answered.status_code == 200


def alive(pid: int) -> bool:
    """Running: not gone, not a zombie waiting for a parent that is gone too."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
