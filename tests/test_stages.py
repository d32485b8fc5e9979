"""Each stage's CLI on small fixture data, chained as DVC would chain them."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import joblib
import pandas as pd
import pytest

import rawfixtures
from mushroom.core.catalogue import NOT_RECORDED, TARGET, get_catalogue
from mushroom.core.params import load_params
from mushroom.data import prepared
from mushroom.data.raw import SPECIES_ID
from mushroom.model.estimators import ENCODERS, MODELS, build_featurizer
from mushroom.model.evaluation import check_gate, failed_checks
from mushroom.stages import evaluate, featurize, prepare, train
from servefixtures import stage_args


class Workspace:
    """A pipeline workdir under one temp dir (the layout of ``servefixtures.stage_args``),
    each stage's CLI run in-process."""

    def __init__(self, root: Path, raw: Path, **params):
        assert raw == root / "raw", "stage_args reads the raw data from <root>/raw"
        self.root = root
        self.params = rawfixtures.write_params(root / "params.yaml", **params)
        self.args = stage_args(root)

    def run(self, stage) -> int:
        name = stage.__name__.rsplit(".", 1)[1]
        return stage.main(["--params", str(self.params), *self.args[name]])

    def prepare(self) -> int:
        return self.run(prepare)

    def featurize(self) -> int:
        return self.run(featurize)

    def train(self) -> int:
        return self.run(train)

    def evaluate(self) -> int:
        return self.run(evaluate)

    def json(self, name: str) -> dict:
        return json.loads((self.root / name).read_text())


@pytest.fixture
def mlflow_store(tmp_path, monkeypatch) -> Path:
    store = tmp_path / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    return store


def test_prepare_uci_decodes_keeps_constant_and_splits_stratified(uci_raw, tmp_path):
    ws = Workspace(tmp_path, uci_raw, prepare__test_size=0.25)
    assert ws.prepare() == 0
    train_df, schema = prepared.load_split(tmp_path / "prepared", prepared.TRAIN_FILE)
    test_df = pd.read_parquet(tmp_path / "prepared" / prepared.TEST_FILE)
    # the fixture, like UCI, has one veil type: kept, so that another one counts as unseen
    assert schema.features == get_catalogue("uci").trait_names and set(train_df["veil_type"]) == {
        "partial"
    }
    assert len(train_df) + len(test_df) == 400 and len(test_df) == 100
    catalogue = get_catalogue("uci")
    for feature in schema.features:
        assert set(train_df[feature]) <= set(catalogue.trait(feature).allowed_values)
    assert (train_df["stalk_root"] == NOT_RECORDED).any()  # "?" made explicit
    shares = [(part[TARGET] == "poisonous").mean() for part in (train_df, test_df)]
    assert abs(shares[0] - shares[1]) < 0.02
    summary = ws.json("reports/data_summary.json")
    assert summary["rows"] == 400 and summary["train"]["rows"] == 300
    assert summary["constant"] == ["veil_type"]
    assert summary["not_recorded"]["stalk_root"] == int(
        (pd.concat([train_df, test_df])["stalk_root"] == NOT_RECORDED).sum()
    )


def test_prepare_deduplicates_keeping_the_poisonous_label(tmp_path):
    raw = tmp_path / "raw"
    path = rawfixtures.write_uci(raw, n_rows=50)
    lines = path.read_text().splitlines()
    edible_copy = "e" + lines[0][1:]
    poisonous_copy = "p" + lines[0][1:]
    path.write_text("\n".join(lines + [edible_copy, poisonous_copy, lines[1]]) + "\n")
    rawfixtures.recount_uci(path)
    ws = Workspace(tmp_path, raw)
    assert ws.prepare() == 0
    summary = ws.json("reports/data_summary.json")
    assert summary["rows_raw"] == 53 and summary["duplicates_dropped"] == 3
    frames = [
        pd.read_parquet(tmp_path / "prepared" / f)
        for f in (prepared.TRAIN_FILE, prepared.TEST_FILE)
    ]
    first = pd.concat(frames).set_index("source_line").loc[1]
    assert first[TARGET] == "poisonous"


