"""Labelled answers as data: exported from the prediction log into a DVC-tracked dataset, and
joined to the prepared splits when ``prepare.feedback.use`` is true.

The dataset, ``data/feedback/labelled.parquet``, holds one row per labelled answer: the
description as it was served (a trait left out is null), the answer, and ``true_class``, the
label given later. An export adds the log's labelled answers the file lacks and keeps every
row it had, so rotating the live log loses no label; a request the log now holds as
poisonous after a conflicting label (see ``PredictionLog.add_feedback``) becomes poisonous
in the file too.

How prepare uses it (``join``): the labelled descriptions of the model's dataset, one per
distinct description (the oldest answer's, poisonous if any copy is labelled so), ordered by
when first answered. The newest ``live_share`` of them are the *live* split, which evaluate
scores apart; they never train. The older ones train, if the description is complete (a
left-out trait has no value to learn from) and its label is trusted (``train_labels``: by
default only poisonous ones, since one wrong *edible* label could teach a false edible). A
trusted description the source data already holds adds no row; if labelled poisonous, the
source row becomes poisonous, as prepare's de-duplication already rules (the safe label
wins), in whichever split it is. Every distinct description is kept with its ``role``, and
evaluate's gate holds all of them, whatever the role, to the test split's count of false
edibles.

Rows joined from feedback have no raw file line and no species: their ``source_line`` and,
on the secondary data, ``species_id`` are ``-1 - k`` for the k-th row of the file, so each is
its own group in species-held-out folds and the species profiles ignore them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from mushroom.core.atomic import atomic_path
from mushroom.core.catalogue import (
    EDIBLE,
    POISONOUS,
    SOURCE_LINE,
    SPECIES_ID,
    SPECIES_NAME,
    TARGET,
    DatasetCatalogue,
    measurable,
)
from mushroom.core.params import Feedback
from mushroom.core.text import quoted
from mushroom.data.log_reading import read_predictions
from mushroom.data.prediction_log import LABEL, Location, columns
from mushroom.data.prepared import (
    IN_SOURCE,
    LIVE,
    PARTIAL,
    ROLE,
    TRAINING,
    UNTRUSTED,
    deduplicate,
)


class FeedbackError(ValueError):
    """The feedback dataset is absent, unreadable, or holds a value it may not."""

    def __init__(self, path: Path, problem: str, row: int | None = None, column: str = ""):
        where = str(path) + (f", row {row}" if row is not None else "")
        where += f", column {column!r}" if column else ""
        super().__init__(f"{where}: {problem}")


def _read(path: Path) -> pd.DataFrame:
    try:
        rows = pd.read_parquet(path)
    except FileNotFoundError:
        raise FeedbackError(
            path,
            "no such file (export the labelled answers with: mushroom feedback export; a "
            "committed one: make pull)",
        ) from None
    except (OSError, ValueError) as exc:  # pyarrow's errors are ValueErrors
        raise FeedbackError(path, f"not a feedback dataset: {exc}") from None
    absent = [c for c in columns() if c not in rows]
    if absent:
        raise FeedbackError(path, f"not a feedback dataset: no column {', '.join(absent)}")
    return rows[columns()]


class Exported(NamedTuple):
    added: int
    made_poisonous: int
    """Requests the dataset held as edible that a later label made poisonous."""
    total: int


def export(log: Location, out: Path) -> Exported:
    """Add the log's labelled answers that ``out`` lacks to it (created if absent), written
    atomically. A request labelled differently in the file and in the log is poisonous in
    the file from then on, whichever said so (the safe label wins, as in the log). Only the
    labelled answers are read from the log."""
    labelled = read_predictions(log, labelled_only=True)
    kept = _read(out) if out.exists() else labelled.iloc[:0].copy()
    poisonous_now = labelled.loc[labelled[LABEL] == POISONOUS, "request_id"]
    upgrade = kept["request_id"].isin(poisonous_now) & (kept[LABEL] == EDIBLE)
    kept.loc[upgrade, LABEL] = POISONOUS
    added = labelled[~labelled["request_id"].isin(kept["request_id"])]
    rows = pd.concat([kept, added], ignore_index=True) if len(kept) else added
    if len(added) or upgrade.any() or not out.exists():  # else unchanged, byte for byte
        with atomic_path(out) as tmp:
            rows.to_parquet(tmp, index=False)
    return Exported(len(added), int(upgrade.sum()), len(rows))


def read_labelled(path: Path, catalogue: DatasetCatalogue) -> pd.DataFrame:
    """``catalogue``'s labelled answers in the dataset at ``path``, every value checked
    against the catalogue (a problem names the row, counted from 0, column and value), with
    ``feedback_row``, the row's position in the file, ``answered_at``, ``logged_at`` as a
    time, and the label as ``class``."""
    rows = _read(path)
    rows["feedback_row"] = np.arange(len(rows))
    rows = rows[rows["dataset"] == catalogue.name]

    def check(column: str, bad: pd.Series, problem: str) -> None:
        if bad.any():
            first = bad.idxmax()
            raise FeedbackError(
                path, f"{quoted(rows.at[first, column])}: {problem}", int(first), column
            )

    check(LABEL, ~rows[LABEL].isin([EDIBLE, POISONOUS]), f"a label is {EDIBLE} or {POISONOUS}")
    rows["answered_at"] = pd.to_datetime(
        rows["logged_at"], utc=True, errors="coerce", format="ISO8601"
    )
    check("logged_at", rows["answered_at"].isna(), "not an ISO 8601 time")
    for trait in catalogue.traits:
        values = rows[trait.name]
        if trait.is_numeric:
            numbers = pd.to_numeric(values, errors="coerce")
            check(trait.name, values.notna() & numbers.isna(), "not a number")
            unmeasurable = numbers.notna() & ~measurable(numbers)
            check(trait.name, unmeasurable, f"not a measurement >= 0 ({trait.unit})")
            rows[trait.name] = numbers.astype(float)
        else:
            unlisted = values.notna() & ~values.isin(trait.allowed_values)
            check(trait.name, unlisted, trait.not_a_value())
    return rows.rename(columns={LABEL: TARGET})


def _as_prepared(rows: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Labelled rows in the prepared splits' columns: see the module docstring."""
    joined = rows.assign(**{SOURCE_LINE: -1 - rows["feedback_row"].to_numpy()})
    if SPECIES_ID in columns:
        joined[SPECIES_ID] = joined[SOURCE_LINE]
        joined[SPECIES_NAME] = None
    return joined[columns]


