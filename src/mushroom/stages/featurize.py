"""featurize: fit the chosen category_encoders encoder on the training split only."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import joblib

from mushroom import dataset
from mushroom.catalogue import TARGET
from mushroom.fsutil import atomic_dir, write_with
from mushroom.modeling import build_featurizer
from mushroom.params import ParamsError, load_params
from mushroom.stages import fail


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--prepared", default="data/prepared", type=Path)
    parser.add_argument("--out-dir", default="data/features", type=Path)
    parser.add_argument("--featurizer", default="models/featurizer.joblib", type=Path)
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params)
        train, schema = dataset.load_split(args.prepared, dataset.TRAIN_FILE)
        featurizer = build_featurizer(params, schema.categorical)
    except (ParamsError, FileNotFoundError) as exc:
        return fail("featurize", exc)
    test, _ = dataset.load_split(args.prepared, dataset.TEST_FILE)

    featurizer.fit(train[schema.features], dataset.label(train))
    with atomic_dir(args.out_dir) as tmp:
        for frame, file in ((train, dataset.TRAIN_FILE), (test, dataset.TEST_FILE)):
            encoded = featurizer.transform(frame[schema.features])
            encoded[TARGET] = frame[TARGET].to_numpy()
            encoded.to_parquet(tmp / file, index=False)
    write_with(args.featurizer, lambda path: joblib.dump(featurizer, path))
    n_columns = len(featurizer.get_feature_names_out())
    print(
        f"featurize: {params.featurize.encoder}: {len(schema.features)} traits -> "
        f"{n_columns} columns"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
