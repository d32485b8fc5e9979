"""What the answering system's verdicts are worth, per split: the figures evaluate reports.

Poisonous is the positive class. ``false_edible_rate`` = poisonous answered edible ÷
poisonous (the deadly error); ``unsafe_edible_share`` = poisonous ÷ all edible answers
(what an edible answer risks); ``coverage`` = edible answered edible ÷ edible (how useful
it is); ``abstention_rate`` and ``unfamiliar_rate`` = uncertain and unfamiliar ÷ all.
``accuracy`` counts an uncertain answer as "do not eat": right for a poisonous mushroom,
wrong for an edible one. ``roc_auc`` ranks by the calibrated P(poisonous). Rates carry
their 95 % Clopper-Pearson bounds: ``false_edible_rate_high_95`` (one-sided upper: 0 of n
is about 3/n) and ``coverage_low_95``/``coverage_high_95`` (one-sided each).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance
from sklearn.metrics import roc_auc_score

from mushroom.core.catalogue import NOT_RECORDED
from mushroom.core.params import Params
from mushroom.core.progress import Progress
from mushroom.data import prepared
from mushroom.model.fitting import fit_bundle, folds, tune
from mushroom.model.policy import EDIBLE, POISONOUS, UNCERTAIN, Judgement, rate_high, rate_low


def verdict_metrics(y: np.ndarray, judgement: Judgement) -> dict:
    verdict = judgement.verdict
    poisonous, edible = y == 1, y == 0
    said_edible, said_poisonous = verdict == EDIBLE, verdict == POISONOUS
    false_edible = int((said_edible & poisonous).sum())
    covered = int((said_edible & edible).sum())
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
        "false_edible_rate_high_95": round(rate_high(false_edible, int(poisonous.sum())), 6),
        "edible_answers": int(said_edible.sum()),
        # what an edible answer stood on: never above train.abstention.max_edible_risk
        "edible_probability_max": round(float(judgement.probability[said_edible].max()), 6)
        if said_edible.any()
        else None,
        "unsafe_edible_share": share(false_edible, int(said_edible.sum())),
        "coverage": share(covered, int(edible.sum())),
        "coverage_low_95": round(rate_low(covered, int(edible.sum())), 6),
        "coverage_high_95": round(1 - rate_low(int(edible.sum()) - covered, int(edible.sum())), 6)
        if edible.any()
        else 0.0,
        "poisonous_answers": int(said_poisonous.sum()),
        "false_poisonous": int((said_poisonous & edible).sum()),
        "uncertain": int((verdict == UNCERTAIN).sum()),
        "abstention_rate": share(int((verdict == UNCERTAIN).sum()), n),
        "unfamiliar": int((~judgement.familiar).sum()),
        "unfamiliar_rate": share(int((~judgement.familiar).sum()), n),
    }


def judge_frame(judge, frame: pd.DataFrame) -> Judgement:
    return judge.judge(*judge.scorer.index_frame(frame), reasons=False)


def as_sent_metrics(judge, frame: pd.DataFrame) -> dict:
    """The verdicts of ``frame`` as a person can send it: a trait the data leaves "not
    recorded" is unknown (never more edible than as recorded)."""
    sent = frame.mask(frame == NOT_RECORDED)
    figures = verdict_metrics(prepared.label(frame), judge_frame(judge, sent))
    return {key: figures[key] for key in ("coverage", "edible_answers", "false_edible")}


def cross_validated(
    train: pd.DataFrame, schema: prepared.Schema, params: Params, featurizer, profiles
) -> dict:
    """The whole system refitted in every outer fold and judged on the fold it never saw,
    pooled: the grid search too, when ``train.search`` is on, so the figures are those of
    what train fits, hyperparameters chosen without the fold. Secondary: whole species held
    out (StratifiedGroupKFold by species), whatever the test split; UCI: stratified folds,
    repeated over seeds."""
    n_folds, repeats = params.evaluate.cv.folds, params.evaluate.cv.repeats
    by_species = schema.catalogue.has_species_profiles
    y, judgements = [], []
    progress = Progress("evaluate", "cross-validation fold", n_folds * repeats)
    for repeat in range(repeats):
        seed = params.prepare.seed + repeat
        for part, held in folds(train, by_species, n_folds, seed, "evaluate.cv.folds"):
            fold_params, _ = tune(train.iloc[part], schema, params, featurizer)
            bundle = fit_bundle(train.iloc[part], schema, fold_params, featurizer, profiles)
            judgement = judge_frame(bundle.judge(), train.iloc[held])
            y.append(prepared.label(train.iloc[held]))
            judgements.append(judgement)
            progress.step()

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
    judgement, y = judge_frame(judge, labelled), prepared.label(labelled)
    live = (labelled[prepared.ROLE] == prepared.LIVE).to_numpy()
    every_label = verdict_metrics(y, judgement)
    return {
        "live": verdict_metrics(y[live], judgement.take(live)) if live.any() else {"rows": 0},
        "labelled": {key: every_label[key] for key in ("rows", "poisonous", "false_edible")},
    }


