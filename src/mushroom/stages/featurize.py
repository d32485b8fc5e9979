"""featurize: fit the chosen category_encoders encoder on the training split only."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import joblib

from mushroom.core import paths
from mushroom.core.atomic import atomic_dir, write_with
from mushroom.core.catalogue import TARGET
from mushroom.core.params import Params, ParamsError, load_params
from mushroom.data import prepared
from mushroom.model.estimators import build_featurizer
from mushroom.stages import fail, files_of, stage_parser


@dataclass(frozen=True)
class Files:
    prepared: Path = paths.PREPARED
    out_dir: Path = paths.FEATURES
    featurizer: Path = paths.FEATURIZER


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser(__doc__, Files)
    args = parser.parse_args(argv)
    try:
        files = files_of(args, Files)
        run(load_params(args.params), files)
    except (ParamsError, FileNotFoundError) as exc:
        return fail("featurize", exc)
    return 0


def run(params: Params, files: Files) -> None:
    train, schema = prepared.load_split(files.prepared, prepared.TRAIN_FILE)
    featurizer = build_featurizer(params, schema.categorical)
    test, _ = prepared.load_split(files.prepared, prepared.TEST_FILE)
    featurizer.fit(train[schema.features], prepared.label(train))
    with atomic_dir(files.out_dir) as tmp:
        for frame, file in ((train, prepared.TRAIN_FILE), (test, prepared.TEST_FILE)):
            encoded = featurizer.transform(frame[schema.features])
            encoded[TARGET] = frame[TARGET].to_numpy()
            encoded.to_parquet(tmp / file, index=False)
    write_with(files.featurizer, lambda path: joblib.dump(featurizer, path))
    n_columns = len(featurizer.get_feature_names_out())
    print(
        f"featurize: {params.featurize.encoder}: {len(schema.features)} traits -> "
        f"{n_columns} columns"
    )


if __name__ == "__main__":
    sys.exit(main())
