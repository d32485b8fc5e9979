"""What the answering system's verdicts are worth, per split: the figures evaluate reports.

Poisonous is the positive class. ``false_edible_rate`` = poisonous answered edible ÷
poisonous (the deadly error); ``unsafe_edible_share`` = poisonous ÷ all edible answers
(what an edible answer risks); ``coverage`` = edible answered edible ÷ edible (how useful
it is); ``abstention_rate`` and ``unfamiliar_rate`` = uncertain and unfamiliar ÷ all.
``accuracy`` counts an uncertain answer as "do not eat": right for a poisonous mushroom,
wrong for an edible one. ``roc_auc`` ranks by the calibrated P(poisonous).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from mushroom import dataset
from mushroom.fitting import fit_bundle, folds, tune
from mushroom.params import Params
from mushroom.policy import EDIBLE, POISONOUS, UNCERTAIN, Judgement


def verdict_metrics(y: np.ndarray, judgement: Judgement) -> dict:
    verdict = judgement.verdict
    poisonous, edible = y == 1, y == 0
    said_edible, said_poisonous = verdict == EDIBLE, verdict == POISONOUS
    false_edible = int((said_edible & poisonous).sum())
    n = len(y)

    def share(count: int, of: int) -> float:
        return round(count / of, 6) if of else 0.0

    return {
        "rows": n,
        "poisonous": int(poisonous.sum()),
        "edible": int(edible.sum()),
        "accuracy": share(int((said_edible & edible).sum() + (~said_edible & poisonous).sum()), n),
        "roc_auc": round(float(roc_auc_score(y, judgement.probability)), 6)
        if 0 < poisonous.sum() < n
        else None,
        "false_edible": false_edible,
        "false_edible_rate": share(false_edible, int(poisonous.sum())),
        "edible_answers": int(said_edible.sum()),
        "unsafe_edible_share": share(false_edible, int(said_edible.sum())),
        "coverage": share(int((said_edible & edible).sum()), int(edible.sum())),
        "poisonous_answers": int(said_poisonous.sum()),
        "false_poisonous": int((said_poisonous & edible).sum()),
        "uncertain": int((verdict == UNCERTAIN).sum()),
        "abstention_rate": share(int((verdict == UNCERTAIN).sum()), n),
        "unfamiliar": int((~judgement.familiar).sum()),
        "unfamiliar_rate": share(int((~judgement.familiar).sum()), n),
    }


def judge_frame(judge, frame: pd.DataFrame) -> Judgement:
    return judge.judge(*judge.scorer.index_frame(frame), reasons=False)


def cross_validated(
    train: pd.DataFrame, schema: dataset.Schema, params: Params, featurizer, profiles
) -> dict:
    """The whole system refitted in every outer fold and judged on the fold it never saw,
    pooled: the grid search too, when ``train.search`` is on, so the figures are those of
    what train fits, hyperparameters chosen without the fold. Secondary: whole species held
    out (StratifiedGroupKFold by species), whatever the test split; UCI: stratified folds,
    repeated over seeds."""
    n_folds, repeats = params.evaluate.cv.folds, params.evaluate.cv.repeats
    by_species = schema.catalogue.has_species_profiles
    y, judgements = [], []
    for repeat in range(repeats):
        seed = params.prepare.seed + repeat
        for part, held in folds(train, by_species, n_folds, seed, "evaluate.cv.folds"):
            fold_params, _ = tune(train.iloc[part], schema, params, featurizer)
            bundle = fit_bundle(train.iloc[part], schema, fold_params, featurizer, profiles)
            judgement = judge_frame(bundle.judge(), train.iloc[held])
            y.append(dataset.label(train.iloc[held]))
            judgements.append(judgement)

    every_fold = Judgement.pooled(judgements)
    scheme = (
        f"{'species held out' if by_species else 'stratified'}, {n_folds} folds"
        f" x {repeats} repeat{'s' if repeats > 1 else ''}"
        + (", grid search in each" if params.train.search.enabled else "")
    )
    return {"scheme": scheme} | verdict_metrics(np.concatenate(y), every_fold)


def labelled_metrics(judge, labelled: pd.DataFrame) -> dict:
    """``live``: the live split's figures; ``labelled``: the labelled poisonous descriptions
    answered edible, among all of them (those that trained too), for the gate. (A forest
    cannot judge no rows: an empty frame is not judged.)"""
    if not len(labelled):
        return {"live": {"rows": 0}, "labelled": {"rows": 0, "poisonous": 0, "false_edible": 0}}
    judgement, y = judge_frame(judge, labelled), dataset.label(labelled)
    live = (labelled[dataset.ROLE] == dataset.LIVE).to_numpy()
    every_label = verdict_metrics(y, judgement)
    return {
        "live": verdict_metrics(y[live], judgement.take(live)) if live.any() else {"rows": 0},
        "labelled": {key: every_label[key] for key in ("rows", "poisonous", "false_edible")},
    }


def check_gate(metrics: dict, safety_counts: dict[str, int], params: Params) -> dict:
    """Every limit a model must meet to be promoted; the safety suite's counts must be 0.
    Labelled answers, when prepare joined any, are held to the test split's count of false
    edibles: all of them, those that trained included."""
    limits = [
        ("test.false_edible", "max_false_edible"),
        ("test.false_edible_rate", "max_false_edible_rate"),
        ("cv.false_edible_rate", "max_cv_false_edible_rate"),
    ]
    if metrics.get("labelled", {}).get("rows"):
        limits.append(("labelled.false_edible", "max_false_edible"))
    checks = []
    for metric, key in limits:
        split, name = metric.split(".")
        value, limit = metrics[split][name], getattr(params.evaluate.gate, key)
        checks.append((metric, value, limit))
    checks += [(metric, count, 0) for metric, count in safety_counts.items()]
    return {
        "passed": all(value <= limit for _, value, limit in checks),
        "checks": [
            {
                "metric": metric,
                "value": value,
                "limit": limit,
                "passed": value <= limit,
                "excess": max(0, value - limit),
            }
            for metric, value, limit in checks
        ],
    }
