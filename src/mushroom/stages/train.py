"""train: fit the answering system on the training split and save it as ONE model
(featurizer + classifier, a sklearn Pipeline over readable-name columns) and its policy
(familiarity detector, calibration, thresholds: ``mushroom.model.fitting``).

Calibration and thresholds are chosen on out-of-fold predictions: the encoder and model
are refitted inside every fold, and on a species split whole species are held out, as
the test split does. ``reports/held_out.json`` says how the policy did on those folds.
"""

from __future__ import annotations

import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import joblib
import pandas as pd
from sklearn.pipeline import Pipeline

from mushroom.core import paths
from mushroom.core.atomic import atomic_path, write_json
from mushroom.core.catalogue import TARGET
from mushroom.core.params import Params, ParamsError, load_params
from mushroom.data import prepared
from mushroom.lifecycle.store_names import timing_path
from mushroom.model.bundle import Bundle
from mushroom.model.estimators import build_model
from mushroom.model.fitting import SingleClass, check_folds, fit_bundle, tune
from mushroom.stages import StageFailed, fail, files_of, stage_parser


@dataclass(frozen=True)
class Files:
    prepared: Path = paths.PREPARED
    features: Path = paths.FEATURES
    featurizer: Path = paths.FEATURIZER
    model: Path = paths.MODEL
    policy: Path = paths.POLICY
    train_info: Path = paths.TRAIN_INFO
    metrics: Path = paths.HELD_OUT


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser(__doc__.splitlines()[0], Files)
    args = parser.parse_args(argv)
    try:
        run(load_params(args.params), files_of(args, Files))
    except (ParamsError, StageFailed) as exc:
        return fail("train", exc)
    return 0


def run(params: Params, files: Files) -> None:
    train, schema = prepared.load_split(files.prepared, prepared.TRAIN_FILE)
    started = time.perf_counter()
    try:
        check_folds(train, schema.split == "species", params.train.cv_folds, "train.cv_folds")
        featurizer = joblib.load(files.featurizer)
        params, search_summary = tune(train, schema, params, featurizer)
        bundle = fit_system(train, schema, params, featurizer, files)
    except SingleClass as exc:
        raise StageFailed(f"{files.prepared / prepared.TRAIN_FILE}: {exc}") from None
    seconds = time.perf_counter() - started
    summary = {"split": "training split, out of fold"} | bundle.held_out
    summary |= {"policy": bundle.policy.to_dict(), "familiarity_limit": bundle.familiarity["limit"]}
    summary |= {"search": search_summary} if search_summary else {}
    info = {
        "model": params.train.model,
        "hyperparameters": bundle.pipeline.named_steps["model"].get_params(),
        "features": schema.features,
        "dataset": schema.dataset,
        "split": schema.split,
        "n_train": len(train),
        "cv_folds": params.train.cv_folds,
    }
    write_outputs(bundle, summary, info, files, seconds)
    held = bundle.held_out
    print(
        f"train: {params.train.model}: edible below {bundle.policy.edible_below:.4g}, poisonous "
        f"from {bundle.policy.poisonous_from:.4g}; held out: coverage {held['coverage']:.4f}, "
        f"{held['false_edible']} false edible, {held['unfamiliar']} unfamiliar ({seconds:.1f} s)"
    )


def fit_system(
    train: pd.DataFrame, schema: prepared.Schema, params: Params, featurizer, files: Files
) -> Bundle:
    """The model on the encoded training split, then the policy around it."""
    model = build_model(params)
    encoded = pd.read_parquet(files.features / prepared.TRAIN_FILE)
    model.fit(encoded.drop(columns=[TARGET]), prepared.label(encoded))
    fitted = Pipeline([("features", featurizer), ("model", model)])
    profiles = prepared.read_species(files.prepared)
    return fit_bundle(train, schema, params, featurizer, profiles, fitted=fitted)


def write_outputs(bundle: Bundle, summary: dict, info: dict, files: Files, seconds: float) -> None:
    """Every output to a temporary first, all renamed at the end: DVC keeps them in place
    (persist), so a failed write (a full disk) must not pair a new model with the previous
    policy."""
    with ExitStack() as outputs:
        outs = (files.model, files.policy, files.metrics, files.train_info)
        model_tmp, policy_tmp, metrics_tmp, info_tmp = (
            outputs.enter_context(atomic_path(path)) for path in outs
        )
        bundle.save(model_tmp, policy_tmp)
        write_json(metrics_tmp, summary)
        write_json(info_tmp, info)
    # When and how long: kept out of the DVC-tracked outputs, which stay reproducible.
    write_json(
        timing_path(files.train_info),
        {
            "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "training_seconds": round(seconds, 2),
        },
    )


if __name__ == "__main__":
    sys.exit(main())
