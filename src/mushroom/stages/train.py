"""train: fit the answering system on the training split and save it as ONE model
(featurizer + classifier, a sklearn Pipeline over readable-name columns) and its policy
(familiarity detector, calibration, thresholds: ``mushroom.fitting``).

Calibration and thresholds are chosen on out-of-fold predictions: the encoder and model
are refitted inside every fold, and on a species split whole species are held out, as
the test split does. ``reports/held_out.json`` says how the policy did on those folds.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import joblib
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from mushroom import dataset
from mushroom.catalogue import TARGET
from mushroom.fitting import SingleClass, fit_bundle, folds
from mushroom.fsutil import write_json
from mushroom.modeling import build_model, model_name
from mushroom.modelstore import timing_path
from mushroom.params import ParamsError, get, load_params, number


def grid_search(pipeline, params, x, y, cv) -> tuple[dict, dict]:
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
    search.fit(x, y)
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
    parser.add_argument("--policy", default="models/policy.json", type=Path)
    parser.add_argument("--train-info", default="models/train_info.json", type=Path)
    parser.add_argument("--metrics", default="reports/held_out.json", type=Path)
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params)
        n_folds = int(number(params, "train.cv_folds", 2, 20))
        model = build_model(params)
        tune = bool(get(params, "train.search.enabled"))
        number(params, "train.familiarity.quantile", 0.5, 1.0)
        number(params, "train.abstention.max_false_poisonous_rate", 0, 1)
        number(params, "evaluate.gate.max_false_edible_rate", 0, 1)
    except (ParamsError, ValueError) as exc:
        print(f"train: {exc}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    train, schema = dataset.load_split(args.prepared, dataset.TRAIN_FILE)
    featurizer = joblib.load(args.featurizer)
    search_summary = None
    if tune:
        x, y = train[schema.features], dataset.label(train)
        cv = folds(train, schema.split == "species", n_folds, int(get(params, "train.seed")))
        unfitted = Pipeline([("features", clone(featurizer)), ("model", model)])
        best, search_summary = grid_search(unfitted, params, x, y, cv)
        params["train"][model_name(params)] = (
            dict(get(params, f"train.{model_name(params)}") or {}) | best
        )
        model = build_model(params)
    encoded = pd.read_parquet(args.features / dataset.TRAIN_FILE)
    model.fit(encoded.drop(columns=[TARGET]), dataset.label(encoded))
    fitted = Pipeline([("features", featurizer), ("model", model)])
    profiles = dataset.read_species(args.prepared)
    try:
        bundle = fit_bundle(train, schema, params, featurizer, profiles, fitted=fitted)
    except SingleClass as exc:
        print(f"train: {exc}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - started

    bundle.save(args.model, args.policy)
    summary = {"split": "training split, out of fold"} | bundle.held_out
    summary |= {"policy": bundle.policy.to_dict(), "familiarity_limit": bundle.familiarity["limit"]}
    write_json(args.metrics, summary | ({"search": search_summary} if search_summary else {}))
    write_json(
        args.train_info,
        {
            "model": model_name(params),
            "hyperparameters": model.get_params(),
            "features": schema.features,
            "dataset": schema.dataset,
            "split": schema.split,
            "n_train": len(train),
            "cv_folds": n_folds,
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
    held = bundle.held_out
    print(
        f"train: {model_name(params)}: edible below {bundle.policy.edible_below:.4g}, poisonous "
        f"from {bundle.policy.poisonous_from:.4g}; held out: coverage {held['coverage']:.4f}, "
        f"{held['false_edible']} false edible, {held['unfamiliar']} unfamiliar ({seconds:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