def check_gate(metrics: dict, safety_counts: dict[str, int], params: Params) -> dict:
    """Every limit a model must meet to be promoted; the safety suite's counts must be 0.
    Labelled answers, when prepare joined any, are held to the test split's count of false
    edibles: all of them, those that trained included. Coverage has a floor, so a model that
    never answers edible does not pass unnoticed."""
    gate = params.evaluate.gate
    most = [
        ("test.false_edible", gate.max_false_edible),
        ("test.false_edible_rate", gate.max_false_edible_rate),
        ("cv.false_edible_rate", gate.max_cv_false_edible_rate),
    ]
    if metrics.get("labelled", {}).get("rows"):
        most.append(("labelled.false_edible", gate.max_false_edible))
    most += [(metric, 0) for metric in safety_counts]
    least = [("test.coverage", gate.min_coverage)]

    def value(metric: str):
        if metric in safety_counts:
            return safety_counts[metric]
        split, name = metric.split(".")
        return metrics[split][name]

    checks = [
        {
            "metric": metric,
            "value": value(metric),
            "limit": limit,
            "excess": max(0, value(metric) - limit),
        }
        for metric, limit in most
    ] + [
        {
            "metric": metric,
            "value": value(metric),
            "minimum": floor,
            "shortfall": round(max(0.0, floor - value(metric)), 6),
        }
        for metric, floor in least
    ]
    for check in checks:
        check["passed"] = check.get("excess", 0) <= 0 and check.get("shortfall", 0) <= 0
    return {"passed": all(check["passed"] for check in checks), "checks": checks}


def failed_checks(gate: dict) -> list[str]:
    """Each failed check of a gate report in words, with its excess or shortfall."""
    return [
        f"{c['metric']} = {c['value']:g} exceeds the limit {c['limit']:g} by {c['excess']:g}"
        if "limit" in c
        else f"{c['metric']} = {c['value']:g} is below the minimum {c['minimum']:g} by "
        f"{c['shortfall']:g}"
        for c in gate["checks"]
        if not c["passed"]
    ]


IMPORTANCE_ROWS = 2000  # permutation importance on a sample keeps the stage fast on 12k rows


def importance_table(
    model, x: pd.DataFrame, y: np.ndarray, repeats: int, seed: int
) -> pd.DataFrame:
    """Permutation importance of each trait: how much the Brier score grows when shuffled."""
    if len(x) > IMPORTANCE_ROWS:
        keep = np.random.default_rng(seed).choice(len(x), IMPORTANCE_ROWS, replace=False)
        x, y = x.iloc[keep], y[keep]
    result = permutation_importance(
        model, x, y, scoring="neg_brier_score", n_repeats=repeats, random_state=seed, n_jobs=1
    )
    return pd.DataFrame(
        {
            "trait": x.columns,
            "importance": result.importances_mean.round(6),
            "std": result.importances_std.round(6),
        }
    ).sort_values("importance", ascending=False)


def outcome(metrics: dict, gate: dict) -> str:
    """evaluate's last line: the test and cv figures, labelled answers, the gate."""
    test, cv, labelled = metrics["test"], metrics["cv"], metrics["labelled"]
    labelled_line = (
        f"labelled answers: {labelled['false_edible']} of "
        f"{labelled['poisonous']} poisonous answered edible; "
        if labelled["rows"]
        else ""
    )
    return (
        f"test: {test['false_edible']} of {test['poisonous']} poisonous "
        f"answered edible, coverage {test['coverage']:.4f}; cv ({cv['scheme']}): false "
        f"edible rate {cv['false_edible_rate']:.4f}, coverage {cv['coverage']:.4f}; {labelled_line}"
        "gate " + ("PASSED" if gate["passed"] else "FAILED: " + "; ".join(failed_checks(gate)))
    )


COMPARED = {
    "test": ("false_edible", "coverage", "edible_probability_max"),
    "cv": ("false_edible_rate_high_95", "coverage"),
    "live": ("rows", "false_edible", "coverage"),
}
"""The figures people compare across runs (``dvc metrics diff``, ``dvc exp show``); every
other figure stays in reports/metrics.json, held_out.json and safety.json."""


def compared(metrics: dict, safety_counts: dict[str, int], gate: dict) -> dict:
    """reports/summary.json, the pipeline's one DVC metrics file: a few figures per split,
    the safety suite's edible answers in all, and whether the gate passed."""
    summary = {
        split: {name: metrics[split][name] for name in names if name in metrics[split]}
        for split, names in COMPARED.items()
    }
    return summary | {
        "labelled_false_edible": metrics["labelled"]["false_edible"],
        "safety_edible": sum(safety_counts.values()),
        "gate_passed": gate["passed"],
    }
