"""Is a description like the mushrooms the model learned from, and is a known poisonous
mushroom nearly like it? Two detectors, one rule.

Each gives a description a distance: how much of it the training mushrooms do not
account for. A known trait adds what it contradicts; an unknown trait adds the most any
of its values could (so leaving a trait out never makes a description more familiar, and
with the worst-case scores this makes every verdict monotone: removing traits never turns
an answer edible). A description is familiar when its distance is within ``limit``.

- ``pairs`` (UCI, which documents no species): the distance is the number of trait-value
  pairs of the description never seen together in one training description. Every
  training description is at 0; a uniformly random one is at ~50 (of 231 pairs).
- ``profiles`` (secondary): primary_data.csv documents each species' allowed values and
  ranges. The distance to a species counts the traits that do not fit its profile (a
  value outside its set, a measurement outside its range by more than the fitted
  tolerance, ``not_recorded`` where it records values). A blank in a profile means the
  source did not describe the trait: every value fits it, but no value is *vouched* for
  by it (``Assessment.unvouched``: the verdict then holds whatever that value is). The
  description's distance is the smallest over the training species, and the species at
  distance 0 are the ones it can be named as. The limit is 0: it must fit a species.

**Lookalikes.** An edible answer also needs a margin: no known poisonous mushroom within
``lookalike_traits`` known traits of the description (unknown traits taken at their
worst: they match). Known poisonous mushrooms are the training split's poisonous
descriptions (pairs) or the poisonous training species' profiles. The margin is fitted on
held-out folds: one trait more than ``quantile`` of held-out poisonous descriptions lie
from the nearest known one (``margin_from_held_out``), so that a poisonous mushroom the
model has not seen, with one trait misread, is still within it (UCI: 2; secondary with
a random split: 1).

**Candidates.** The values of each unknown trait that a familiar completion could take,
given the known ones: what the most edible completion is taken over when deciding that a
partial description is poisonous whatever the rest (``mushroom.model.policy``).

A spec (JSON) is fitted by ``fit`` and loaded by ``Familiarity``; both work on value
indices as ``FastScorer`` defines them (index ``len(values)`` = unknown, NaN measurement
= unknown).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mushroom.core.catalogue import (
    NOT_RECORDED,
    POISONOUS,
    SPECIES_ID,
    TARGET,
    DatasetCatalogue,
    value_indices,
    with_species,
)

PAIR_SEPARATOR = "|"
COUNTED_DIRECTLY = 8
"""Up to this many rows, the distance to the known poisonous rows is counted directly."""
PAIR_CHUNK = 8192
MAX_LOOKALIKE_TRAITS = 4
"""The widest lookalike margin: distances to known poisonous mushrooms are counted up to
one more than this."""
ROW_CODE_FOR_NOT_RECORDED = "?"


def seen_pairs(frame: pd.DataFrame, traits) -> dict[str, list[list[str]]]:
    index = value_indices(frame, traits)
    seen = {}
    for a, b in itertools.combinations(range(len(traits)), 2):
        values_a, values_b = traits[a].allowed_values, traits[b].allowed_values
        pairs = np.unique(index[:, a] * len(values_b) + index[:, b])
        key = f"{traits[a].name}{PAIR_SEPARATOR}{traits[b].name}"
        seen[key] = [[values_a[k // len(values_b)], values_b[k % len(values_b)]] for k in pairs]
    return seen


def _row_codes(trait) -> dict[str, str]:
    """Readable value -> the one character a known poisonous row is stored with."""
    codes = {name: code for code, name in reversed(trait.codes.items())}
    return codes | {NOT_RECORDED: ROW_CODE_FOR_NOT_RECORDED}


def poisonous_rows(frame: pd.DataFrame, traits) -> list[str]:
    """The distinct poisonous descriptions of ``frame``, each as one string of code letters
    in ``traits`` order (the raw UCI file's own spelling, ``?`` for not recorded)."""
    poisonous = frame[frame[TARGET] == POISONOUS]
    columns = [poisonous[t.name].map(_row_codes(t)) for t in traits]
    return sorted({"".join(letters) for letters in zip(*columns, strict=True)})


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


@dataclass
class Completions:
    """The values familiar completions may hold: each value's ``cost`` (rows × every trait's
    values end to end; ``NEVER``: not allowed) within each row's ``budget``, and each
    measurement's interval (``low``, ``high``)."""

    NEVER = 10**6
    cost: np.ndarray
    budget: np.ndarray
    low: np.ndarray
    high: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        """Every value some completion may hold, each on its own."""
        return self.cost <= self.budget[:, None]


@dataclass
class Assessment:
    """What the detector says of each description (rows)."""

    distance: np.ndarray
    familiar: np.ndarray
    known_fit: np.ndarray
    """The known traits alone are familiar: some completion could be."""
    fits: np.ndarray | None = None
    """Profiles: rows × species, the species its known traits fit (unknown ones could)."""
    unvouched: np.ndarray | None = None
    """Profiles: rows × categorical traits, known values that only a blank fits."""


class Familiarity:
    def __init__(self, spec: dict, catalogue: DatasetCatalogue, features: list[str]):
        self.spec = spec
        self.method, self.limit = spec["method"], spec["limit"]
        self.margin = spec.get("lookalike_traits")  # None while held-out folds choose it
        traits = [catalogue.trait(f) for f in features]
        self.categorical = [t for t in traits if not t.is_numeric]
        self.numeric = [t for t in traits if t.is_numeric]
        self.sizes = np.array([len(t.allowed_values) for t in self.categorical], dtype=np.intp)
        # each trait's values end to end, as in a flat candidate mask
        self.value_offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.intp)
        if self.method == "pairs":
            self._build_pairs(spec["seen"])
            self._build_rows(spec["poisonous_rows"])
        else:
            self._build_profiles(spec["species"], spec["numeric_tolerance"])

    # --- pairs -------------------------------------------------------------------------

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
        # Which values were never seen with a given value, either order; unknown rows and
        # columns hold nothing (an unknown trait rules no value out).
        never = table | table.T
        known_slots = np.ones(len(table), bool)
        known_slots[self.offsets + np.array(sizes) - 1] = False
        never[~known_slots] = 0
        self.never_with = never[:, known_slots].astype(bool)  # slots × values end to end

    def _build_rows(self, rows: list[str]) -> None:
        """Bitsets of the known poisonous rows: per trait, per value (then unknown: every
        row), which rows hold it, 64 rows a word."""
        decode = [
            {letter: t.allowed_values.index(name) for name, letter in _row_codes(t).items()}
            for t in self.categorical
        ]
        self.rows = np.array(
            [[decode[k][letter] for k, letter in enumerate(row)] for row in rows], dtype=np.intp
        ).reshape(len(rows), len(self.categorical))
        # A few rows (a single request) are counted directly: per value slot (then unknown:
        # no row differs), which rows differ in it; summed over the traits, ~8x faster than
        # the bitsets for one row, which win from ~10 rows on.
        slots = np.concatenate([[0], np.cumsum([size + 1 for size in self.sizes])])
        self.row_slot = slots[:-1]
        self.row_mismatch = np.zeros((slots[-1], len(rows)), np.uint8)
        for k, size in enumerate(self.sizes):
            self.row_mismatch[slots[k] : slots[k] + size] = (
                self.rows[:, k][None, :] != np.arange(size)[:, None]
            )
        words = max(1, -(-len(rows) // 64))
        self.row_bits = []
        for k, size in enumerate(self.sizes):
            bits = np.zeros((size + 1, words * 64), bool)
            bits[self.rows[:, k], np.arange(len(rows))] = True
            bits[-1, : len(rows)] = True
            self.row_bits.append(np.packbits(bits, axis=1, bitorder="little").view(np.uint64))

    def _row_distance(self, value_index: np.ndarray, cap: int) -> np.ndarray:
        """Known traits in which the nearest known poisonous row differs, up to cap + 1."""
        n = len(value_index)
        distance = np.full(n, cap + 1)
        if not len(self.rows):
            return distance
        if n <= COUNTED_DIRECTLY:
            differing = self.row_mismatch[value_index + self.row_slot].sum(axis=1, dtype=np.int16)
            return np.minimum(differing.min(axis=1), cap + 1)
        step = 4096
        for start in range(0, n, step):
            index = value_index[start : start + step]
            every_row = np.full((len(index), self.row_bits[0].shape[1]), ~np.uint64(0))
            within = [every_row.copy() for _ in range(cap + 1)]  # rows differing in <= k
            for k, bits in enumerate(self.row_bits):
                match = bits[index[:, k]]
                for level in range(cap, 0, -1):
                    within[level] = (within[level] & match) | within[level - 1]
                within[0] &= match
            for level in range(cap, -1, -1):
                found = within[level].any(axis=1)
                distance[start : start + step][found] = level
        return distance

    # --- profiles ----------------------------------------------------------------------

    def _build_profiles(self, species: list[dict], tolerance: float) -> None:
        self.species = species
        self.species_names = [s["name"] for s in species]
        self.poisonous = np.array([s["class"] == "poisonous" for s in species])
        # categorical: (values + unknown) × species misfit, unknown at its worst; and
        # whether the profile lists each value (not_recorded: whether it is blank)
        self.tables, self.documents = [], []
        for trait in self.categorical:
            values = trait.allowed_values
            table = np.zeros((len(values) + 1, len(species)))
            documents = np.zeros((len(values) + 1, len(species)), bool)
            for j, profile in enumerate(species):
                allowed = profile["traits"][trait.name]
                if allowed is None:  # not described: any value fits, none is vouched for
                    documents[values.index(NOT_RECORDED), j] = True
                    continue
                listed = np.array([value in allowed for value in values])
                table[:-1, j] = ~listed
                documents[:-1, j] = listed
            table[-1] = table[:-1].max(axis=0)
            self.tables.append(table.astype(np.int8))
            self.documents.append(documents)
        # the same with an unknown trait adding nothing: what the known traits contradict
        self.known_tables = [np.vstack([t[:-1], np.zeros_like(t[-1:])]) for t in self.tables]
        # species × every trait's values end to end: whether the value fits the species
        self.fitting_values = np.hstack(
            [(t[:-1] == 0).T for t in self.tables] or [np.zeros((len(species), 0))]
        ).astype(np.float32)
        ranges = np.array(
            [[s["traits"][t.name] for s in species] for t in self.numeric], dtype=float
        ).reshape(len(self.numeric), len(species), 2)
        margin = tolerance * ranges[:, :, 1]
        self.low, self.high = ranges[:, :, 0] - margin, ranges[:, :, 1] + margin

    def _profile_distances(self, value_index, numbers) -> tuple[np.ndarray, np.ndarray]:
        """Rows × species: misfits with unknown traits at their worst, and of known traits
        (small whole numbers: 16-bit counts, 8-bit tables)."""
        total = np.zeros((len(value_index), len(self.species)), np.int16)
        known = np.zeros_like(total)
        for column, (table, known_table) in enumerate(
            zip(self.tables, self.known_tables, strict=True)
        ):
            total += table[value_index[:, column]]
            known += known_table[value_index[:, column]]
        for k in range(len(self.numeric)):
            x = numbers[:, k, None]
            outside = (x < self.low[k]) | (x > self.high[k])
            not_measured = np.isnan(x)
            total += outside | not_measured
            known += outside & ~not_measured
        return total, known

    # --- both --------------------------------------------------------------------------

    def distances(self, value_index: np.ndarray, numbers: np.ndarray) -> np.ndarray:
        """Rows × species distances (profiles) or rows × 1 (pairs), unknown at its worst."""
        if self.method == "pairs":
            return self._pair_distances(value_index)[:, None]
        return self._profile_distances(value_index, numbers)[0]

    def _pair_distances(self, value_index: np.ndarray, both_known=None) -> np.ndarray:
        """Never-seen pairs per row, in chunks of rows and 32-bit indices: the gather of
        every pair is the detector's whole cost. ``both_known``: count only pairs of known
        traits."""
        first, second = self.first, self.second
        distance = np.empty(len(value_index), np.int64)
        for start in range(0, len(value_index), PAIR_CHUNK):
            flat = (value_index[start : start + PAIR_CHUNK] + self.offsets).astype(np.int32)
            seen = self.flat_table[flat[:, first] * np.int32(len(self.table)) + flat[:, second]]
            if both_known is not None:
                unknown = value_index[start : start + PAIR_CHUNK] >= self.sizes
                seen = seen * ~(unknown[:, first] | unknown[:, second])
            distance[start : start + PAIR_CHUNK] = seen.sum(axis=1, dtype=np.int64)
        return distance

    def assess(self, value_index: np.ndarray, numbers: np.ndarray) -> Assessment:
        if self.method == "pairs":
            distance = self._pair_distances(value_index)
            familiar = distance <= self.limit
            complete = ~(value_index >= self.sizes).any(axis=1)
            known_fit = self._known_pairs_familiar(value_index)
            known_fit[complete] = familiar[complete]
            return Assessment(distance, familiar, known_fit)
        total, known = self._profile_distances(value_index, numbers)
        distance = total.min(axis=1)
        fits = known <= self.limit
        vouched = np.zeros(value_index.shape, bool)
        for column, documents in enumerate(self.documents):
            vouched[:, column] = (fits & documents[value_index[:, column]]).any(axis=1)
        unvouched = (value_index < self.sizes) & ~vouched
        return Assessment(distance, distance <= self.limit, fits.any(axis=1), fits, unvouched)

    def poisonous_distance(
        self, value_index: np.ndarray, numbers: np.ndarray, cap: int = MAX_LOOKALIKE_TRAITS
    ) -> np.ndarray:
        """Known traits (unknown ones match) in which the nearest known poisonous mushroom
        differs from each row, counted up to ``cap`` + 1."""
        if self.method == "pairs":
            return self._row_distance(value_index, cap)
        _, known = self._profile_distances(value_index, numbers)
        nearest = known[:, self.poisonous].min(axis=1, initial=cap + 1)
        return np.minimum(nearest, cap + 1).astype(int)

    def lookalike(self, value_index: np.ndarray, numbers: np.ndarray) -> np.ndarray:
        """Whether a known poisonous mushroom lies within the margin of each row."""
        return self.poisonous_distance(value_index, numbers, self.margin) <= self.margin

    def lookalike_names(self, value_index: np.ndarray, numbers: np.ndarray) -> list[str]:
        """For each row with a lookalike, the nearest one: a poisonous species' name, or
        (pairs) where the nearest poisonous training description differs, ``trait=value``
        (``identical`` when it differs in no known trait)."""
        if self.method == "pairs":
            names = []
            for row in value_index:
                differ = (self.rows != row) & (row < self.sizes)
                nearest = np.argmin(differ.sum(axis=1))
                spelled = [
                    f"{self.categorical[t].name}="
                    f"{self.categorical[t].allowed_values[self.rows[nearest, t]]}"
                    for t in np.flatnonzero(differ[nearest])
                ]
                names.append(",".join(spelled) or "identical")
            return names
        _, known = self._profile_distances(value_index, numbers)
        known = np.where(self.poisonous, known, np.inf)
        return [self.species_names[j] for j in np.argmin(known, axis=1)]

    def completions(
        self, value_index: np.ndarray, numbers: np.ndarray, domain: np.ndarray
    ) -> Completions:
        """What a familiar completion of each row may hold. A known trait: its own value.
        An unknown one: the values of the species the known traits fit (profiles), or each
        value at the cost of its pairs never seen with the known values, within what the
        limit leaves after the known values' own (pairs; pairs among unknown traits are not
        counted: a relaxation, never narrower than the familiar completions). Where the known
        traits are themselves unfamiliar, or leave a trait no value, unknown traits may take
        any value (measurements: their ``domain``)."""
        n = len(value_index)
        unknown = value_index >= self.sizes
        cost = np.full((n, int(self.sizes.sum())), Completions.NEVER, np.int64)
        rows = np.arange(n)[:, None]
        known_at = np.where(unknown, 0, value_index) + self.value_offsets
        cost[np.broadcast_to(rows, known_at.shape)[~unknown], known_at[~unknown]] = 0
        low = np.where(np.isnan(numbers), domain[:, 0], numbers)
        high = np.where(np.isnan(numbers), domain[:, 1], numbers)
        open_values = np.zeros(cost.shape, bool)
        for column, offset in enumerate(self.value_offsets):
            open_values[unknown[:, column], offset : offset + self.sizes[column]] = True
        budget = np.zeros(n, np.int64)
        if self.method == "pairs":
            slots = np.where(unknown, -1, value_index + self.offsets)
            never = np.zeros(cost.shape, np.int64)
            for column in range(value_index.shape[1]):
                known_rows = slots[:, column] >= 0
                never[known_rows] += self.never_with[slots[known_rows, column]]
            among_known = self._pair_distances(value_index, both_known=True)
            usable = among_known <= self.limit
            budget = np.where(usable, self.limit - among_known, 0).astype(np.int64)
            opened = np.where(open_values & (never <= budget[:, None]), never, Completions.NEVER)
        else:
            _, known = self._profile_distances(value_index, numbers)
            fits = known <= self.limit
            allowed = fits.astype(np.float32) @ self.fitting_values > 0  # in BLAS
            opened = np.where(allowed & open_values, 0, Completions.NEVER)
            usable = fits.any(axis=1)
            if self.numeric:
                lows = np.where(fits[:, None, :], self.low[None], np.inf).min(axis=2)
                highs = np.where(fits[:, None, :], self.high[None], -np.inf).max(axis=2)
                narrowed_low = np.maximum(np.maximum(lows, domain[:, 0]), 0.0)
                narrowed_high = np.minimum(highs, domain[:, 1])
                keep = usable[:, None] & np.isnan(numbers) & (narrowed_low <= narrowed_high)
                low = np.where(keep, narrowed_low, low)
                high = np.where(keep, narrowed_high, high)
        every_trait_left = np.ones(n, bool)
        for column, offset in enumerate(self.value_offsets):
            segment = opened[:, offset : offset + self.sizes[column]] <= budget[:, None]
            every_trait_left &= ~unknown[:, column] | segment.any(axis=1)
        narrowed = usable & every_trait_left
        budget = np.where(narrowed, budget, 0)
        cost = np.minimum(cost, np.where(narrowed[:, None], opened, np.where(open_values, 0, cost)))
        return Completions(cost, budget, low, high)

    def _known_pairs_familiar(self, value_index: np.ndarray) -> np.ndarray:
        """Pairs: whether the known traits' pairs were all seen together."""
        familiar = np.ones(len(value_index), bool)
        partial = np.flatnonzero((value_index >= self.sizes).any(axis=1))
        if len(partial):
            only_known = self._pair_distances(value_index[partial], both_known=True)
            familiar[partial] = only_known <= self.limit
        return familiar


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
        "poisonous_rows": poisonous_rows(frame, traits),
        "fitted_on_rows": len(frame),
    }


def limit_from_held_out(held_out_distances: np.ndarray, quantile: float) -> float:
    """The pairs limit: ``quantile`` of the held-out training descriptions are within it."""
    return float(np.quantile(held_out_distances, quantile, method="higher"))


def margin_from_held_out(poisonous_distances: np.ndarray, quantile: float) -> int:
    """The lookalike margin: one trait (a misread) beyond the distance within which
    ``quantile`` of held-out poisonous descriptions lie from the nearest known poisonous
    mushroom, at most MAX_LOOKALIKE_TRAITS."""
    if not len(poisonous_distances):
        return MAX_LOOKALIKE_TRAITS
    reach = int(np.quantile(poisonous_distances, quantile, method="higher"))
    return min(reach + 1, MAX_LOOKALIKE_TRAITS)