def test_species_split_holds_out_whole_species(secondary_raw, tmp_path):
    ws = Workspace(
        tmp_path,
        secondary_raw,
        data__dataset="secondary",
        prepare__split="species",
        prepare__test_size=0.33,
    )
    assert ws.prepare() == 0
    train_df = pd.read_parquet(tmp_path / "prepared" / prepared.TRAIN_FILE)
    test_df = pd.read_parquet(tmp_path / "prepared" / prepared.TEST_FILE)
    assert set(train_df[SPECIES_ID]).isdisjoint(test_df[SPECIES_ID])
    assert test_df[SPECIES_ID].nunique() == 2 and train_df[SPECIES_ID].nunique() == 4
    assert set(test_df[TARGET]) == {"edible", "poisonous"}  # stratified by species class
    assert ws.json("reports/data_summary.json")["species"] == {"train": 4, "test": 2, "shared": 0}


@pytest.mark.parametrize("encoder", sorted(ENCODERS))
def test_featurize_fits_on_train_only_and_train_saves_one_pipeline(uci_raw, tmp_path, encoder):
    ws = Workspace(tmp_path, uci_raw, featurize__encoder=encoder, train__cv_folds=3)
    assert ws.prepare() == 0 and ws.featurize() == 0
    train_df, schema = prepared.load_split(tmp_path / "prepared", prepared.TRAIN_FILE)
    test_df = pd.read_parquet(tmp_path / "prepared" / prepared.TEST_FILE)
    encoded_test = pd.read_parquet(tmp_path / "features" / prepared.TEST_FILE)
    assert len(encoded_test) == len(test_df)
    # The encoder saw only the training split: refitting it on train reproduces it exactly.
    refit = build_featurizer(load_params(ws.params), schema.categorical)
    refit.fit(train_df[schema.features], prepared.label(train_df))
    pd.testing.assert_frame_equal(
        refit.transform(test_df[schema.features]), encoded_test.drop(columns=[TARGET])
    )

    assert ws.train() == 0
    model = joblib.load(tmp_path / "models" / "model.joblib")
    proba = model.predict_proba(test_df[schema.features])[:, 1]  # readable names in
    assert proba.shape == (len(test_df),) and ((proba >= 0) & (proba <= 1)).all()
    held_out = ws.json("reports/held_out.json")
    assert 0.0 <= held_out["roc_auc"] <= 1.0 and held_out["rows"] == len(train_df)
    policy = ws.json("models/policy.json")
    assert policy["features"] == schema.features and policy["familiarity"]["method"] == "pairs"
    assert 0 <= policy["policy"]["edible_below"] <= policy["policy"]["poisonous_from"] <= 1


@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_model_trains_and_learns_the_rule(tmp_path, model):
    raw = tmp_path / "raw"
    rawfixtures.write_uci(raw, n_rows=1000)  # boosting's 20-row leaves need a few hundred rows
    ws = Workspace(tmp_path, raw, train__model=model, train__cv_folds=2)
    assert ws.prepare() == 0 and ws.featurize() == 0 and ws.train() == 0
    info = ws.json("models/train_info.json")
    assert info["model"] == model and info["n_train"] == 800
    assert ws.json("reports/held_out.json")["roc_auc"] > 0.95  # class = f(odor) in the fixture


def test_grid_search_picks_from_the_grid_and_reports_it(uci_raw, tmp_path):
    ws = Workspace(
        tmp_path,
        uci_raw,
        train__cv_folds=2,
        train__search__enabled=True,
        train__search__grid={"logreg": {"C": [0.001, 10.0]}},
    )
    assert ws.prepare() == 0 and ws.featurize() == 0 and ws.train() == 0
    search = ws.json("reports/held_out.json")["search"]
    assert search["candidates"] == 2 and search["best_params"]["C"] in (0.001, 10.0)
    assert ws.json("models/train_info.json")["hyperparameters"]["C"] == search["best_params"]["C"]


