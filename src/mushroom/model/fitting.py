"""Fitting the whole answering system on a training split: the model, the familiarity
detector, the calibration and both thresholds. The train stage fits it once; evaluate
fits it again inside every outer fold of its cross-validation, so figures pooled over
folds come from systems that never saw the mushrooms they are scored on.

Thresholds and calibration come from out-of-fold predictions: every training row is
scored by a model (and a detector) fitted without its fold. On a species split the folds
hold out whole species, so the thresholds are chosen on species the model had not seen.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import Pipeline

from mushroom.core.params import Params
from mushroom.data import prepared
from mushroom.data.raw import SPECIES_ID
from mushroom.model import familiarity
from mushroom.model.bundle import Bundle
from mushroom.model.estimators import build_model
from mushroom.model.policy import Judge, Limits, Policy, choose
from mushroom.model.scorer import FastScorer, describe_training


class SingleClass(ValueError):
    """Too few mushrooms of a class to fit on, or to hold some out in every fold."""


def check_folds(frame: pd.DataFrame, by_species: bool, n: int, key: str) -> None:
    """Every one of ``n`` stratified folds can hold out mushrooms (on a species split: a
    species) of both classes; else SingleClass naming ``key``, the param asking for them."""
    y = prepared.label(frame)
    units = frame[SPECIES_ID] if by_species else pd.Series(np.arange(len(frame)), frame.index)
    per_class = units.groupby(y).nunique().reindex([0, 1], fill_value=0)
    if per_class.min() < n:
        kind = "species" if by_species else "mushrooms"
        raise SingleClass(
            f"{key} = {n} needs at least {n} {kind} of each class; {len(frame)} rows hold "
            f"{per_class[0]} edible and {per_class[1]} poisonous {kind}: fewer folds or more data"
        )


def folds(frame: pd.DataFrame, by_species: bool, n: int, seed: int, key: str):
    check_folds(frame, by_species, n, key)
    y = prepared.label(frame)
    if by_species:
        splitter = StratifiedGroupKFold(n_splits=n, shuffle=True, random_state=seed)
        return list(splitter.split(frame, y, frame[SPECIES_ID]))
    return list(StratifiedKFold(n_splits=n, shuffle=True, random_state=seed).split(frame, y))


def tune(
    frame: pd.DataFrame, schema: prepared.Schema, params: Params, featurizer
) -> tuple[Params, dict | None]:
    """``params`` with the chosen model's hyperparameters that ``train.search`` picks on
    ``frame`` (folds as the policy's: ``train.cv_folds``, whole species held out on a
    species split), and the search's summary; ``params`` and None when search is off."""
    search_params = params.train.search
    if not search_params.enabled:
        return params, None
    grid = getattr(search_params.grid, params.train.model).model_dump(exclude_none=True)
    by_species, n_folds = schema.split == "species", params.train.cv_folds
    search = GridSearchCV(
        Pipeline([("features", clone(featurizer)), ("model", build_model(params))]),
        {f"model__{k}": v for k, v in grid.items()},
        scoring=search_params.scoring,
        cv=folds(frame, by_species, n_folds, params.train.seed, "train.cv_folds"),
        n_jobs=1,
    )
    search.fit(frame[schema.features], prepared.label(frame))
    best = {k.removeprefix("model__"): v for k, v in search.best_params_.items()}
    summary = {
        "best_score": float(search.best_score_),
        "candidates": len(search.cv_results_["params"]),
        "best_params": best,
    }
    return params.model_copy(update={"train": params.train.tuned(best)}), summary


def fit_pipeline(featurizer, params: Params, frame: pd.DataFrame, features: list[str]) -> Pipeline:
    y = prepared.label(frame)
    if len(np.unique(y)) < 2:
        raise SingleClass(
            f"a training part of {len(frame)} rows holds only "
            f"{'poisonous' if y.any() else 'edible'} mushrooms: fewer folds "
            "(train.cv_folds, evaluate.cv.folds) or more data"
        )
    pipeline = Pipeline([("features", clone(featurizer)), ("model", build_model(params))])
    return pipeline.fit(frame[features], y)


def fit_bundle(
    frame: pd.DataFrame,
    schema: prepared.Schema,
    params: Params,
    featurizer,
    profiles: list[dict],
    fitted: Pipeline | None = None,
) -> Bundle:
    """The system fitted on ``frame``; ``fitted``: its final pipeline, if already fitted
    (the train stage reuses featurize's encoder). ``featurizer`` is cloned per fold."""
    catalogue, features = schema.catalogue, schema.features
    quantile = params.train.familiarity.quantile
    by_species = schema.split == "species"
    n_folds = params.train.cv_folds
    y = prepared.label(frame)
    logit, worst = np.zeros(len(frame)), np.zeros(len(frame))
    distance, to_poisonous = np.zeros(len(frame)), np.zeros(len(frame), int)
    familiar = np.zeros(len(frame), bool)
    for part, held in folds(frame, by_species, n_folds, params.train.seed, "train.cv_folds"):
        train_part, held_rows = frame.iloc[part], frame.iloc[held]
        pipeline = fit_pipeline(featurizer, params, train_part, features)
        training = describe_training(train_part, features, catalogue)
        spec = familiarity.fit(train_part, catalogue, features, profiles, quantile)
        if spec["method"] == "pairs":  # its limit is set from these held-out distances
            spec["limit"] = np.inf
        judge = Judge(
            FastScorer(pipeline, features, catalogue, training),
            familiarity.Familiarity(spec, catalogue, features),
            Policy(1.0, 0.0, 1.0, 1.0),  # thresholds come later: only the scores are used
            training,
        )
        scored = judge.held_out(*judge.index_frame(held_rows))
        logit[held], worst[held] = scored.logit, scored.worst_logit
        distance[held], to_poisonous[held] = scored.distance, scored.poisonous_distance
        familiar[held] = scored.eligible  # familiar and nothing undocumented: may be edible
    spec = familiarity.fit(frame, catalogue, features, profiles, quantile)
    if spec["method"] == "pairs":
        spec["limit"] = familiarity.limit_from_held_out(distance, quantile)
    familiar &= distance <= spec["limit"]
    spec["lookalike_traits"] = familiarity.margin_from_held_out(to_poisonous[y == 1], quantile)
    lookalike = to_poisonous <= spec["lookalike_traits"]
    gate, abstention = params.evaluate.gate, params.train.abstention
    limits = Limits(
        gate.max_false_edible_rate,
        abstention.max_false_poisonous_rate,
        abstention.max_edible_risk,
        gate.max_cv_false_edible_rate,
    )
    policy, held_out = choose(y, logit, worst, familiar, lookalike, limits)
    held_out |= {
        "lookalike_traits": spec["lookalike_traits"],
        "folds": n_folds,
        "by_species": by_species,
        "source_lines_sha256": prepared.rows_digest(frame),
    }
    return Bundle(
        fitted or fit_pipeline(featurizer, params, frame, features),
        schema.dataset,
        features,
        policy,
        describe_training(frame, features, catalogue),
        spec,
        held_out,
    )
