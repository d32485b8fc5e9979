"""The prepared data on disk: split files, their schema, and X/y loading shared by stages."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mushroom.core.atomic import read_json, write_json
from mushroom.core.catalogue import POISONOUS, TARGET, DatasetCatalogue, get_catalogue
from mushroom.data.raw import SOURCE_LINE

TRAIN_FILE, TEST_FILE, SCHEMA_FILE = "train.parquet", "test.parquet", "schema.json"
LABELLED_FILE = "labelled.parquet"
"""Every distinct labelled answer and its ``role`` (``mushroom.data.feedback``): the live split's,
those that joined training, those left out."""
ROLE = "role"
"""The column of LABELLED_FILE saying what prepare did with each description: the roles
below (the live split's, joined training, already in the source data, left out)."""
LIVE, TRAINING, IN_SOURCE = "live", "training", "already_in_source"
PARTIAL, UNTRUSTED = "left_out_partial", "left_out_untrusted_label"
SPECIES_FILE = "species.json"
"""The species profiles of the source (secondary's primary_data.csv); empty for UCI."""


@dataclass(frozen=True)
class Schema:
    """What prepare produced: the model's input features, in order (every trait of the
    dataset: one constant in training is kept, so that any other value counts as unseen)."""

    dataset: str
    split: str
    features: list[str]

    @property
    def catalogue(self) -> DatasetCatalogue:
        return get_catalogue(self.dataset)

    @property
    def categorical(self) -> list[str]:
        return [f for f in self.features if not self.catalogue.trait(f).is_numeric]


def write_schema(directory: Path, schema: Schema) -> None:
    write_json(directory / SCHEMA_FILE, asdict(schema))


def read_schema(directory: str | Path) -> Schema:
    return Schema(**read_json(Path(directory) / SCHEMA_FILE))


def label(frame: pd.DataFrame) -> np.ndarray:
    """1 = poisonous (the positive class: the one we must not miss), 0 = edible."""
    return (frame[TARGET] == POISONOUS).to_numpy(dtype=int)


def load_split(directory: str | Path, file: str) -> tuple[pd.DataFrame, Schema]:
    directory = Path(directory)
    return pd.read_parquet(directory / file), read_schema(directory)


def write_species(directory: Path, profiles: list[dict]) -> None:
    write_json(directory / SPECIES_FILE, profiles)


def read_species(directory: str | Path) -> list[dict]:
    """Species profiles, index = species id (see ``rawdata.read_species_profiles``)."""
    return read_json(Path(directory) / SPECIES_FILE)


def deduplicate(frame: pd.DataFrame, traits: list[str]) -> pd.DataFrame:
    """Rows with identical traits are one mushroom description: the first in ``frame``'s
    order is kept, poisonous if any copy is (when labels conflict, the safe label wins)."""
    keys = frame[traits].fillna(np.inf)  # so NaN measurements compare equal to each other
    group = keys.groupby(traits, sort=False, dropna=False).ngroup()
    any_poisonous = (frame[TARGET] == POISONOUS).groupby(group).transform("max")
    kept = frame.loc[~group.duplicated()].copy()
    kept.loc[any_poisonous[kept.index], TARGET] = POISONOUS
    return kept


def rows_digest(frame: pd.DataFrame) -> str:
    """sha256 of which raw rows a frame holds (their file lines, sorted): says, e.g., that
    thresholds were chosen on exactly the training split."""
    lines = np.sort(frame[SOURCE_LINE].to_numpy(dtype=np.int64))
    return hashlib.sha256(lines.tobytes()).hexdigest()
