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
from contextlib import ExitStack
from pathlib import Path

import joblib
import pandas as pd
from sklearn.pipeline import Pipeline

from mushroom import dataset
from mushroom.catalogue import TARGET
from mushroom.fitting import SingleClass, check_folds, fit_bundle, tune
from mushroom.fsutil import atomic_path, write_json
from mushroom.modeling import build_model
from mushroom.modelstore import timing_path
from mushroom.params import ParamsError, load_params
from mushroom.stages import fail


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
        train, schema = dataset.load_split(args.prepared, dataset.TRAIN_FILE)
        by_species, n_folds = schema.split == "species", params.train.cv_folds
        check_folds(train, by_species, n_folds, "train.cv_folds")
    except SingleClass as exc:
        return fail("train", f"{args.prepared / dataset.TRAIN_FILE}: {exc}")
    except ParamsError as exc:
        return fail("train", exc)
    started = time.perf_counter()
    featurizer = joblib.load(args.featurizer)
    params, search_summary = tune(train, schema, params, featurizer)
    model = build_model(params)
    encoded = pd.read_parquet(args.features / dataset.TRAIN_FILE)
    model.fit(encoded.drop(columns=[TARGET]), dataset.label(encoded))
    fitted = Pipeline([("features", featurizer), ("model", model)])
    profiles = dataset.read_species(args.prepared)
    try:
        bundle = fit_bundle(train, schema, params, featurizer, profiles, fitted=fitted)
    except SingleClass as exc:
        return fail("train", f"{args.prepared / dataset.TRAIN_FILE}: {exc}")
    seconds = time.perf_counter() - started

    summary = {"split": "training split, out of fold"} | bundle.held_out
    summary |= {"policy": bundle.policy.to_dict(), "familiarity_limit": bundle.familiarity["limit"]}
    info = {
        "model": params.train.model,
        "hyperparameters": model.get_params(),
        "features": schema.features,
        "dataset": schema.dataset,
        "split": schema.split,
        "n_train": len(train),
        "cv_folds": n_folds,
    }
    # Every output is written to a temporary first and all are renamed at the end: DVC keeps
    # them in place (persist), so a failed write (a full disk) must not pair a new model
    # with the previous policy.
    with ExitStack() as outputs:
        paths = (args.model, args.policy, args.metrics, args.train_info)
        model_tmp, policy_tmp, metrics_tmp, info_tmp = (
            outputs.enter_context(atomic_path(path)) for path in paths
        )
        bundle.save(model_tmp, policy_tmp)
        write_json(metrics_tmp, summary | ({"search": search_summary} if search_summary else {}))
        write_json(info_tmp, info)
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
        f"train: {params.train.model}: edible below {bundle.policy.edible_below:.4g}, poisonous "
        f"from {bundle.policy.poisonous_from:.4g}; held out: coverage {held['coverage']:.4f}, "
        f"{held['false_edible']} false edible, {held['unfamiliar']} unfamiliar ({seconds:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
