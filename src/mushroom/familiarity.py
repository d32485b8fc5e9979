"""Is a description like the mushrooms the model learned from? Two detectors, one rule.

Each gives a description a distance: how much of it the training mushrooms do not
account for. A known trait adds what it contradicts; an unknown trait adds the most any
of its values could (so leaving a trait out never makes a description more familiar, and
with the worst-case scores this makes every verdict monotone: removing traits never turns
an answer edible). A description is familiar when its distance is within ``limit``.

- ``pairs`` (UCI, which documents no species): the distance is the number of trait-value
  pairs of the description never seen together in one training description. Every
  training description is at 0; a uniformly random one is at ~50 (of 210 pairs).
- ``profiles`` (secondary): primary_data.csv documents each species' allowed values and
  ranges. The distance to a species counts the traits that do not fit its profile (a
  value outside its set, a measurement outside its range by more than the fitted
  tolerance, a value where it records none, ``missing`` where it records one); the
  description's distance is the smallest over the training species, and the species at
  distance 0 are the ones it can be named as. The limit is 0: it must fit a species.

A spec (JSON) is fitted by ``fit`` and loaded by ``Familiarity``; both work on value
indices as ``FastScorer`` defines them (index ``len(values)`` = unknown, NaN measurement
= unknown).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from mushroom.catalogue import MISSING, SPECIES_ID, DatasetCatalogue, value_indices, with_species

PAIR_SEPARATOR = "|"


def seen_pairs(frame: pd.DataFrame, traits) -> dict[str, list[list[str]]]:
    index = value_indices(frame, traits)
    seen = {}
    for a, b in itertools.combinations(range(len(traits)), 2):
        values_a, values_b = traits[a].allowed_values, traits[b].allowed_values
        pairs = np.unique(index[:, a] * len(values_b) + index[:, b])
        key = f"{traits[a].name}{PAIR_SEPARATOR}{traits[b].name}"
        seen[key] = [[values_a[k // len(values_b)], values_b[k % len(values_b)]] for k in pairs]
    return seen


def profile_tolerance(frame: pd.DataFrame, profiles: list[dict], numeric, quantile: float):
    """The relative excess beyond its own species' documented range (as a share of the
    range's top) that ``quantile`` of training measurements (rows of a species) stay within."""
    if not numeric:
        return 0.0
    species = frame[SPECIES_ID].to_numpy()
    excess = np.zeros(len(frame))
    for trait in numeric:
        low, high = np.array([profiles[s]["traits"][trait.name] for s in species]).T
        x = frame[trait.name].to_numpy(dtype=float)
        beyond = np.maximum(np.maximum(low - x, x - high), 0) / np.maximum(high, 1e-9)
        excess = np.maximum(excess, np.nan_to_num(beyond))
    return float(np.quantile(excess, quantile))


