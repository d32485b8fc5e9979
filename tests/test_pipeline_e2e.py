"""End to end: a copy of this repository, the real raw data from the DVC remote, real
``dvc repro`` / ``dvc exp run``, and the MLflow store they write."""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mushroom import dataset
from mushroom.rawdata import SPECIES_ID
from mushroom.stages import prepare

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(cmd: list[str], cwd: Path) -> str:
    env = os.environ | {"PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    env.pop("MLFLOW_TRACKING_URI", None)  # the copy's own mlflow.db is under test
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def stages_run(output: str) -> list[str]:
    return re.findall(r"Running stage '(\w+)'", output)


def remote_url() -> Path:
    """The project's default remote, made absolute (relative URLs are relative to .dvc/)."""
    config = configparser.ConfigParser()
    config.read(REPO / ".dvc" / "config")
    remote = config["core"]["remote"]
    return (REPO / ".dvc" / config[f"'remote \"{remote}\"'"]["url"]).resolve()


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A fresh copy of the committed tree, its own git history, raw data pulled."""
    copy = tmp_path_factory.mktemp("repo")
    tracked = (
        subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True)
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, tracked):
        if (REPO / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, copy / name)
    run(["git", "init", "-q"], copy)
    run(["git", "add", "-A"], copy)
    run(
        [
            "git",
            "-c",
            "user.name=test",
            "-c",
            "user.email=test@example.invalid",
            "commit",
            "-qm",
            "copy",
        ],
        copy,
    )
    run(["dvc", "remote", "modify", "--local", "origin", "url", str(remote_url())], copy)
    run(["dvc", "pull", "data/raw/uci.dvc", "data/raw/secondary.dvc"], copy)
    return copy


def set_params(repo: Path, **changes) -> None:
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for dotted, value in changes.items():
        node = params
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node[key]
        node[leaf] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


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


def test_repro_then_noop_then_train_param_reruns_only_train_and_evaluate(repo):
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

    set_params(repo, **{"train.model": "random_forest"})
    assert stages_run(run(["dvc", "repro"], repo)) == ["train", "evaluate"]
    metrics = json.loads((repo / "reports/metrics.json").read_text())
    assert metrics["accuracy"] >= 0.99
    assert metrics["false_edible"] == 0 and metrics["gate_passed"] is True
    assert (metrics["dataset"], metrics["split"], metrics["n_test"]) == ("uci", "random", 1625)

    runs = mlflow_runs(repo)
    assert set(runs["status"]) == {"FINISHED"} and runs["run_uuid"].nunique() == 2
    latest = runs[runs["name"].str.startswith("random_forest-onehot-uci-random")]
    logged = dict(zip(latest["key"], latest["value"], strict=True))
    assert logged["accuracy"] == metrics["accuracy"] and logged["false_edible"] == 0
    assert "cv_roc_auc" in logged


def test_encoder_change_reruns_featurize_train_evaluate(repo):
    set_params(repo, **{"featurize.encoder": "count"})
    assert stages_run(run(["dvc", "repro"], repo)) == ["featurize", "train", "evaluate"]
    run(["git", "checkout", "params.yaml"], repo)


def test_temp_experiment_logs_to_the_workspace_mlflow_store(repo):
    before = mlflow_runs(repo)["run_uuid"].nunique()
    out = run(["dvc", "exp", "run", "--temp", "-S", "train.model=naive_bayes"], repo)
    assert "Ran experiment" in out
    runs = mlflow_runs(repo)
    assert runs["run_uuid"].nunique() == before + 1
    assert runs["name"].str.startswith("naive_bayes-").any()
    assert not list((repo / ".dvc" / "tmp").rglob("mlflow.db"))  # nothing left in the copy
    assert "naive_bayes" in run(["dvc", "exp", "show", "--md", "--no-pager"], repo)


def test_species_split_on_the_real_secondary_data(repo, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text((repo / "params.yaml").read_text())
    set_params(tmp_path, **{"data.dataset": "secondary", "prepare.split": "species"})
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
    train_df = pd.read_parquet(tmp_path / "prepared" / dataset.TRAIN_FILE)
    test_df = pd.read_parquet(tmp_path / "prepared" / dataset.TEST_FILE)
    assert set(train_df[SPECIES_ID]).isdisjoint(test_df[SPECIES_ID])
    assert train_df[SPECIES_ID].nunique() + test_df[SPECIES_ID].nunique() == 173
    assert len(train_df) + len(test_df) == 60_923  # 61,069 rows less 146 exact duplicates
