"""The answering system never says edible without evidence: thresholds chosen without the
test split, unknown traits at their worst, unfamiliar descriptions uncertain, monotone
under removing traits, every uncertain answer with its reason, the same reasons every time.
On the real data, through real pipeline runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mushroom import dataset, safety
from mushroom.bundle import load_bundle
from mushroom.catalogue import get_catalogue
from mushroom.policy import EDIBLE, MAX_EDIBLE_BELOW, UNCERTAIN, choose
from mushroom.rawdata import PRIMARY_FILE, ROWS_PER_SPECIES, SECONDARY_FILE
from servefixtures import trained_workdir

CAUSES = ("unfamiliar", "unknown:", "poisonous_species:", "borderline")


def bundle_of(workdir: Path):
    return load_bundle(workdir / "models" / "model.joblib", workdir / "models" / "policy.json")


def split(workdir: Path, file: str) -> pd.DataFrame:
    return pd.read_parquet(workdir / "prepared" / file)


@pytest.fixture(scope="module")
def secondary_species(pulled_repo, tmp_path_factory) -> Path:
    """The first 40 real secondary species, a species split (8 held out), trained."""
    raw = tmp_path_factory.mktemp("secondary-subset")
    source = pulled_repo / "data" / "raw"
    (raw / SECONDARY_FILE).parent.mkdir(parents=True)
    lines = (source / SECONDARY_FILE).read_bytes().split(b"\r\n")
    (raw / SECONDARY_FILE).write_bytes(b"\r\n".join(lines[: 1 + 40 * ROWS_PER_SPECIES]) + b"\r\n")
    (raw / PRIMARY_FILE).write_bytes((source / PRIMARY_FILE).read_bytes())
    workdir = tmp_path_factory.mktemp("secondary-species") / "work"
    trained_workdir(
        workdir,
        raw,
        data__dataset="secondary",
        prepare__split="species",
        train__cv_folds=3,
        evaluate__cv__folds=3,
    )
    return workdir


def test_thresholds_are_chosen_on_the_training_split_alone(uci_model):
    workdir = uci_model.workdir
    train, test = split(workdir, dataset.TRAIN_FILE), split(workdir, dataset.TEST_FILE)
    held_out = json.loads((workdir / "models" / "policy.json").read_text())["held_out"]
    assert held_out["rows"] == len(train) and held_out["folds"] == 2
    assert held_out["source_lines_sha256"] == dataset.rows_digest(train)
    assert held_out["source_lines_sha256"] != dataset.rows_digest(pd.concat([train, test]))
    assert set(train["source_line"]).isdisjoint(test["source_line"])
    metrics = json.loads((workdir / "reports" / "metrics.json").read_text())
    assert metrics["cv"]["rows"] == len(train) and metrics["test"]["rows"] == len(test)


def test_the_edible_threshold_is_the_highest_that_meets_the_rate():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    logit = rng.normal(0, 1, 2000) + 4 * (y - 0.5)
    familiar = rng.random(2000) > 0.05
    fits_poisonous = np.zeros(2000, bool)
    for rate in (0.0, 0.01, 0.2):
        policy, held_out = choose(y, logit, logit, familiar, fits_poisonous, rate, 0.01)
        p = policy.calibrated(logit)
        edible = familiar & (p < policy.edible_below)
        allowed = int(np.floor(rate * (y == 1).sum()))
        assert (edible & (y == 1)).sum() == held_out["false_edible"] <= allowed
        # one step higher would admit one more poisonous mushroom than allowed, unless the
        # threshold stopped at even odds
        riskier = familiar & (p <= policy.edible_below) & (y == 1)
        assert riskier.sum() == allowed + 1 or policy.edible_below == MAX_EDIBLE_BELOW
        assert policy.edible_below <= policy.poisonous_from
        assert ((p >= policy.poisonous_from) & familiar & (y == 0)).sum() <= 0.01 * (y == 0).sum()
    assert policy.edible_below == MAX_EDIBLE_BELOW  # a rate of 0.2 would allow more


def test_training_descriptions_are_familiar(uci_model, secondary_species):
    for workdir in (uci_model.workdir, secondary_species):
        bundle = bundle_of(workdir)
        judge = bundle.judge()
        train = split(workdir, dataset.TRAIN_FILE)
        judgement = judge.judge(*judge.scorer.index_frame(train), reasons=False)
        assert (~judgement.familiar).mean() <= 0.01, workdir


def test_an_unseen_poisonous_species_is_not_called_edible(secondary_species):
    judge = bundle_of(secondary_species).judge()
    test = split(secondary_species, dataset.TEST_FILE)
    train = split(secondary_species, dataset.TRAIN_FILE)
    assert set(test["species_id"]).isdisjoint(train["species_id"])
    poisonous = test[test["class"] == "poisonous"]
    assert poisonous["species_id"].nunique() >= 2
    judgement = judge.judge(*judge.scorer.index_frame(poisonous))
    assert EDIBLE not in set(judgement.verdict)
    # they fit no species the model learned from, and it says so
    assert (~judgement.familiar).mean() > 0.9
    assert all(
        r[0] == "unfamiliar"
        for r, f in zip(judgement.reasons, judgement.familiar, strict=True)
        if not f
    )


@pytest.mark.parametrize("which", ["uci", "secondary"])
def test_random_and_single_trait_descriptions_are_never_edible(uci_model, secondary_species, which):
    workdir = uci_model.workdir if which == "uci" else secondary_species
    report = json.loads((workdir / "reports" / "safety.json").read_text())
    assert report["random"]["descriptions"] == 10_000
    assert report["random"]["edible"] == 0 and report["random"]["unfamiliar"] >= 9_990
    assert report["single_trait"]["edible"] == 0 and report["monotonicity"]["violations"] == 0
    if which == "uci":
        assert report["single_trait"]["descriptions"] == 125
        assert report["poison_markers"]["edible"] == 0
        assert report["poison_markers"]["descriptions"] == 6 * (10_000 + 1625)


@pytest.mark.parametrize("model", ["logreg", "random_forest"])
def test_removing_traits_never_turns_an_answer_edible(uci_model, tmp_path, model):
    """Chains of ever smaller descriptions, from every test mushroom answered edible and as
    many others, for the promoted logistic regression and a forest (bounded leaf by leaf),
    with a familiarity limit loose enough that partial descriptions can be familiar."""
    workdir = uci_model.workdir
    if model != "logreg":
        workdir = tmp_path / "work"
        trained_workdir(
            workdir,
            (uci_model.workdir / "raw").resolve(),
            train__model=model,
            train__random_forest__n_estimators=30,
        )
    bundle = bundle_of(workdir)
    bundle.familiarity["limit"] = 45  # two traits left out are familiar if all else is seen
    judge = bundle.judge()
    catalogue = get_catalogue("uci")
    test = split(workdir, dataset.TEST_FILE).reindex(columns=catalogue.trait_names)
    verdicts = judge.judge(*judge.scorer.index_frame(test), reasons=False).verdict
    starts = pd.concat([test[verdicts == EDIBLE], test[verdicts != EDIBLE].head(500)])
    found = safety.monotonicity(judge, catalogue, starts, seed=3)
    assert found["pairs"] >= 5 * len(starts) and found["violations"] == 0
    # The loose limit lets partial descriptions be familiar: the worst case does the work.
    partial = starts.copy()
    partial[["stalk_root", "habitat"]] = None
    answered = judge.judge(*judge.scorer.index_frame(partial))
    full = judge.judge(*judge.scorer.index_frame(starts), reasons=False)
    assert answered.familiar.any()
    assert not ((answered.verdict == EDIBLE) & (full.verdict != EDIBLE)).any()
    for verdict, reasons in zip(answered.verdict, answered.reasons, strict=True):
        if verdict == UNCERTAIN:
            assert reasons[0].startswith(CAUSES), reasons


def test_uncertain_answers_carry_their_reason_and_reasons_are_stable(uci_model, secondary_species):
    for workdir in (uci_model.workdir, secondary_species):
        bundle = bundle_of(workdir)
        judge, catalogue = bundle.judge(), get_catalogue(bundle.dataset)
        test = split(workdir, dataset.TEST_FILE).reindex(columns=catalogue.trait_names)
        test = test.astype(object)  # None for a trait left out, as the service logs it
        random = safety.random_descriptions(judge, catalogue, 500, seed=1).astype(object)
        partial = test.head(300).copy()
        partial.iloc[:, ::4] = None
        frame = pd.concat([test, random, partial], ignore_index=True)
        first = judge.judge(*judge.scorer.index_frame(frame))
        assert (first.verdict == UNCERTAIN).sum() >= 800
        for verdict, reasons in zip(first.verdict, first.reasons, strict=True):
            if verdict == UNCERTAIN:
                assert reasons and reasons[0].startswith(CAUSES), reasons
            assert len([r for r in reasons if "=" in r]) <= 3
        order = np.random.default_rng(0).permutation(len(frame))
        again = judge.judge(*judge.scorer.index_frame(frame.iloc[order]))
        assert [first.reasons[i] for i in order] == again.reasons
        assert (first.verdict[order] == again.verdict).all()
