"""Before promotion the logged traffic and feedback are replayed through the candidate: a
labelled poisonous description answered edible refuses it, and the answers that change are
counted in reports/replay.json and in MLflow.

The candidate is the session's promoted UCI model, in a copy of its workdir and MLflow store
from which its registration (or only its alias) is removed; the log is a real SQLite
prediction log written as the service writes it, by the candidate's own Classifier. Real
MLflow SQLite store, real BentoML store."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from mushroom.cli import main as mushroom
from mushroom.core.catalogue import UCI
from mushroom.data.prediction_log import PredictionLog
from mushroom.data.raw import read_raw
from mushroom.lifecycle.model_card import ModelCard
from mushroom.lifecycle.store_names import NAME
from mushroom.serving.classifier import Classifier
from servefixtures import Promoted, promote

LOGGED_AT = "2026-12-01T12:00:00Z"


@pytest.fixture
def candidate(uci_model, tmp_path, request) -> Promoted:
    """The session's model in a copy whose MLflow store has its run but, as
    ``request.param`` says, no registered model (``model``) or no champion (``alias``)."""
    workdir = tmp_path / "work"
    shutil.copytree(
        uci_model.workdir, workdir, symlinks=True, ignore=shutil.ignore_patterns("mlruns")
    )
    env = uci_model.env | {
        "MLFLOW_TRACKING_URI": f"sqlite:///{workdir / 'mlflow.db'}",
        "BENTOML_HOME": str(tmp_path / "bentoml"),
    }
    import mlflow

    client = mlflow.MlflowClient(env["MLFLOW_TRACKING_URI"])
    if request.param == "model":
        client.delete_registered_model(NAME)
    else:
        client.delete_registered_model_alias(NAME, "champion")
    return Promoted(workdir, env, tag=uci_model.tag, version=uci_model.version)


def promoted_folder(uci_model) -> Path:
    return Path(uci_model.env["BENTOML_HOME"], "models", *uci_model.tag.split(":"))


@pytest.fixture(scope="module")
def classifier(uci_model) -> Classifier:
    """The candidate as the service answers with it."""
    return Classifier(promoted_folder(uci_model))


@pytest.fixture(scope="module")
def run_id(uci_model) -> str:
    """The candidate's evaluate run."""
    return ModelCard.read(promoted_folder(uci_model)).mlflow_run_id


@pytest.fixture(scope="module")
def descriptions(pulled_repo) -> dict[str, list[dict]]:
    """Full UCI descriptions: edible with anise odor (answered edible), poisonous with foul."""
    rows = read_raw("uci", pulled_repo / "data" / "raw")
    picked = {
        "edible": rows[(rows["class"] == "edible") & (rows["odor"] == "anise")].head(5),
        "poisonous": rows[(rows["class"] == "poisonous") & (rows["odor"] == "foul")].head(3),
    }
    return {
        kind: [{t.name: row[t.name] for t in UCI.traits} for _, row in frame.iterrows()]
        for kind, frame in picked.items()
    }


def write_log(path: Path, classifier: Classifier, mushrooms: list[dict], earlier: int = 0):
    """The candidate's answers to ``mushrooms``, logged as the service logs them; the first
    ``earlier`` as an earlier champion answered them: uncertain."""
    answers, traits = classifier.classify([classifier.mushroom(m) for m in mushrooms])
    rows = classifier.log_rows(answers, traits, LOGGED_AT)
    rows[:earlier] = [
        (r[0], r[1], f"{NAME}:0", r[3], r[4], "uncertain", *r[6:]) for r in rows[:earlier]
    ]
    PredictionLog(path).append(classifier.trait_names, rows)
    return rows


def refused_for(candidate: Promoted, log: Path, fooled: str) -> dict:
    """Promote ``candidate``, which must be refused for request ``fooled`` alone (answered
    edible by it, labelled poisonous); its replay report."""
    refused = promote(candidate.workdir, candidate.env)
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert refused.stderr.splitlines() == [
        f"promote: refused: replay of {log}: request {fooled} (logged {LOGGED_AT}, answered "
        f"edible by {NAME}:{candidate.version}) is labelled poisonous and the candidate "
        "answers it edible"
    ]
    return json.loads((candidate.workdir / "reports" / "replay.json").read_text())


def mlflow_state(workdir: Path, run_id: str) -> dict:
    with sqlite3.connect(workdir / "mlflow.db") as db:
        return {
            "aliases": db.execute("select alias, version from registered_model_aliases").fetchall(),
            "run": dict(
                db.execute(
                    "select key, value from tags where run_uuid = ? and key like 'replay.%'",
                    (run_id,),
                )
            ),
            "version": dict(
                db.execute("select key, value from model_version_tags where key like 'replay.%'")
            ),
        }


def test_without_a_log_there_is_nothing_to_replay_and_promotion_goes_on(uci_model):
    """The session's model was promoted with no log in its workdir."""
    report = json.loads((uci_model.workdir / "reports" / "replay.json").read_text())
    log = uci_model.workdir / "live" / "predictions.db"
    assert report == {
        "log": str(log),
        "replayed": 0,
        "note": "no prediction log: nothing to replay",
    }
    with sqlite3.connect(uci_model.workdir / "mlflow.db") as db:
        tags = dict(db.execute("select key, value from model_version_tags where version = 1"))
    assert (tags["replay.replayed"], tags["replay.log"]) == ("0", str(log))


