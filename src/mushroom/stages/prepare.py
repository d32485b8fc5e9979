"""prepare: validate and decode the raw data, de-duplicate, split into train and test;
with ``prepare.feedback.use``, join the labelled answers (``mushroom.feedback``): a live split.

De-duplication rule (``dataset.deduplicate``): rows with identical traits are one mushroom
description; the first in file order is kept, and if any copy is labelled poisonous the kept
row is poisonous (when labels conflict, the safe label wins).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

from mushroom import dataset, feedback
from mushroom.catalogue import EDIBLE, NOT_RECORDED, POISONOUS, TARGET, get_catalogue, with_species
from mushroom.fsutil import atomic_dir, write_json
from mushroom.params import ParamsError, load_params
from mushroom.rawdata import SPECIES_ID, RawDataError, data_file, read_raw, read_species_profiles
from mushroom.stages import fail


def split(frame: pd.DataFrame, how: str, test_size: float, seed: int, source: Path):
    """Stratified by class: mushrooms (random) or whole species (species) go to test. Too
    few of a class to split is a RawDataError naming ``source``, the raw data file."""
    if how == "random":
        units, kind = frame[TARGET], "distinct mushrooms"
    else:
        units, kind = frame.groupby(SPECIES_ID)[TARGET].first(), "species"
    counts = units.value_counts().reindex([EDIBLE, POISONOUS], fill_value=0)
    if counts.min() < 2:
        raise RawDataError(
            source,
            f"{len(units)} {kind} ({counts[EDIBLE]} edible, {counts[POISONOUS]} poisonous): "
            "a train/test split needs at least 2 of each class",
        )
    try:
        train_units, test_units = train_test_split(
            units.index, test_size=test_size, random_state=seed, stratify=units
        )
    except ValueError as exc:  # too few for both splits to get every class
        problem = f"{len(units)} {kind} cannot be split with prepare.test_size = {test_size}"
        raise RawDataError(source, f"{problem}: {exc}") from None
    if how == "random":
        return frame.loc[train_units], frame.loc[test_units]
    in_test = frame[SPECIES_ID].isin(test_units)
    return frame[~in_test], frame[in_test]


def summarise(
    full: pd.DataFrame,
    train: pd.DataFrame,
    test: pd.DataFrame,
    n_raw: int,
    features: list[str],
) -> dict:
    def balance(part: pd.DataFrame) -> dict:
        return {
            "rows": len(part),
            "poisonous_share": round(float((part[TARGET] == POISONOUS).mean()), 4),
        }

    not_recorded = {f: int(((full[f] == NOT_RECORDED) | full[f].isna()).sum()) for f in features}
    summary = {
        "rows_raw": n_raw,
        "duplicates_dropped": n_raw - len(full),
        "rows": len(full),
        "n_features": len(features),
        # A trait of one value stays a feature: another value is then one never seen
        "constant": [f for f in features if train[f].nunique(dropna=False) <= 1],
        "train": balance(train),
        "test": balance(test),
        "not_recorded": {f: n for f, n in not_recorded.items() if n},
    }
    if SPECIES_ID in full:
        train_species = set(with_species(train)[SPECIES_ID])
        summary["species"] = {
            "train": len(train_species),
            "test": int(test[SPECIES_ID].nunique()),
            "shared": len(train_species & set(test[SPECIES_ID])),
        }
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--raw-dir", default="data/raw", type=Path)
    parser.add_argument("--out-dir", default="data/prepared", type=Path)
    parser.add_argument("--summary", default="reports/data_summary.json", type=Path)
    parser.add_argument("--feedback", default=feedback.FEEDBACK_PATH, type=Path)
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params)
        name, how = params.data.dataset, params.prepare.split
        raw = read_raw(name, args.raw_dir)
        profiles = read_species_profiles(args.raw_dir) if name == "secondary" else []
        features = get_catalogue(name).trait_names
        frame = dataset.deduplicate(raw, features)
        source = data_file(name, args.raw_dir)
        train, test = split(frame, how, params.prepare.test_size, params.prepare.seed, source)
        use = params.prepare.feedback.use
        labelled = feedback.read_labelled(args.feedback, get_catalogue(name)) if use else None
    except (ParamsError, RawDataError, feedback.FeedbackError) as exc:
        return fail("prepare", exc)
    train, test, labelled, joined = feedback.join(
        train, test, labelled, features, params.prepare.feedback
    )

    with atomic_dir(args.out_dir) as tmp:
        train.to_parquet(tmp / dataset.TRAIN_FILE, index=False)
        test.to_parquet(tmp / dataset.TEST_FILE, index=False)
        labelled.to_parquet(tmp / dataset.LABELLED_FILE, index=False)
        dataset.write_schema(tmp, dataset.Schema(name, how, features))
        dataset.write_species(tmp, profiles)
    summary = summarise(frame, train, test, len(raw), features)
    write_json(args.summary, summary | {"feedback": joined})
    print(
        f"prepare: {name}/{how}: {len(train)} train, {len(test)} test rows, "
        f"{len(labelled)} labelled descriptions; constant in training: "
        f"{summary['constant'] or 'none'}; {len(raw) - len(frame)} duplicates"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
