"""The drift stage (real Evidently reports) and `mushroom monitor check`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

import rawfixtures
import repocopy
from mushroom.cli import main as mushroom
from mushroom.core.catalogue import NOT_RECORDED
from mushroom.data.log_reading import write_snapshot
from mushroom.data.prediction_log import PredictionLog
from mushroom.serving.classifier import Classifier
from mushroom.stages import drift
from servefixtures import run_module, trained_workdir


def run_drift(
    workdir: Path, tmp_path: Path, log: Path | None = None, as_process: bool = False, **params
) -> dict:
    """The stage on ``workdir``'s model, judging ``log`` (an empty snapshot if None), keeping
    its history in ``tmp_path / "history"``; ``as_process``: as DVC runs it (``python -m``)."""
    params_file = rawfixtures.set_params(
        tmp_path / "params.yaml",
        {k.replace("__", "."): v for k, v in params.items()},
        source=workdir / "params.yaml",
    )
    out = tmp_path / "drift"
    args = [
        "--params",
        str(params_file),
        "--prepared",
        str(workdir / "prepared"),
        "--model",
        str(workdir / "models" / "model.joblib"),
        "--policy",
        str(workdir / "models" / "policy.json"),
        "--log",
        str(log or empty_snapshot(tmp_path)),
        "--json",
        str(out / "drift.json"),
        "--html",
        str(out / "drift.html"),
        "--history",
        str(tmp_path / "history"),
    ]
    if as_process:
        done = run_module("mushroom.stages.drift", args, repocopy.tool_env())
        assert done.returncode == 0, done.stderr
    else:
        assert drift.main(args) == 0
    return json.loads((out / "drift.json").read_text())


def empty_snapshot(tmp_path: Path) -> Path:
    """What a fresh clone holds: the snapshot of a log with no answers yet."""
    PredictionLog(tmp_path / "empty.db").close()
    write_snapshot(tmp_path / "empty.db", tmp_path / "empty.parquet")
    return tmp_path / "empty.parquet"


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_a_plain_sample_raises_no_alarm(uci_model, tmp_path, seed):
    report = run_drift(uci_model.workdir, tmp_path, drift__source="scenario", drift__seed=seed)
    assert report["source"] == "scenario" and report["n_reference"] == 6499
    assert report["current"] == "none: 1625 test-split rows"  # all there are
    assert report["drifted_columns"] == [] and not report["dataset_drift"]
    assert not report["prediction_drift"]
    assert max(report["column_scores"].values()) < 0.1
    # training descriptions are familiar, and so are test-split ones, mostly
    assert report["reference_unfamiliar_share"] == 0.0 and report["unfamiliar_share"] < 0.01
    assert not report["unfamiliar_alarm"]
    assert "Dataset Drift is NOT detected" in (tmp_path / "drift" / "drift.html").read_text()


def test_a_shifted_trait_raises_the_alarm_and_is_named(uci_model, tmp_path, capsys):
    report = run_drift(
        uci_model.workdir,
        tmp_path,
        drift__source="scenario",
        drift__scenario="shift",
        drift__shift_column="habitat",
        drift__shift_to="urban",
        drift__shift_fraction=0.4,
    )
    assert report["source"] == "scenario" and report["current"].startswith("shift: ")
    assert "habitat" in report["drifted_columns"] and report["dataset_drift"]
    assert report["column_scores"]["habitat"] >= 0.1
    # One drifted trait of 21 is dataset drift under share_threshold 0; the HTML agrees.
    assert "Dataset Drift is detected" in (tmp_path / "drift" / "drift.html").read_text()
    capsys.readouterr()
    code = mushroom(["monitor", "check", "--report", str(tmp_path / "drift" / "drift.json")])
    assert code in (3, 4)  # dataset drift, and prediction drift if the verdicts moved too
    assert re.search(
        r"ALERT dataset drift: \d+% of traits drifted, more than drift.share_threshold 0% "
        r"\(.*habitat",
        capsys.readouterr().out,
    )


def test_unseen_species_report_on_the_secondary_data(pulled_repo, tmp_path, capsys):
    workdir = tmp_path / "work"
    trained_workdir(
        workdir,
        pulled_repo / "data" / "raw",
        data__dataset="secondary",
        prepare__split="species",
        train__cv_folds=2,
    )
    report = run_drift(
        workdir,
        tmp_path,
        drift__source="scenario",
        drift__scenario="unseen_species",
        drift__scenario_rows=5000,
    )
    assert report["current"] == "unseen_species: 5000 test-split rows"
    assert report["n_current"] == 5000
    # mushrooms of species the model never saw fit no training species' profile, mostly
    assert report["unfamiliar_share"] > 0.9 and report["unfamiliar_alarm"]
    assert set(report["column_scores"]) >= {"cap_diameter", "habitat", "probability"}
    with capsys.disabled():
        print(
            f"\nunseen species (secondary): drift share {report['drift_share']}, drifted "
            f"{report['drifted_columns']}, prediction drift score "
            f"{report['prediction_drift_score']}, verdict {report['verdict_drift_score']}"
        )


def as_sent(frame: pd.DataFrame, features: list[str]) -> list[dict]:
    """Rows as a person sends them: a trait the data leaves "not recorded" is left out (a
    person cannot give it; the service logs it unknown)."""
    return [
        {k: v for k, v in row.items() if v != NOT_RECORDED}
        for row in frame[features].to_dict(orient="records")
    ]


def test_drift_reads_the_log_the_service_writes(uci_model, pulled_repo, bentoml_home, tmp_path):
    """Rows logged by the service's own code, with traits left out, are the current data:
    values given are compared, how often a trait was left out is reported apart."""
    classifier = served_classifier(uci_model, bentoml_home)
    test = pd.read_parquet(uci_model.workdir / "prepared" / "test.parquet")
    records = as_sent(test, classifier.features)
    for record in records[::2]:
        record.pop("habitat")  # left out: logged as unknown
    mushrooms = [classifier.mushroom(r) for r in records[:600]]
    log_answers(classifier, mushrooms, tmp_path / "predictions.db")

    report = run_drift(
        uci_model.workdir,
        tmp_path,
        log=tmp_path / "predictions.db",
        drift__min_rows=100,
        drift__window_rows=500,
    )
    assert report["source"] == "log" and report["n_current"] == 500 and report["drift_judged"]
    assert report["current"].endswith("predictions.db: 500 of 600 logged uci answers")
    assert "habitat" not in report["drifted_columns"]  # the habitats given are as in training
    assert report["missingness"]["habitat"]["current_unknown"] == pytest.approx(0.5, abs=0.02)
    assert report["missingness"]["habitat"]["reference_unknown"] == 0
    # a description with a trait left out is unlike any training description
    judged = records[100:600]
    partial = sum("habitat" not in r or "stalk_root" not in r for r in judged) / len(judged)
    assert partial > 0.5 and report["unfamiliar_share"] == pytest.approx(partial, abs=0.01)
    assert report["unfamiliar_alarm"]
    # the data's own "not recorded" is reported apart, never compared as a value
    stalk_root = report["missingness"]["stalk_root"]
    assert stalk_root["reference_not_recorded"] > 0.2 and stalk_root["current_not_recorded"] == 0
    assert "stalk_root" not in report["drifted_columns"]
    too_few = run_drift(
        uci_model.workdir, tmp_path, log=tmp_path / "predictions.db", drift__min_rows=1000
    )
    assert too_few["source"] == "log" and not too_few["drift_judged"]  # never a scenario
    assert too_few["reason"] == "600 logged rows, fewer than drift.min_rows = 1000"
    assert "drift_share" not in too_few and too_few["n_current"] == 600


def test_the_html_report_renders_without_network(uci_model, tmp_path):
    run_drift(uci_model.workdir, tmp_path, as_process=True, drift__source="scenario")
    html = (tmp_path / "drift" / "drift.html").read_text()
    assert len(html) > 100_000 and "<script" in html
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=[\"']?https?:|url\(https?:", html)


@pytest.mark.parametrize(
    ("report", "code", "line"),
    [
        ({}, 0, "OK no alarm [source log (500 rows)]"),
        (
            {
                "dataset_drift": True,
                "drift_share": 0.1,
                "drifted_columns": ["odor"],
                "column_scores": {"odor": 0.123456, "habitat": 0.01},
            },
            3,
            "ALERT dataset drift: 10% of traits drifted, more than drift.share_threshold 0% "
            "(odor 0.123)",
        ),
        (  # the verdicts fired, not P(poisonous): the line says which, and against what
            {
                "prediction_drift": True,
                "prediction_drift_score": 0.00442,
                "column_scores": {"probability": 0.00442, "verdict": 0.75},
            },
            4,
            "ALERT prediction drift: P(poisonous) score 0.00442 < drift.prediction_threshold "
            "0.1; verdicts score 0.75 >= drift.prediction_threshold 0.1",
        ),
        (
            {"unfamiliar_alarm": True, "unfamiliar_share": 0.125},
            3,
            "ALERT 12.5% of descriptions are unlike the training mushrooms, above "
            "drift.max_unfamiliar_share 5.0% (training split: 0.0%)",
        ),
        (
            {
                "dataset_drift": True,
                "drift_share": 0.1,
                "drifted_columns": ["odor"],
                "prediction_drift": True,
                "prediction_drift_score": 0.25,
                "column_scores": {"odor": 0.2, "probability": 0.25, "verdict": 0.0},
                "live_false_edible": 2,
            },
            5,
            "ALERT 2 labelled poisonous mushroom(s) were answered edible",
        ),
    ],
)
def test_monitor_check_exit_codes(tmp_path, capsys, report, code, line):
    healthy = {
        "source": "log",
        "current": "500 rows",
        "n_current": 500,
        "drift_judged": True,
        "dataset_drift": False,
        "drift_share": 0.0,
        "drifted_columns": [],
        "prediction_drift": False,
        "prediction_drift_score": 0.01,
        "unfamiliar_alarm": False,
        "unfamiliar_share": 0.0,
        "reference_unfamiliar_share": 0.0,
        "thresholds": {"prediction": 0.1, "share": 0.0, "unfamiliar": 0.05},
    }
    path = tmp_path / "drift.json"
    path.write_text(json.dumps(healthy | report))
    assert mushroom(["monitor", "check", "--report", str(path)]) == code
    assert line in capsys.readouterr().out


def test_monitor_check_without_a_report(tmp_path, capsys):
    assert mushroom(["monitor", "check", "--report", str(tmp_path / "absent.json")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert mushroom(["monitor", "check", "--log", str(tmp_path / "predictions.db")]) == 2
    assert "--log names the live log of --live" in capsys.readouterr().err


def served_classifier(uci_model, bentoml_home) -> Classifier:
    return Classifier(bentoml_home / "models" / "mushroom-classifier" / uci_model.tag.split(":")[1])


def log_answers(classifier, mushrooms: list[dict], path: Path) -> list[dict]:
    """``mushrooms`` (validated) answered and logged at ``path`` as the service does."""
    answers, values = classifier.classify(mushrooms)
    log = PredictionLog(path)
    log.append(classifier.trait_names, classifier.log_rows(answers, values, "2026-11-26T00:00:00Z"))
    log.close()
    return answers


def log_test_split(classifier, uci_model, tmp_path: Path, n: int):
    """Full descriptions of the first ``n`` test-split mushrooms, answered and logged as the
    service does; returns the answers and the ids of those answered edible and poisonous."""
    test = pd.read_parquet(uci_model.workdir / "prepared" / "test.parquet")
    records = test[classifier.features].head(n).to_dict(orient="records")
    mushrooms = [classifier.mushroom(r) for r in records]
    answers = log_answers(classifier, mushrooms, tmp_path / "predictions.db")
    edible = [a["request_id"] for a in answers if a["verdict"] == "edible"]
    poisonous = [a["request_id"] for a in answers if a["verdict"] == "poisonous"]
    return answers, edible, poisonous


def test_feedback_labels_join_the_log_and_false_edibles_are_named(
    uci_model, bentoml_home, tmp_path, capsys
):
    classifier = served_classifier(uci_model, bentoml_home)
    # An odor alone proves nothing (120 odorless UCI mushrooms are poisonous): never edible.
    alone, _ = classifier.classify([classifier.mushroom({"odor": o}) for o in ("none", "almond")])
    assert {a["verdict"] for a in alone} == {"uncertain"}
    answers, edible, poisonous = log_test_split(classifier, uci_model, tmp_path, 240)
    assert len(edible) >= 3 and poisonous
    # Two edible answers turn out poisonous, one is confirmed, one poisonous is confirmed.
    log = PredictionLog(tmp_path / "predictions.db")
    for request_id in edible[:2]:
        assert log.add_feedback(request_id, "poisonous", "2026-11-27T00:00:00Z")
    assert log.add_feedback(edible[2], "edible", "2026-11-27T00:00:00Z")
    assert log.add_feedback(poisonous[0], "poisonous", "2026-11-27T00:00:00Z")
    log.close()
    capsys.readouterr()
    report = run_drift(
        uci_model.workdir, tmp_path, log=tmp_path / "predictions.db", drift__min_rows=100
    )
    assert report["source"] == "log" and report["labelled"] == 4
    assert report["live_false_edible"] == 2 and report["live_accuracy"] == 0.5
    assert sorted(report["false_edible_request_ids"]) == sorted(edible[:2])
    out = capsys.readouterr().out
    assert all(f"FALSE EDIBLE: request {i}" in out for i in edible[:2])
    assert mushroom(["monitor", "check", "--report", str(tmp_path / "drift" / "drift.json")]) == 5


def test_the_html_shows_classification_quality_once_labels_come_back(
    uci_model, bentoml_home, tmp_path
):
    """Evidently's quality section appears with the first label, with drift.json's accuracy;
    labels of one class only (no binary rates to compute) still render."""
    classifier = served_classifier(uci_model, bentoml_home)
    _, edible, poisonous = log_test_split(classifier, uci_model, tmp_path, 120)
    log = PredictionLog(tmp_path / "predictions.db")

    def drift_with_html() -> tuple[dict, str]:
        report = run_drift(
            uci_model.workdir, tmp_path, log=tmp_path / "predictions.db", drift__min_rows=100
        )
        return report, (tmp_path / "drift" / "drift.html").read_text()

    report, html = drift_with_html()
    assert report["labelled"] == 0 and "Accuracy" not in html and "true_class" not in html

    assert log.add_feedback(poisonous[0], "poisonous", "2026-11-27T00:00:00Z")
    report, html = drift_with_html()
    assert report["live_accuracy"] == 1.0
    assert re.search(r'"title": "Accuracy metric".{0,200}"value": "1.000"', html)

    assert log.add_feedback(edible[0], "poisonous", "2026-11-27T00:00:00Z")
    assert log.add_feedback(edible[1], "edible", "2026-11-27T00:00:00Z")
    log.close()
    report, html = drift_with_html()
    assert report["labelled"] == 3 and report["live_false_edible"] == 1
    assert "Classification Model Performance. Target: 'true_class" in html
    shown = re.search(r'"value": "([\d.]+)", "label": "Accuracy"', html)
    assert shown and float(shown.group(1)) == pytest.approx(report["live_accuracy"], abs=5e-4)


def test_a_log_written_before_unfamiliar_and_reasons_gains_them(tmp_path):
    import sqlite3

    from mushroom.data.log_reading import read_predictions
    from mushroom.data.prediction_log import TRAIT_COLUMNS

    path = tmp_path / "predictions.db"
    with sqlite3.connect(path) as db:  # the schema of the previous release
        db.execute(
            "create table predictions (request_id text primary key, logged_at text not null, "
            "model_version text not null, dataset text not null, probability real not null, "
            f"verdict text not null, {', '.join(TRAIT_COLUMNS)})"
        )
        db.execute(
            "insert into predictions (request_id, logged_at, model_version, dataset, "
            "probability, verdict, odor) values ('old', 't', 'm:1', 'uci', 0.9, 'poisonous', "
            "'foul')"
        )
    log = PredictionLog(path)
    log.append(["odor"], [("new", "t", "m:2", "uci", 0.5, "uncertain", True, "unfamiliar", None)])
    log.close()
    rows = read_predictions(path, "uci").set_index("request_id")
    assert rows.loc["old", "unfamiliar"] == 0 and rows.loc["old", "reasons"] == ""
    assert rows.loc["new", "unfamiliar"] == 1 and rows.loc["new", "reasons"] == "unfamiliar"
    assert rows.loc["old", "odor"] == "foul" and rows.loc["new", "odor"] is None


def test_a_labelled_false_edible_alerts_below_min_rows(uci_model, bentoml_home, tmp_path, capsys):
    """20 answers, far fewer than drift.min_rows: drift is not judged, and says so; the one
    labelled false edible is still counted and alerted, and a scenario only when asked."""
    classifier = served_classifier(uci_model, bentoml_home)
    _, edible, _ = log_test_split(classifier, uci_model, tmp_path, 20)
    log = PredictionLog(tmp_path / "predictions.db")
    assert log.add_feedback(edible[0], "poisonous", "2026-11-27T00:00:00Z")
    log.close()
    window = tmp_path / "monitoring" / "window.parquet"
    snapshot = ["monitor", "snapshot", "--out", str(window), "--no-dvc", "--log"]
    assert mushroom([*snapshot, str(tmp_path / "absent.db")]) == 2
    assert "absent.db: no such file" in capsys.readouterr().err
    assert mushroom([*snapshot, str(tmp_path / "predictions.db")]) == 0

    report = run_drift(uci_model.workdir, tmp_path, log=window)
    assert report["source"] == "log" and report["n_current"] == 20
    assert not report["drift_judged"] and "fewer than drift.min_rows = 200" in report["reason"]
    assert report["live_false_edible"] == 1 and report["false_edible_request_ids"] == edible[:1]
    html = (tmp_path / "drift" / "drift.html").read_text()
    assert "source log (" in html and "drift not judged: 20 logged rows" in html
    assert "Accuracy" in html  # Evidently's quality section on the one label
    capsys.readouterr()
    assert mushroom(["monitor", "check", "--report", str(tmp_path / "drift" / "drift.json")]) == 5
    out = capsys.readouterr().out
    assert "ALERT 1 labelled poisonous mushroom(s) were answered edible" in out
    assert "NOTE drift not judged: 20 logged rows, fewer than drift.min_rows = 200" in out

    scenario = run_drift(uci_model.workdir, tmp_path, log=window, drift__source="scenario")
    assert scenario["source"] == "scenario" and scenario["drift_judged"]
    assert scenario["live_false_edible"] == 1  # labels count whatever the source


def test_a_few_partial_descriptions_are_missingness_not_drift(
    uci_model, bentoml_home, tmp_path, capsys
):
    """The issue's case: 12 partial descriptions among 260 answers. Before, every trait
    left out became a new category "missing" and most traits drifted."""
    classifier = served_classifier(uci_model, bentoml_home)
    test = pd.read_parquet(uci_model.workdir / "prepared" / "test.parquet")
    records = as_sent(test.head(260), classifier.features)
    kept = ("odor", "spore_print_color", "habitat")
    for i in range(12):
        records[i] = {trait: records[i][trait] for trait in kept}
    log_answers(classifier, [classifier.mushroom(r) for r in records], tmp_path / "predictions.db")
    report = run_drift(
        uci_model.workdir,
        tmp_path,
        log=tmp_path / "predictions.db",
        drift__min_rows=100,
        drift__scenario="shift",  # ignored: the source is the log
    )
    assert report["source"] == "log" and report["drift_judged"]
    left_out = [t for t in classifier.features if t not in kept]
    assert len(report["drifted_columns"]) <= 2, report["column_scores"]
    for trait in left_out:
        unknown = sum(trait not in r for r in records) / 260  # stalk_root: also not recorded
        assert report["missingness"][trait]["current_unknown"] == round(unknown, 4)
    assert "odor" not in report["missingness"]
    html = (tmp_path / "drift" / "drift.html").read_text()
    assert "<tr><td>cap_shape</td><td>4.6%</td><td>0.0%</td><td>0.0%</td><td>0.0%</td></tr>" in html
    line = capsys.readouterr().out.splitlines()[0]
    score = re.search(r"drift share \d\.\d\d; prediction drift ([\d.e-]+);", line).group(1)
    assert len(score.replace(".", "").lstrip("0")) <= 3  # 3 significant digits


def test_an_unknown_source_is_a_params_error(tmp_path, capsys):
    changed = {"drift.source": "stream"}
    params = rawfixtures.set_params(
        tmp_path / "params.yaml", changed, source=repocopy.REPO / "params.yaml"
    )
    assert drift.main(["--params", str(params)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.endswith("drift.source = 'stream': Input should be 'log' or 'scenario'")


def test_a_live_check_judges_with_the_served_champion_not_the_workspace_model(
    uci_model, bentoml_home, tmp_path, monkeypatch, capsys
):
    """The workspace's model may have moved on since promotion: the logged answers are
    judged by the champion that gave them. Here the workspace model is not even readable."""
    classifier = served_classifier(uci_model, bentoml_home)
    log_test_split(classifier, uci_model, tmp_path, 30)
    workspace = tmp_path / "workspace"
    (workspace / "data").mkdir(parents=True)
    (workspace / "data" / "prepared").symlink_to(uci_model.workdir / "prepared")
    (workspace / "params.yaml").write_bytes((uci_model.workdir / "params.yaml").read_bytes())
    (workspace / "models").mkdir()
    for name in ("model.joblib", "policy.json"):
        (workspace / "models" / name).write_text("not the champion")
    for name in ("MLFLOW_TRACKING_URI", "BENTOML_HOME"):
        monkeypatch.setenv(name, uci_model.env[name])
    monkeypatch.delenv("MUSHROOM_MODEL", raising=False)
    monkeypatch.chdir(workspace)
    live = ["monitor", "check", "--live", "--log", str(tmp_path / "predictions.db")]
    assert mushroom(live) == 0
    out = capsys.readouterr().out
    assert f"judged with the champion {uci_model.tag}" in out
    assert json.loads((workspace / "data/live/drift.json").read_text())["n_current"] == 30

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'no-store.db'}")
    assert mushroom(live) == 2  # no champion: the workspace model, said so, is no model
    said = capsys.readouterr()
    assert "judged with the workspace model models/model.joblib (no champion: " in said.out
    assert said.err.startswith("mushroom monitor check: ")
