"""prepare: validate and decode the raw data, de-duplicate, split into train and test;
with ``prepare.feedback.use``, join the labelled answers (``mushroom.data.feedback``): a live split.

De-duplication rule (``prepared.deduplicate``): rows with identical traits are one mushroom
description; the first in file order is kept, and if any copy is labelled poisonous the kept
row is poisonous (when labels conflict, the safe label wins).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

from mushroom.core import paths
from mushroom.core.atomic import atomic_dir, write_json
from mushroom.core.catalogue import (
    EDIBLE,
    NOT_RECORDED,
    POISONOUS,
    TARGET,
    get_catalogue,
    with_species,
)
from mushroom.core.params import Params, ParamsError, load_params
from mushroom.data import feedback, prepared
from mushroom.data.raw import SPECIES_ID, RawDataError, data_file, read_raw, read_species_profiles
from mushroom.stages import fail, files_of, stage_parser


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


@dataclass(frozen=True)
class Files:
    raw_dir: Path = paths.RAW
    out_dir: Path = paths.PREPARED
    summary: Path = paths.DATA_SUMMARY
    feedback: Path = paths.FEEDBACK


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser(__doc__.splitlines()[0], Files)
    args = parser.parse_args(argv)
    try:
        files = files_of(args, Files)
        run(load_params(args.params), files)
    except (ParamsError, RawDataError, feedback.FeedbackError) as exc:
        return fail("prepare", exc)
    return 0


def run(params: Params, files: Files) -> None:
    name, how = params.data.dataset, params.prepare.split
    raw = read_raw(name, files.raw_dir)
    profiles = read_species_profiles(files.raw_dir) if name == "secondary" else []
    features = get_catalogue(name).trait_names
    frame = prepared.deduplicate(raw, features)
    source = data_file(name, files.raw_dir)
    train, test = split(frame, how, params.prepare.test_size, params.prepare.seed, source)
    use = params.prepare.feedback.use
    labelled = feedback.read_labelled(files.feedback, get_catalogue(name)) if use else None
    train, test, labelled, joined = feedback.join(
        train, test, labelled, features, params.prepare.feedback
    )
    with atomic_dir(files.out_dir) as tmp:
        train.to_parquet(tmp / prepared.TRAIN_FILE, index=False)
        test.to_parquet(tmp / prepared.TEST_FILE, index=False)
        labelled.to_parquet(tmp / prepared.LABELLED_FILE, index=False)
        prepared.write_schema(tmp, prepared.Schema(name, how, features))
        prepared.write_species(tmp, profiles)
    summary = summarise(frame, train, test, len(raw), features)
    write_json(files.summary, summary | {"feedback": joined})
    print(
        f"prepare: {name}/{how}: {len(train)} train, {len(test)} test rows, "
        f"{len(labelled)} labelled descriptions; constant in training: "
        f"{summary['constant'] or 'none'}; {len(raw) - len(frame)} duplicates"
    )


if __name__ == "__main__":
    sys.exit(main())