def test_cross_validation_searches_the_grid_in_every_fold(tmp_path, mlflow_store):
    """With search on, evaluate's folds fit what train fits: a grid of one C gives the figures
    of that C without search, not those of train.logreg.C."""

    def cv_figures(name: str, **params) -> dict:
        root = tmp_path / name
        rawfixtures.write_uci(root / "raw")
        # 400 fixture rows cannot stand behind the default gate rate: 0.05 needs 59
        ws = Workspace(root, root / "raw", train__cv_folds=2, evaluate__cv__folds=2,
                       evaluate__cv__repeats=1, evaluate__gate__max_cv_false_edible_rate=0.05,
                       **params)  # fmt: skip
        assert ws.prepare() == 0 and ws.featurize() == 0 and ws.train() == 0
        assert ws.evaluate() == 0
        return ws.json("reports/metrics.json")["cv"]

    searched = cv_figures(
        "searched",
        train__search__enabled=True,
        train__search__grid={"logreg": {"C": [0.0001]}},
        train__logreg__C=1.0,
    )
    assert searched.pop("scheme").endswith(", grid search in each")
    tiny, default = cv_figures("tiny", train__logreg__C=0.0001), cv_figures("default")
    assert {k: v for k, v in tiny.items() if k != "scheme"} == searched
    assert default["coverage"] != searched["coverage"]


def test_train_rejects_unknown_model(uci_raw, tmp_path, capsys):
    ws = Workspace(tmp_path, uci_raw)
    assert ws.prepare() == 0 and ws.featurize() == 0
    rawfixtures.set_params(ws.params, {"train.model": "svm"})
    assert ws.train() == 2
    assert "train.model = 'svm'" in capsys.readouterr().err
    assert not (tmp_path / "models" / "model.joblib").exists()


def test_evaluate_writes_metrics_safety_gate_plots_and_an_mlflow_run(
    tmp_path, mlflow_store, capsys
):
    raw = tmp_path / "raw"
    rawfixtures.write_secondary(raw, n_species=12)  # cross-validation folds of whole species
    ws = Workspace(
        tmp_path,
        raw,
        data__dataset="secondary",
        prepare__split="species",
        prepare__test_size=0.33,
        train__cv_folds=2,
        evaluate__cv__folds=2,
        evaluate__cv__repeats=1,
    )
    assert ws.prepare() == 0 and ws.featurize() == 0 and ws.train() == 0
    capsys.readouterr()
    assert ws.evaluate() == 0
    progress = capsys.readouterr().err  # long steps say how far they are, never silent
    assert re.search(r"^evaluate: cross-validation fold 2/2 \(\d+ s\)$", progress, re.M)
    assert re.search(r"^evaluate: safety check 6/6: poison markers \(\d+ s\)$", progress, re.M)
    metrics = ws.json("reports/metrics.json")
    test_df = pd.read_parquet(tmp_path / "prepared" / prepared.TEST_FILE)
    train_df = pd.read_parquet(tmp_path / "prepared" / prepared.TRAIN_FILE)
    assert metrics["dataset"] == "secondary" and metrics["test"]["split"] == "species"
    assert metrics["test"]["rows"] == len(test_df) and metrics["cv"]["rows"] == len(train_df)
    assert metrics["cv"]["scheme"] == "species held out, 2 folds x 1 repeat"
    for split in ("test", "cv"):
        figures = metrics[split]
        for key in ("accuracy", "false_edible_rate", "unsafe_edible_share", "coverage"):
            assert 0.0 <= figures[key] <= 1.0, (split, key)
        for key in ("abstention_rate", "unfamiliar_rate"):
            assert 0.0 <= figures[key] <= 1.0, (split, key)
        assert figures["false_edible_rate"] == pytest.approx(
            figures["false_edible"] / figures["poisonous"], abs=1e-6
        )
        assert (
            figures["edible_answers"] + figures["poisonous_answers"] + figures["uncertain"]
            == figures["rows"]
        )
    n_poisonous = int((test_df[TARGET] == "poisonous").sum())
    assert metrics["test"]["poisonous"] == n_poisonous
    safety = ws.json("reports/safety.json")
    assert safety["random"]["descriptions"] == 10_000 and safety["poison_markers"] is None
    n_values = sum(len(t.allowed_values) - 1 for t in get_catalogue("secondary").categorical)
    assert safety["single_trait"]["descriptions"] == n_values + 3 * 3  # 3 per measurement
    gate = ws.json("reports/gate.json")
    checked = {c["metric"]: c for c in gate["checks"]}
    assert set(checked) == {
        "test.false_edible",
        "test.false_edible_rate",
        "cv.false_edible_rate",
        "safety.single_trait.edible",
        "safety.random.edible",
        "safety.monotonicity.violations",
        "safety.misread.edible",
        "safety.not_known.violations",
        "safety.unseen.edible",
        "test.coverage",
    }
    assert checked["test.coverage"]["minimum"] == 0.5
    assert checked["test.false_edible"]["value"] == metrics["test"]["false_edible"]
    assert checked["safety.random.edible"]["value"] == safety["random"]["edible"]
    assert gate["passed"] == all(c["passed"] for c in gate["checks"]) == metrics["gate_passed"]
    summary = ws.json("reports/summary.json")  # the figures compared across runs
    assert summary["test"] == {
        k: metrics["test"][k] for k in ("false_edible", "coverage", "edible_probability_max")
    }
    assert summary["cv"]["coverage"] == metrics["cv"]["coverage"] and summary["live"] == {"rows": 0}
    assert summary["safety_edible"] == sum(
        c["value"] for c in gate["checks"] if "safety" in c["metric"]
    )
    assert summary["gate_passed"] == gate["passed"]
    plots = tmp_path / "reports" / "plots"
    pngs = {p.name for p in (plots / "images").glob("*.png")}
    assert pngs == {
        "confusion_matrix.png",
        "roc.png",
        "precision_recall.png",
        "calibration.png",
        "feature_importance.png",
    }
    assert all((plots / "images" / p).read_bytes()[:4] == b"\x89PNG" for p in pngs)
    assert {p.name for p in (plots / "sklearn").glob("*.json")} == {
        "confusion_matrix.json",
        "roc.json",
        "precision_recall.json",
        "calibration.json",
    }
    answers = json.loads((plots / "sklearn" / "confusion_matrix.json").read_text())
    assert {row["predicted"] for row in answers} <= {"edible", "uncertain", "poisonous"}
    assert len(answers) == len(test_df)
    importance = json.loads((plots / "custom" / "feature_importance.json").read_text())
    assert {row["trait"] for row in importance} == set(get_catalogue("secondary").trait_names)

    with sqlite3.connect(mlflow_store) as db:
        run_id, artifacts = db.execute(
            "select run_uuid, artifact_uri from runs where status = 'FINISHED'"
        ).fetchone()
        logged = dict(db.execute("select key, value from metrics where run_uuid = ?", (run_id,)))
        tags = dict(db.execute("select key, value from tags where run_uuid = ?", (run_id,)))
        params = dict(db.execute("select key, value from params where run_uuid = ?", (run_id,)))
    assert logged["test.false_edible"] == metrics["test"]["false_edible"]
    assert logged["cv.coverage"] == pytest.approx(metrics["cv"]["coverage"])
    assert logged["safety.random.edible"] == safety["random"]["edible"]
    assert tags["dataset"] == "secondary" and len(tags["inputs_sha256"]) == 64
    assert params["prepare.split"] == "species" and params["train.model"] == "logreg"
    assert artifacts.startswith(str(mlflow_store.parent / "mlruns"))  # beside the store
    assert list((mlflow_store.parent / "mlruns").rglob("MLmodel"))
    assert list((mlflow_store.parent / "mlruns").rglob("policy/policy.json"))