@pytest.mark.parametrize("candidate", ["alias"], indirect=True)
def test_a_labelled_poisonous_description_answered_edible_refuses_promotion(
    candidate, classifier, descriptions, run_id
):
    """Version 1 is registered but not champion: promoting it again would move the alias."""
    log = candidate.workdir / "live" / "predictions.db"
    rows = write_log(log, classifier, descriptions["edible"] + descriptions["poisonous"])
    assert rows[0][5] == "edible"  # so the label below makes a false edible
    fooled = rows[0][0]
    PredictionLog(log).add_feedback(fooled, "poisonous", LOGGED_AT)
    PredictionLog(log).add_feedback(rows[-1][0], "poisonous", LOGGED_AT)  # answered poisonous

    report = refused_for(candidate, log, fooled)
    assert (report["labelled"], report["labelled_false_edible"]) == (2, 1)
    assert [row["request_id"] for row in report["false_edible"]] == [fooled]
    state = mlflow_state(candidate.workdir, run_id)
    assert state["aliases"] == []  # the alias did not move
    assert state["run"]["replay.labelled_false_edible"] == "1"
    assert not (Path(candidate.env["BENTOML_HOME"]) / "models").exists()


@pytest.mark.parametrize("candidate", ["model"], indirect=True)
def test_promotion_reports_the_answers_that_change(candidate, classifier, descriptions, run_id):
    log = candidate.workdir / "live" / "predictions.db"
    mushrooms = descriptions["edible"] + descriptions["poisonous"]
    rows = write_log(log, classifier, mushrooms, earlier=2)
    PredictionLog(log).append(
        [], [("b" * 32, LOGGED_AT, f"{NAME}:7", "secondary", 0.9, "poisonous", False, "")]
    )
    PredictionLog(log).add_feedback(rows[2][0], "edible", LOGGED_AT)
    PredictionLog(log).add_feedback(rows[-1][0], "poisonous", LOGGED_AT)

    done = promote(candidate.workdir, candidate.env, "--reason", "replayed")
    assert done.returncode == 0, done.stderr
    assert (
        f"promote: replay of {log}: 8 logged uci answers judged again: 2 changed (25.0%): "
        "uncertain -> edible 2; 2 newly edible; 2 labelled, 0 poisonous answered edible; "
        "skipped 1 secondary"
    ) in done.stdout
    report = json.loads((candidate.workdir / "reports" / "replay.json").read_text())
    assert report["changes"] == {
        "edible -> edible": 3,
        "poisonous -> poisonous": 3,
        "uncertain -> edible": 2,
    }
    assert (report["changed"], report["changed_share"], report["new_edible"]) == (2, 0.25, 2)
    assert sorted(report["new_edible_request_ids"]) == sorted(r[0] for r in rows[:2])
    assert report["answered_by"] == {f"{NAME}:{candidate.version}": 6, f"{NAME}:0": 2}
    assert report["skipped_other_datasets"] == {"secondary": 1}
    state = mlflow_state(candidate.workdir, run_id)
    assert state["aliases"] == [("champion", 1)]
    expected = {"replay.changed": "2", "replay.new_edible": "2", "replay.skipped": "1"}
    assert expected.items() <= state["run"].items()
    assert expected.items() <= state["version"].items()
    assert state["version"]["replay.labelled_false_edible"] == "0"


@pytest.mark.parametrize("candidate", ["alias"], indirect=True)
def test_an_exported_label_refuses_promotion_after_the_log_is_rotated(
    candidate, classifier, descriptions, run_id
):
    """`mushroom feedback export` keeps labels past the log's life: a labelled false edible
    only the exported dataset still holds refuses promotion as the log's would."""
    log = candidate.workdir / "live" / "predictions.db"
    exported = candidate.workdir / "feedback" / "labelled.parquet"
    rows = write_log(log, classifier, descriptions["edible"] + descriptions["poisonous"])
    fooled = rows[0][0]
    PredictionLog(log).add_feedback(fooled, "poisonous", LOGGED_AT)
    PredictionLog(log).add_feedback(rows[-1][0], "poisonous", LOGGED_AT)
    assert (
        mushroom(["feedback", "export", "--no-dvc", "--log", str(log), "--out", str(exported)]) == 0
    )

    refused = promote(candidate.workdir, candidate.env)
    assert refused.returncode == 3, refused.stdout + refused.stderr
    report = json.loads((candidate.workdir / "reports" / "replay.json").read_text())
    assert (report["replayed"], report["only_in_feedback_dataset"], report["labelled"]) == (8, 0, 2)

    for path in log.parent.glob("predictions.db*"):  # rotated away
        path.unlink()
    report = refused_for(candidate, log, fooled)
    assert (report["replayed"], report["only_in_feedback_dataset"]) == (2, 2)
    assert (report["labelled"], report["labelled_false_edible"]) == (2, 1)

    exported.write_text("not parquet")
    refused = promote(candidate.workdir, candidate.env)
    assert refused.returncode == 3
    assert refused.stderr.startswith(f"promote: refused: {exported}: not a feedback dataset: ")
    assert refused.stderr.rstrip().endswith("cannot be replayed (name another with --feedback)")
    state = mlflow_state(candidate.workdir, run_id)
    assert state["aliases"] == []  # the alias never moved
