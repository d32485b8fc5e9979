"""Feedback flows back: labelled answers exported from the real prediction log into the
feedback dataset, and joined by the prepare stage into training and a live split that
evaluate scores and gates on."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from mushroom.cli import main as mushroom
from mushroom.core.catalogue import POISONOUS, SOURCE_LINE, TARGET
from mushroom.data import prepared
from mushroom.data.prediction_log import PredictionLog
from mushroom.data.raw import SPECIES_ID
from mushroom.model.bundle import load_bundle
from mushroom.model.evaluation import judge_frame
from test_stages import Workspace, mlflow_store  # noqa: F401  (a fixture, used by name)


def log_answers(path: Path, dataset_name: str, described: pd.DataFrame, traits: list[str]):
    """Each row of ``described`` answered (request id ``r<index>``, an hour apart, oldest
    first) and labelled with its ``class`` when it has one."""
    start = pd.Timestamp("2026-11-01T00:00:00Z")
    logged_at = [
        f"{start + pd.Timedelta(hours=n):%Y-%m-%dT%H:%M:%SZ}" for n in range(len(described))
    ]
    log = PredictionLog(path)
    try:
        log.append(
            traits,
            [
                (f"r{i}", when, "m:1", dataset_name, 0.1, "edible", 0, "")
                + tuple(None if pd.isna(v) else v for v in row[traits])
                for when, (i, row) in zip(logged_at, described.iterrows(), strict=True)
            ],
        )
        for i, label in described[TARGET].dropna().items():
            log.add_feedback(f"r{i}", label, "2026-11-30T00:00:00Z")
    finally:
        log.close()


def novel_description(row: pd.Series, source: pd.DataFrame, features: list[str]) -> pd.Series:
    """``row`` with one trait changed so that no description in ``source`` is like it."""
    keys = set(source[features].itertuples(index=False, name=None))
    for trait in features:
        for value in ("not_recorded", *sorted(set(source[trait]))):
            changed = row.copy()
            changed[trait] = value
            if tuple(changed[features]) not in keys:
                return changed
    raise AssertionError("no novel description near this row")


def export(log: Path, out: Path) -> int:
    return mushroom(["feedback", "export", "--no-dvc", "--log", str(log), "--out", str(out)])


def prepared_split(root: Path, file: str) -> pd.DataFrame:
    return pd.read_parquet(root / "prepared" / file)


SMALL_DATA_EVIDENCE = {"evaluate__gate__max_cv_false_edible_rate": 0.05}
"""400 fixture rows cannot stand behind the default gate rate (0.005 needs 598 held-out
poisonous mushrooms without an error, 0.05 needs 59): else nothing is edible."""


@pytest.fixture
def uci_workspace(uci_raw, tmp_path) -> Workspace:
    ws = Workspace(tmp_path, uci_raw, train__cv_folds=3, **SMALL_DATA_EVIDENCE)
    assert ws.prepare() == 0
    return ws


def test_export_keeps_every_label_across_logs_and_the_safe_one_wins(
    uci_workspace, tmp_path, capsys
):
    test = prepared_split(tmp_path, prepared.TEST_FILE)
    features = prepared.read_schema(tmp_path / "prepared").features
    out = tmp_path / "feedback" / "labelled.parquet"
    first = test.head(4).copy()
    first.loc[first.index[2], TARGET] = None  # answered, never labelled
    log_answers(tmp_path / "a.db", "uci", first, features)
    assert export(tmp_path / "a.db", out) == 0
    assert "3 new labelled answers, 3 in all" in capsys.readouterr().out
    exported = out.read_bytes()
    assert export(tmp_path / "a.db", out) == 0
    assert out.read_bytes() == exported  # nothing new: not rewritten (dvc add sees no change)
    assert "0 new labelled answers, 3 in all" in capsys.readouterr().out

    # The log rotated: a new file holds only newer answers; the exported labels stay.
    log_answers(tmp_path / "b.db", "uci", test.iloc[10:12], features)
    assert export(tmp_path / "b.db", out) == 0
    rows = pd.read_parquet(out)
    assert list(rows["request_id"]) == ["r0", "r1", "r3", "r10", "r11"]
    assert list(rows["true_class"]) == [*first[TARGET].dropna(), *test[TARGET].iloc[10:12]]
    assert rows.loc[0, "odor"] == test.loc[0, "odor"] and rows.loc[0, "model_version"] == "m:1"

    # A log labels every exported answer the other way: the safe label wins in the dataset
    # too, whichever came first.
    relabelled = test.loc[[0, 1, 3, 10, 11]].copy()
    relabelled[TARGET] = relabelled[TARGET].map({"edible": POISONOUS, POISONOUS: "edible"})
    log_answers(tmp_path / "c.db", "uci", relabelled, features)
    capsys.readouterr()
    assert export(tmp_path / "c.db", out) == 0
    made = int((rows["true_class"] == "edible").sum())
    assert 1 <= made < 5, "the exported labels should hold both classes"
    said = f"0 new labelled answers, {made} made poisonous by a later label, 5 in all"
    assert said in capsys.readouterr().out
    assert list(pd.read_parquet(out)["true_class"]) == [POISONOUS] * 5
    assert export(tmp_path / "absent.db", out) == 2
    assert "absent.db: no such file" in capsys.readouterr().err


@pytest.mark.usefixtures("mlflow_store")
def test_prepare_joins_old_trusted_labels_to_training_and_holds_the_newest_out(
    uci_workspace, tmp_path
):
    train, test = (
        prepared_split(tmp_path, prepared.TRAIN_FILE),
        prepared_split(tmp_path, prepared.TEST_FILE),
    )
    features = prepared.read_schema(tmp_path / "prepared").features
    source = pd.concat([train, test])

    def novel(row: pd.Series) -> pd.Series:
        return novel_description(row, source, features)

    edible_test = test[test[TARGET] == "edible"].iloc[0]
    rows = [
        novel(train.iloc[0]).to_dict() | {TARGET: POISONOUS},  # joins training
        edible_test.to_dict() | {TARGET: POISONOUS},  # makes that test row poisonous
        train.iloc[1].to_dict() | {"odor": None, TARGET: POISONOUS},  # partial: left out
        novel(train.iloc[2]).to_dict() | {TARGET: "edible"},  # an edible label: not trusted
        novel(train.iloc[0]).to_dict() | {TARGET: "edible"},  # the first again: poisonous kept
        novel(train.iloc[3]).to_dict() | {TARGET: "edible"},  # live
        test.iloc[5].to_dict(),  # live, the newest
    ]
    described = pd.DataFrame(rows)
    log_answers(tmp_path / "live.db", "uci", described, features)
    assert export(tmp_path / "live.db", tmp_path / "feedback" / "labelled.parquet") == 0
    ws = Workspace(tmp_path, tmp_path / "raw", train__cv_folds=3, prepare__feedback__use=True,
                   prepare__feedback__live_share=0.3)  # fmt: skip
    assert ws.prepare() == 0

    summary = ws.json("reports/data_summary.json")["feedback"]
    assert summary == {
        "used": True,
        "labelled": 7,
        "distinct": 6,
        "live": math.ceil(0.3 * 6),
        "training": {
            "joined": 1,
            "already_in_source": 1,
            "made_source_poisonous": 1,
            "left_out_partial": 1,
            "left_out_untrusted_label": 1,
        },
    }
    joined = prepared_split(tmp_path, prepared.TRAIN_FILE)
    assert len(joined) == len(train) + 1
    added = joined[joined[SOURCE_LINE] < 0]
    assert list(added[SOURCE_LINE]) == [-1] and added[TARGET].item() == POISONOUS
    assert tuple(added[features].iloc[0]) == tuple(described.loc[0, features])
    relabelled = prepared_split(tmp_path, prepared.TEST_FILE).set_index(SOURCE_LINE)
    assert relabelled.loc[edible_test[SOURCE_LINE], TARGET] == POISONOUS
    assert summary["training"]["made_source_poisonous"] == 1
    labelled = prepared_split(tmp_path, prepared.LABELLED_FILE)
    assert list(labelled[prepared.ROLE]) == [
        prepared.TRAINING,
        prepared.IN_SOURCE,
        prepared.PARTIAL,
        prepared.UNTRUSTED,
        prepared.LIVE,  # the newest two, rows 5 and 6 of the file
        prepared.LIVE,
    ]
    assert list(labelled[SOURCE_LINE]) == [-1, -2, -3, -4, -6, -7]  # row 4 repeats row 0
    live = labelled[labelled[prepared.ROLE] == prepared.LIVE]
    assert list(live[TARGET]) == ["edible", test.iloc[5][TARGET]]

    assert ws.featurize() == 0 and ws.train() == 0 and ws.evaluate() == 0
    metrics = ws.json("reports/metrics.json")
    assert metrics["live"]["rows"] == 2 and metrics["live"]["poisonous"] == int(
        (live[TARGET] == POISONOUS).sum()
    )
    assert metrics["labelled"]["rows"] == 6 and metrics["labelled"]["poisonous"] == int(
        (labelled[TARGET] == POISONOUS).sum()
    )
    checks = {c["metric"]: c for c in ws.json("reports/gate.json")["checks"]}
    assert checks["labelled.false_edible"]["value"] == metrics["labelled"]["false_edible"]
    # The test row a label made poisonous counts in the test split's figures.
    assert metrics["test"]["poisonous"] == int((relabelled[TARGET] == POISONOUS).sum())


def test_without_feedback_no_labelled_description_is_prepared(uci_workspace, tmp_path):
    assert len(prepared_split(tmp_path, prepared.LABELLED_FILE)) == 0
    assert uci_workspace.json("reports/data_summary.json")["feedback"] == {"used": False}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (None, "labelled.parquet: no such file (export the labelled answers with: "),
        (
            {"odor": "rotten"},
            "labelled.parquet, row 1, column 'odor': 'rotten': not a value of odor",
        ),
        ({"true_class": "tasty"}, "row 1, column 'true_class': 'tasty': a label is edible or"),
        ({"logged_at": "yesterday"}, "row 1, column 'logged_at': 'yesterday': not an ISO 8601"),
        ("garbage", "labelled.parquet: not a feedback dataset: "),
    ],
)
def test_a_bad_feedback_dataset_stops_prepare_naming_it(
    uci_workspace, tmp_path, capsys, change, expected
):
    test = prepared_split(tmp_path, prepared.TEST_FILE)
    features = prepared.read_schema(tmp_path / "prepared").features
    out = tmp_path / "feedback" / "labelled.parquet"
    if change is not None:
        log_answers(tmp_path / "a.db", "uci", test.head(3), features)
        assert export(tmp_path / "a.db", out) == 0
        if change == "garbage":
            out.write_text("odor,class\nfoul,poisonous\n")
        else:
            rows = pd.read_parquet(out)
            for column, value in change.items():
                rows[column] = rows[column].astype(object)
                rows.loc[1, column] = value
            rows.to_parquet(out, index=False)
    good = {f.name: f.read_bytes() for f in (tmp_path / "prepared").iterdir()}
    ws = Workspace(tmp_path, tmp_path / "raw", prepare__feedback__use=True)
    capsys.readouterr()
    assert ws.prepare() == 2
    error = capsys.readouterr().err
    assert error.startswith("prepare: ") and expected in error, error
    assert {f.name: f.read_bytes() for f in (tmp_path / "prepared").iterdir()} == good


def test_labelled_answers_train_a_secondary_model_without_a_species(secondary_raw, tmp_path):
    """Joined rows name no species: each is its own group in the species-held-out folds and
    the species profiles (familiarity) stay those of the training species."""
    species_split = {"data__dataset": "secondary", "prepare__split": "species",
                     "prepare__test_size": 0.33, "train__cv_folds": 2}  # fmt: skip
    ws = Workspace(tmp_path, secondary_raw, **species_split)
    assert ws.prepare() == 0
    test = prepared_split(tmp_path, prepared.TEST_FILE)
    features = prepared.read_schema(tmp_path / "prepared").features
    unseen = test.groupby(SPECIES_ID).head(3).copy()  # the test species: new to training
    unseen["cap_diameter"] += 0.001  # and not the test split's own descriptions
    log_answers(tmp_path / "a.db", "secondary", unseen, features)
    assert export(tmp_path / "a.db", tmp_path / "feedback" / "labelled.parquet") == 0
    every_label_trains = {"prepare__feedback__use": True, "prepare__feedback__live_share": 0.0,
                          "prepare__feedback__train_labels": "all"}  # fmt: skip
    ws = Workspace(tmp_path, secondary_raw, **species_split, **every_label_trains)
    assert ws.prepare() == 0
    train = prepared_split(tmp_path, prepared.TRAIN_FILE)
    joined = train[train[SPECIES_ID] < 0]
    assert len(joined) == len(unseen) and (joined[SPECIES_ID] == joined[SOURCE_LINE]).all()
    assert ws.json("reports/data_summary.json")["species"]["train"] == 4
    assert ws.featurize() == 0 and ws.train() == 0
    policy = json.loads((tmp_path / "models" / "policy.json").read_text())
    species = policy["familiarity"]["species"]
    assert sorted(s["id"] for s in species) == sorted(
        train[SPECIES_ID][train[SPECIES_ID] >= 0].unique()
    )


@pytest.mark.usefixtures("mlflow_store")
def test_a_labelled_poisonous_description_answered_edible_fails_the_gate(
    uci_workspace, tmp_path, capsys
):
    """Labelled poisonous, a description the model answers edible: the test split knows
    nothing of it (the label is in the live split, which never changes the source), a gate
    check fails on the label alone. (The fixture data fails the safety suite's random
    descriptions already: the checks are compared.)"""
    ws = uci_workspace
    assert ws.featurize() == 0 and ws.train() == 0 and ws.evaluate() == 0
    failing = {c["metric"] for c in ws.json("reports/gate.json")["checks"] if not c["passed"]}
    test = prepared_split(tmp_path, prepared.TEST_FILE)
    features = prepared.read_schema(tmp_path / "prepared").features
    judge = load_bundle(tmp_path / "models/model.joblib", tmp_path / "models/policy.json").judge()
    answered_edible = judge_frame(judge, test).verdict == "edible"
    described = test[answered_edible & (test[TARGET] == "edible")].head(1).copy()
    described[TARGET] = POISONOUS  # what a user found out
    log_answers(tmp_path / "a.db", "uci", described, features)
    assert export(tmp_path / "a.db", tmp_path / "feedback" / "labelled.parquet") == 0

    ws = Workspace(tmp_path, tmp_path / "raw", train__cv_folds=3, prepare__feedback__use=True,
                   prepare__feedback__live_share=1.0, **SMALL_DATA_EVIDENCE)  # fmt: skip
    assert ws.prepare() == 0 and ws.featurize() == 0 and ws.train() == 0
    capsys.readouterr()
    assert ws.evaluate() == 0
    metrics, gate = ws.json("reports/metrics.json"), ws.json("reports/gate.json")
    assert prepared_split(tmp_path, prepared.TEST_FILE).equals(test)
    assert metrics["labelled"] == {"rows": 1, "poisonous": 1, "false_edible": 1}
    assert metrics["live"]["false_edible"] == 1 and metrics["test"]["false_edible"] == 0
    failed = {c["metric"]: c for c in gate["checks"] if not c["passed"]}
    assert failed.keys() - failing == {"labelled.false_edible"} and not metrics["gate_passed"]
    assert failed["labelled.false_edible"]["excess"] == 1
    out = capsys.readouterr().out
    assert "labelled answers: 1 of 1 poisonous answered edible; gate FAILED" in out