def join(
    train: pd.DataFrame,
    test: pd.DataFrame,
    labelled: pd.DataFrame | None,
    features: list[str],
    settings: Feedback,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
    """(train, test, every distinct labelled description with its ``role``, summary): see
    the module docstring. ``labelled`` is None when feedback is not used: the splits are
    returned as they are, with no labelled description."""
    columns = [*train.columns, ROLE]
    if labelled is None:
        return train, test, train.iloc[:0].assign(**{ROLE: ""})[columns], {"used": False}
    ordered = labelled.sort_values(["answered_at", "feedback_row"], kind="stable")
    distinct = deduplicate(ordered, features).reset_index(drop=True)
    n_live = math.ceil(settings.live_share * len(distinct))
    role = np.full(len(distinct), TRAINING, dtype=object)
    role[len(distinct) - n_live :] = LIVE
    complete = distinct[features].notna().all(axis=1).to_numpy()
    trusted = (distinct[TARGET] == POISONOUS).to_numpy() | (settings.train_labels == "all")
    role[(role == TRAINING) & ~complete] = PARTIAL
    role[(role == TRAINING) & ~trusted] = UNTRUSTED

    source = pd.concat([train, test], ignore_index=True)
    candidates = np.flatnonzero(role == TRAINING)
    position = pd.MultiIndex.from_frame(source[features]).get_indexer(
        pd.MultiIndex.from_frame(distinct.loc[candidates, features])
    )
    role[candidates[position >= 0]] = IN_SOURCE
    known_at = position[position >= 0]  # rows of source: train's, then test's
    safer = (distinct[TARGET].to_numpy()[candidates[position >= 0]] == POISONOUS) & (
        source[TARGET].to_numpy()[known_at] == EDIBLE
    )
    relabel = known_at[safer]
    in_test = relabel >= len(train)
    train, test = train.copy(), test.copy()
    train.iloc[relabel[~in_test], train.columns.get_loc(TARGET)] = POISONOUS
    test.iloc[relabel[in_test] - len(train), test.columns.get_loc(TARGET)] = POISONOUS
    described = _as_prepared(distinct.assign(**{ROLE: role}), columns)
    joined = described[described[ROLE] == TRAINING].drop(columns=ROLE)
    counts = pd.Series(role).value_counts()
    summary = {
        "used": True,
        "labelled": len(labelled),
        "distinct": len(distinct),
        "live": n_live,
        "training": {
            "joined": len(joined),
            **{kind: int(counts.get(kind, 0)) for kind in (IN_SOURCE, PARTIAL, UNTRUSTED)},
            "made_source_poisonous": len(relabel),
        },
    }
    return pd.concat([train, joined], ignore_index=True), test, described, summary
