"""train: cross-validate the chosen model, optionally grid-search it, fit it, and save ONE
artifact: featurizer + model as a single sklearn Pipeline over readable-name columns.

Cross-validation refits the encoder inside every fold (no leakage from the held-out fold)
and, on a species split, holds out whole species, as the test split does.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import (
    GridSearchCV,
    StratifiedGroupKFold,
    StratifiedKFold,
    cross_validate,
)
from sklearn.pipeline import Pipeline

from mushroom import dataset
from mushroom.catalogue import TARGET
from mushroom.fsutil import write_json, write_with
from mushroom.modeling import build_model, model_name
from mushroom.modelstore import timing_path
from mushroom.params import ParamsError, get, load_params, number
from mushroom.rawdata import SPECIES_ID

CV_SCORES = {
    "accuracy": "accuracy",
    "roc_auc": "roc_auc",
    "pr_auc": "average_precision",
    "brier": "neg_brier_score",
}


def cv_splitter(schema: dataset.Schema, folds: int, seed: int):
    if schema.split == "species":
        return StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    return StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)


def grid_search(pipeline, params, x, y, cv, groups) -> tuple[dict, dict]:
    """Search ``train.search.grid.<model>``; return the best hyperparameters and a summary."""
    name = model_name(params)
    grid = get(params, "train.search.grid").get(name) or {}
    if not grid:
        raise ParamsError(f"params.yaml: train.search.grid.{name} is empty")
    search = GridSearchCV(
        pipeline,
        {f"model__{k}": v for k, v in grid.items()},
        scoring=get(params, "train.search.scoring"),
        cv=cv,
        n_jobs=1,
    )
    search.fit(x, y, groups=groups)
    best = {k.removeprefix("model__"): v for k, v in search.best_params_.items()}
    return best, {
        "best_score": float(search.best_score_),
        "candidates": len(search.cv_results_["params"]),
        "best_params": best,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--prepared", default="data/prepared", type=Path)
    parser.add_argument("--features", default="data/features", type=Path)
    parser.add_argument("--featurizer", default="models/featurizer.joblib", type=Path)
    parser.add_argument("--model", default="models/model.joblib", type=Path)
    parser.add_argument("--train-info", default="models/train_info.json", type=Path)
    parser.add_argument("--metrics", default="reports/cv_metrics.json", type=Path)
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params)
        folds = int(number(params, "train.cv_folds", 2, 20))
        seed = int(get(params, "train.seed"))
        model = build_model(params)
        tune = bool(get(params, "train.search.enabled"))
    except (ParamsError, ValueError) as exc:
        print(f"train: {exc}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    train, schema = dataset.load_split(args.prepared, dataset.TRAIN_FILE)
    x, y = train[schema.features], dataset.label(train)
    groups = train[SPECIES_ID].to_numpy() if schema.split == "species" else None
    cv = cv_splitter(schema, folds, seed)
    featurizer = joblib.load(args.featurizer)
    unfitted = Pipeline([("features", clone(featurizer)), ("model", model)])

    search_summary = None
    if tune:
        best, search_summary = grid_search(unfitted, params, x, y, cv, groups)
        model = build_model(params, overrides=best)
        unfitted = Pipeline([("features", clone(featurizer)), ("model", model)])
    scores = cross_validate(unfitted, x, y, groups=groups, cv=cv, scoring=CV_SCORES, n_jobs=1)
    cv_metrics = {}
    for name in CV_SCORES:
        fold_scores = np.abs(scores[f"test_{name}"])  # brier comes negated from sklearn
        cv_metrics[f"cv_{name}"] = round(float(fold_scores.mean()), 6)
        cv_metrics[f"cv_{name}_std"] = round(float(fold_scores.std()), 6)

    encoded = pd.read_parquet(args.features / dataset.TRAIN_FILE)
    model.fit(encoded.drop(columns=[TARGET]), dataset.label(encoded))
    pipeline = Pipeline([("features", featurizer), ("model", model)])
    seconds = time.perf_counter() - started

    write_with(args.model, lambda path: joblib.dump(pipeline, path))
    write_json(args.metrics, cv_metrics | ({"search": search_summary} if search_summary else {}))
    write_json(
        args.train_info,
        {
            "model": model_name(params),
            "hyperparameters": model.get_params(),
            "features": schema.features,
            "dataset": schema.dataset,
            "split": schema.split,
            "n_train": len(train),
            "cv_folds": folds,
        },
    )
    # When and how long: kept out of the DVC-tracked outputs, which stay reproducible.
    write_json(
        timing_path(args.train_info),
        {
            "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "training_seconds": round(seconds, 2),
        },
    )
    print(
        f"train: {model_name(params)}: cv roc_auc {cv_metrics['cv_roc_auc']:.4f} "
        f"accuracy {cv_metrics['cv_accuracy']:.4f} ({seconds:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
