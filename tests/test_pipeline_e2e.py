"""End to end: a copy of this repository, the real raw data from the DVC remote, real
``dvc repro`` / ``dvc exp run``, and the MLflow store they write."""

from __future__ import annotations

import json
import math
import re
import shlex
import sqlite3
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

import repocopy
from mushroom.cli import main as mushroom
from mushroom.core import paths
from mushroom.data import prepared
from mushroom.data.prediction_log import TRAIT_COLUMNS, PredictionLog
from mushroom.data.raw import SPECIES_ID
from mushroom.monitoring import history
from mushroom.stages import prepare
from rawfixtures import set_params
from repocopy import tool_env
from test_feedback import log_answers, novel_description

README = Path(__file__).resolve().parents[1] / "README.md"


def dvc_env() -> dict[str, str]:
    env = tool_env()
    env.pop("MLFLOW_TRACKING_URI", None)  # the copy's own mlflow.db is under test
    return env


def stages_run(output: str) -> list[str]:
    return re.findall(r"Running stage '(\w+)'", output)


@pytest.fixture(scope="module")
def repo(pulled_repo) -> Path:
    """The copy, its evaluate cross-validation at its smallest (committed in the copy):
    what these tests check is DVC's and MLflow's bookkeeping, not the figures."""
    set_params(pulled_repo / "params.yaml", {"evaluate.cv.folds": 2, "evaluate.cv.repeats": 1})
    run(["git", "commit", "-qam", "quick cross-validation"], pulled_repo)
    return pulled_repo


def run(cmd: list[str], cwd: Path) -> str:
    return repocopy.run(cmd, cwd, dvc_env())


def mlflow_runs(repo: Path) -> pd.DataFrame:
    with sqlite3.connect(repo / "mlflow.db") as db:
        return pd.read_sql(
            "select r.run_uuid, r.name, r.status, m.key, m.value from runs r "
            "join metrics m on m.run_uuid = r.run_uuid",
            db,
        )


def test_raw_data_pulled_matches_the_published_files(repo):
    expected = {
        "uci": "632f5362e9d1b82235e998cb30ce1b0e.dir",
        "secondary": "4365b0432bfb47e98be997843ac3f30d.dir",
    }
    for name, md5 in expected.items():
        assert yaml.safe_load((repo / f"data/raw/{name}.dvc").read_text())["outs"][0]["md5"] == md5
    assert (repo / "data/raw/uci/agaricus-lepiota.data").stat().st_size == 373_704
    assert (repo / "data/raw/secondary/secondary_data.csv").stat().st_size == 2_896_328


def test_repro_then_noop_then_train_param_reruns_only_train_evaluate_drift(repo):
    first = run(["dvc", "repro"], repo)
    assert stages_run(first)[:3] == ["prepare", "featurize", "train"]
    if "evaluate" not in stages_run(first):
        # A bit-identical model left the committed reports up to date, so DVC skipped
        # evaluate and nothing reached MLflow yet: make run logs the run itself.
        logged = run(["python", "-m", "mushroom.stages.evaluate", "--skip-if-logged"], repo)
        assert "MLflow run" in logged and "already logged" not in logged
    again = run(["python", "-m", "mushroom.stages.evaluate", "--skip-if-logged"], repo)
    assert "already logged" in again
    assert run(["dvc", "status"], repo).strip().endswith("Data and pipelines are up to date.")

    assert stages_run(run(["dvc", "repro"], repo)) == []

    set_params(repo / "params.yaml", {"train.logreg.C": 1.0})
    assert stages_run(run(["dvc", "repro"], repo)) == ["train", "evaluate", "drift"]
    metrics = json.loads((repo / "reports/metrics.json").read_text())
    test = metrics["test"]
    assert test["accuracy"] >= 0.98 and test["coverage"] >= 0.98
    assert test["false_edible"] == 0 and metrics["gate_passed"] is True
    assert (metrics["dataset"], test["split"], test["rows"]) == ("uci", "random", 1625)
    assert json.loads((repo / "reports/safety.json").read_text())["random"]["edible"] == 0

    runs = mlflow_runs(repo)
    assert set(runs["status"]) == {"FINISHED"} and runs["run_uuid"].nunique() == 2
    assert set(runs["name"]) == {"logreg-onehot-uci-random"}
    figures = [dict(zip(g["key"], g["value"], strict=True)) for _, g in runs.groupby("run_uuid")]
    (logged,) = [f for f in figures if f["test.coverage"] == test["coverage"]]  # C = 1's run
    assert logged["test.accuracy"] == test["accuracy"] and logged["test.false_edible"] == 0
    assert {"cv.false_edible_rate", "held_out.roc_auc", "safety.random.edible"} <= set(logged)