class Familiarity:
    def __init__(self, spec: dict, catalogue: DatasetCatalogue, features: list[str]):
        self.spec = spec
        self.method, self.limit = spec["method"], spec["limit"]
        traits = [catalogue.trait(f) for f in features]
        self.categorical = [t for t in traits if not t.is_numeric]
        self.numeric = [t for t in traits if t.is_numeric]
        if self.method == "pairs":
            self._build_pairs(spec["seen"])
        else:
            self._build_profiles(spec["species"], spec["numeric_tolerance"])

    def _build_pairs(self, seen: dict) -> None:
        """One table over all values (each trait: its values, then unknown) whose entry
        says whether a pair was never seen; an unknown's row is its values' worst."""
        sizes = [len(t.allowed_values) + 1 for t in self.categorical]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)
        table = np.zeros((sum(sizes), sum(sizes)), np.uint8)
        for (a, ta), (b, tb) in itertools.combinations(enumerate(self.categorical), 2):
            block = np.ones((sizes[a] - 1, sizes[b] - 1), np.uint8)
            pairs = seen[f"{ta.name}{PAIR_SEPARATOR}{tb.name}"]
            for value_a, value_b in pairs:
                block[ta.allowed_values.index(value_a), tb.allowed_values.index(value_b)] = 0
            full = np.empty((sizes[a], sizes[b]), np.uint8)
            full[:-1, :-1] = block
            full[-1, :-1] = block.max(axis=0)
            full[:-1, -1] = block.max(axis=1)
            full[-1, -1] = block.max()
            rows = slice(self.offsets[a], self.offsets[a] + sizes[a])
            cols = slice(self.offsets[b], self.offsets[b] + sizes[b])
            table[rows, cols] = full
        self.table, self.flat_table = table, table.ravel()
        self.first, self.second = np.triu_indices(len(self.categorical), 1)

    def _build_profiles(self, species: list[dict], tolerance: float) -> None:
        self.species = species
        self.species_names = [s["name"] for s in species]
        self.poisonous = np.array([s["class"] == "poisonous" for s in species])
        # categorical: (values + unknown) × species distance
        self.tables = []
        for trait in self.categorical:
            values = trait.allowed_values
            table = np.zeros((len(values) + 1, len(species)))
            for j, profile in enumerate(species):
                allowed = profile["traits"][trait.name]
                documented = set(allowed) if allowed is not None else {MISSING}
                table[:-1, j] = [value not in documented for value in values]
            table[-1] = table[:-1].max(axis=0)
            self.tables.append(table)
        ranges = np.array(
            [[s["traits"][t.name] for s in species] for t in self.numeric], dtype=float
        ).reshape(len(self.numeric), len(species), 2)
        margin = tolerance * ranges[:, :, 1]
        self.low, self.high = ranges[:, :, 0] - margin, ranges[:, :, 1] + margin

    def distances(self, value_index: np.ndarray, numbers: np.ndarray) -> np.ndarray:
        """Rows × species distances (profiles) or rows × 1 (pairs)."""
        if self.method == "pairs":
            flat = value_index + self.offsets
            pairs = flat[:, self.first] * len(self.table) + flat[:, self.second]
            return self.flat_table[pairs].sum(axis=1, dtype=np.int64)[:, None]
        total = np.zeros((len(value_index), len(self.species)))
        for column, table in enumerate(self.tables):
            total += table[value_index[:, column]]
        for k in range(len(self.numeric)):
            x = numbers[:, k, None]
            outside = (x < self.low[k]) | (x > self.high[k])
            total += np.where(np.isnan(x), 1.0, outside)
        return total

    def assess(self, value_index: np.ndarray, numbers: np.ndarray):
        """Distance, familiar, and (profiles) the species each description fits given its
        known traits alone: rows × species bool, or None."""
        distances = self.distances(value_index, numbers)
        distance = distances.min(axis=1)
        if self.method == "pairs":
            return distance, distance <= self.limit, None
        unknown = (value_index == [len(t.allowed_values) for t in self.categorical]).sum(axis=1)
        unknown += np.isnan(numbers).sum(axis=1)
        # an unknown trait adds exactly 1 to every species' distance
        return distance, distance <= self.limit, distances - unknown[:, None] <= self.limit


def fit(
    frame: pd.DataFrame,
    catalogue: DatasetCatalogue,
    features: list[str],
    profiles: list[dict],
    quantile: float,
) -> dict:
    """A detector fitted on training descriptions (``frame``) alone. The pairs limit is
    set afterwards from held-out folds (``limit_from_held_out``); a profile detector knows
    only the species present in ``frame``."""
    traits = [catalogue.trait(f) for f in features]
    if catalogue.has_species_profiles:
        documented = with_species(frame)
        present = sorted(documented[SPECIES_ID].unique())
        numeric = [t for t in traits if t.is_numeric]
        return {
            "method": "profiles",
            "limit": 0,
            "numeric_tolerance": profile_tolerance(documented, profiles, numeric, quantile),
            "species": [profiles[s] | {"id": int(s)} for s in present],
            "fitted_on_rows": len(frame),
        }
    if any(t.is_numeric for t in traits):
        raise ValueError(f"{catalogue.name}: the pairs detector takes categorical traits only")
    return {
        "method": "pairs",
        "limit": None,
        "seen": seen_pairs(frame, traits),
        "fitted_on_rows": len(frame),
    }


def limit_from_held_out(held_out_distances: np.ndarray, quantile: float) -> float:
    """The pairs limit: ``quantile`` of the held-out training descriptions are within it."""
    return float(np.quantile(held_out_distances, quantile, method="higher"))