def test_gate_failure_names_the_metric_and_its_excess_or_shortfall(tmp_path, mlflow_store, capsys):
    # Labels no trait predicts: the model has no evidence to answer edible and the coverage
    # floor fails the gate, loudly; a limit exceeded is named with its excess.
    raw = tmp_path / "raw"
    rawfixtures.relabel_at_random(rawfixtures.write_uci(raw))
    ws = Workspace(tmp_path, raw, train__cv_folds=2, evaluate__cv__folds=2, evaluate__cv__repeats=1)
    assert ws.prepare() == 0 and ws.featurize() == 0 and ws.train() == 0 and ws.evaluate() == 0
    gate = ws.json("reports/gate.json")
    metrics = ws.json("reports/metrics.json")
    assert not gate["passed"] and not metrics["gate_passed"]
    failed = {c["metric"]: c for c in gate["checks"] if not c["passed"]}
    coverage = metrics["test"]["coverage"]
    assert coverage < 0.5
    assert failed["test.coverage"]["shortfall"] == pytest.approx(0.5 - coverage)
    assert f"gate FAILED: test.coverage = {coverage:g} is below the minimum 0.5" in (
        capsys.readouterr().out
    )
    metrics["test"]["false_edible"] = 3
    exceeded = check_gate(metrics, {}, load_params(ws.params))
    assert "test.false_edible = 3 exceeds the limit 0 by 3" in failed_checks(exceeded)