def test_answers_logged_while_serving_leave_dvc_status_clean_until_a_snapshot(
    repo, monkeypatch, capsys
):
    """The live log sits outside every DVC dependency (here open, with its -wal file, as the
    service keeps it); `mushroom monitor snapshot` versions the window the drift stage then
    judges: 30 answers, too few for drift, one labelled false edible all the same."""
    test = pd.read_parquet(repo / "data/prepared/test.parquet").head(30)
    traits = [c for c in test.columns if c in TRAIT_COLUMNS]
    rows = [
        (f"r{i}", "2026-11-26T00:00:00Z", "m:1", "uci", 0.02, "edible", 0, "") + tuple(record)
        for i, record in enumerate(test[traits].itertuples(index=False))
    ]
    log = PredictionLog(repo / paths.PREDICTION_LOG)
    try:
        log.append(traits, rows)
        assert log.add_feedback("r0", "poisonous", "2026-11-27T00:00:00Z")
        assert (repo / f"{paths.PREDICTION_LOG}-wal").exists()
        assert run(["dvc", "status"], repo).strip().endswith("Data and pipelines are up to date.")

        monkeypatch.chdir(repo)  # the commands' defaults are relative to the repository
        capsys.readouterr()
        assert mushroom(["monitor", "snapshot"]) == 0
        assert "30 answers into data/monitoring/window.parquet" in capsys.readouterr().out
        assert "drift" in run(["dvc", "status"], repo)  # the window changed, nothing else
        assert stages_run(run(["dvc", "repro"], repo)) == ["drift"]
        assert run(["dvc", "status"], repo).strip().endswith("Data and pipelines are up to date.")
        report = json.loads((repo / "reports/drift.json").read_text())
        assert report["live_false_edible"] == 1 and not report["drift_judged"]
        run(["git", "add", "data/monitoring"], repo)
        run(["git", "commit", "-qm", "drift window"], repo)

        capsys.readouterr()
        assert mushroom(["monitor", "check", "--live"]) == 5
        assert json.loads((repo / "data/live/drift.json").read_text())["n_current"] == 30
        # The live log holds what the window does: one run, the one dvc repro kept.
        assert "drift: history: already kept in data/live/history" in capsys.readouterr().out
        last = history.runs(repo / paths.HISTORY)[-1]
        assert (last["source"], last["n_current"], last["live_false_edible"]) == (
            "log:window.parquet",
            30,
            1,
        )
        assert run(["dvc", "status"], repo).strip().endswith("Data and pipelines are up to date.")
    finally:
        log.close()


def declared_outputs(repo: Path) -> dict[str, bytes]:
    """Every file dvc.yaml declares as a stage output (outs and metrics), with its bytes."""
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    declared = [
        repo / (next(iter(out)) if isinstance(out, dict) else out)
        for stage in stages.values()
        for out in stage.get("outs", []) + stage.get("metrics", [])
    ]
    files = [f for path in declared for f in (sorted(path.rglob("*")) if path.is_dir() else [path])]
    return {str(f.relative_to(repo)): f.read_bytes() for f in files if f.is_file()}


def failed_repro(repo: Path, stage: str) -> list[str]:
    """`dvc repro` that must fail: the lines ``stage`` printed."""
    done = subprocess.run(
        ["dvc", "repro"], cwd=repo, env=dvc_env(), capture_output=True, text=True, timeout=600
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0 and "Traceback" not in output, output
    return [line for line in output.splitlines() if line.startswith(f"{stage}: ")]


def test_a_failed_repro_keeps_the_last_good_outputs(repo):
    run(["dvc", "repro"], repo)  # up to date after the test above: the last good outputs
    good, lock = declared_outputs(repo), (repo / "dvc.lock").read_bytes()
    assert {"models/model.joblib", "reports/metrics.json", "data/prepared/train.parquet"} <= set(
        good
    )

    params = repo / "params.yaml"
    saved = params.read_text()
    set_params(params, {"train.seed": "abc"})  # only train runs, so DVC would delete its outs
    assert failed_repro(repo, "train") == [
        "train: params.yaml: train.seed = 'abc': Input should be a valid integer"
    ]
    params.write_text(saved)
    assert declared_outputs(repo) == good

    raw = repo / "data/raw/uci/agaricus-lepiota.data"
    original = raw.read_bytes()
    raw.unlink()  # a new file: the one in the workspace may be linked to DVC's cache
    raw.write_bytes(original + b"p,x,s,n,t,p,f,c,n,k,e,e,s,s,w,w,p,w,o,p,k,s,mars\n")
    assert failed_repro(repo, "prepare") == [
        "prepare: data/raw/uci/agaricus-lepiota.data, line 8125, column 'habitat', "
        "value 'mars': unknown code; allowed: d, g, l, m, p, u, w"
    ]
    raw.unlink()
    raw.write_bytes(original)
    run(["git", "checkout", "data/raw/uci.dvc"], repo)  # repro recorded the corrupted data
    assert declared_outputs(repo) == good and (repo / "dvc.lock").read_bytes() == lock
    assert run(["dvc", "status"], repo).strip().endswith("Data and pipelines are up to date.")


def test_encoder_change_reruns_featurize_and_downstream(repo):
    set_params(repo / "params.yaml", {"featurize.encoder": "count"})
    assert stages_run(run(["dvc", "repro"], repo)) == ["featurize", "train", "evaluate", "drift"]
    run(["git", "checkout", "params.yaml"], repo)


def test_temp_experiment_logs_to_the_workspace_mlflow_store(repo):
    before = mlflow_runs(repo)["run_uuid"].nunique()
    out = run(["dvc", "exp", "run", "--temp", "-S", "train.model=naive_bayes"], repo)
    assert "Ran experiment" in out
    runs = mlflow_runs(repo)
    assert runs["run_uuid"].nunique() == before + 1
    assert runs["name"].str.startswith("naive_bayes-").any()
    assert not list((repo / ".dvc" / "tmp").rglob("mlflow.db"))  # nothing left in the copy
    with sqlite3.connect(repo / "mlflow.db") as db:
        artifacts = [uri for (uri,) in db.execute("select artifact_uri from runs")]
    assert all(uri.startswith(str(repo / "mlruns")) for uri in artifacts)
    assert len(list((repo / "mlruns").rglob("MLmodel"))) == len(artifacts)
    # The README's table of a sweep holds the figures and params that changed, and nothing
    # else: before --drop, the dependencies' changed hashes filled a 120-column terminal and
    # hid the params behind a "…" (its width over the README's sweep: docs/pipeline.md).
    lines = README.read_text().splitlines()
    (shown,) = [line.split("#")[0] for line in lines if line.startswith("dvc exp show")]
    command = [*shlex.split(shown), "--no-pager"]
    table = repocopy.run(command, repo, dvc_env() | {"COLUMNS": "400"})
    header = table.splitlines()[1].split()
    summary = json.loads((repo / paths.SUMMARY).read_text())
    figures = {
        f"{split}.{name}"
        for split, names in summary.items()
        if isinstance(names, dict)
        for name in names
    } | {name for name, v in summary.items() if not isinstance(v, dict)}
    assert header[:2] == ["Experiment", "Created"] and "train.model" in header
    assert set(header[2:]) - {"train.model"} <= figures, header
    assert "naive_bayes" in table


def test_species_split_on_the_real_secondary_data(repo, tmp_path):
    params = set_params(
        tmp_path / "params.yaml",
        {"data.dataset": "secondary", "prepare.split": "species"},
        source=repo / "params.yaml",
    )
    assert (
        prepare.main(
            [
                "--params",
                str(params),
                "--raw-dir",
                str(repo / "data/raw"),
                "--out-dir",
                str(tmp_path / "prepared"),
                "--summary",
                str(tmp_path / "summary.json"),
            ]
        )
        == 0
    )
    train_df = pd.read_parquet(tmp_path / "prepared" / prepared.TRAIN_FILE)
    test_df = pd.read_parquet(tmp_path / "prepared" / prepared.TEST_FILE)
    assert set(train_df[SPECIES_ID]).isdisjoint(test_df[SPECIES_ID])
    assert train_df[SPECIES_ID].nunique() + test_df[SPECIES_ID].nunique() == 173
    assert len(train_df) + len(test_df) == 60_923  # 61,069 rows less 146 exact duplicates


def test_labelled_answers_export_push_and_retrain_with_a_live_split(
    repo, tmp_path, monkeypatch, capsys
):
    """`mushroom feedback export` versions the labelled answers (dvc add, pushed to a remote);
    `dvc exp run -S prepare.feedback.use=true` trains on the old ones and scores the newest."""
    run(["dvc", "repro"], repo)  # up to date after the tests above
    test = pd.read_parquet(repo / "data/prepared/test.parquet").head(40)
    train = pd.read_parquet(repo / "data/prepared/train.parquet")
    features = prepared.read_schema(repo / "data/prepared").features
    unseen = novel_description(train.iloc[0], pd.concat([train, test]), features)
    described = pd.concat([unseen.to_frame().T.assign(**{"class": "poisonous"}), test])
    described.index = range(len(described))
    log_answers(tmp_path / "predictions.db", "uci", described, features)

    monkeypatch.chdir(repo)
    assert mushroom(["feedback", "export", "--log", str(tmp_path / "predictions.db")]) == 0
    assert "41 new labelled answers, 41 in all, in data/feedback/labelled.parquet" in (
        capsys.readouterr().out
    )
    assert "prepare" in run(["dvc", "status"], repo)  # the dataset changed, nothing else
    run(["git", "add", "data/feedback"], repo)
    run(["git", "commit", "-qm", "labelled answers"], repo)
    remote = tmp_path / "remote"
    run(["dvc", "remote", "add", "--local", "scratch", str(remote)], repo)
    run(["dvc", "push", "-r", "scratch", "data/feedback/labelled.parquet.dvc"], repo)
    md5 = yaml.safe_load((repo / "data/feedback/labelled.parquet.dvc").read_text())["outs"][0]
    assert (remote / "files/md5" / md5["md5"][:2] / md5["md5"][2:]).is_file()

    before = set(mlflow_runs(repo)["run_uuid"])
    run(["dvc", "exp", "run", "--temp", "-S", "prepare.feedback.use=true"], repo)
    runs = mlflow_runs(repo)
    logged = runs[~runs["run_uuid"].isin(before)]
    figures = dict(zip(logged["key"], logged["value"], strict=True))
    newest = described.tail(math.ceil(0.5 * 41))  # params.yaml's live_share
    assert figures["live.rows"] == len(newest)
    assert figures["live.poisonous"] == (newest["class"] == "poisonous").sum()
    assert figures["labelled.rows"] == 41 and figures["test.rows"] == 1625
    assert figures["labelled.poisonous"] == (described["class"] == "poisonous").sum()

    # The workspace still says use: false: prepare reruns on the new dataset, output unchanged.
    assert stages_run(run(["dvc", "repro"], repo)) == ["prepare"]
    assert len(pd.read_parquet(repo / "data/prepared/labelled.parquet")) == 0
