"""Feature catalogue: the one place that knows each dataset's columns, kinds and codes.

The pipeline, the API schema and the drift report all read these objects; nobody else
spells out a column list. Codes and readable names follow the datasets' code books
(``agaricus-lepiota.names`` and the revised secondary metadata), plus the two quirks the
data README documents: secondary ``cap-surface = d`` (dry) and ``stem-root = f`` (none).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Literal

import numpy as np

NOT_RECORDED = "not_recorded"
"""Readable value of a categorical trait the dataset's source did not record (UCI ``?``,
secondary blank): a fact about the field guide the data came from, not about a mushroom.
The model learns from it; a person can never give it (see ``read_value``)."""
NOT_KNOWN = frozenset(
    {"", "?", "missing", "unknown", "not known", "not_known", "not recorded", NOT_RECORDED}
)
"""What a person may write for "I don't know" (compared stripped, in lower case): every
one means the trait is unknown, exactly as leaving it out. ``not_recorded`` is one of them:
a mushroom has a stalk root even where a field guide did not describe it."""

TARGET = "class"
SOURCE_LINE, SPECIES_ID, SPECIES_NAME = "source_line", "species_id", "species_name"
"""Columns prepare adds beside the traits: the raw file line, and (secondary) the species."""
EDIBLE, POISONOUS = "edible", "poisonous"
CLASS_CODES = MappingProxyType({"e": EDIBLE, "p": POISONOUS})


@dataclass(frozen=True)
class Trait:
    """One described trait of a mushroom.

    ``column`` is the dataset's own hyphenated header (``cap-shape``); ``name`` is the
    snake_case name used from prepare on (``cap_shape``). ``codes`` maps the raw code
    letter to its readable name; codes in ``missing_codes`` decode to ``NOT_RECORDED``.
    """

    column: str
    kind: Literal["categorical", "numeric"]
    codes: Mapping[str, str] = field(default_factory=dict)
    missing_codes: frozenset[str] = frozenset()
    unit: str | None = None

    @property
    def name(self) -> str:
        return self.column.replace("-", "_")

    @property
    def is_numeric(self) -> bool:
        return self.kind == "numeric"

    # Cached (a frozen dataclass still has its __dict__): the scoring path reads them per
    # answer, and each was a new tuple built from the code book every time.
    @cached_property
    def allowed_values(self) -> tuple[str, ...]:
        """Readable values a prepared row may hold (categorical traits only): the
        ``describable_values`` and ``NOT_RECORDED``, last."""
        return self.describable_values + (NOT_RECORDED,)

    @cached_property
    def describable_values(self) -> tuple[str, ...]:
        """The values a person can describe a mushroom by: the code book's."""
        return tuple(dict.fromkeys(self.codes.values()))

    def read_value(self, text: str) -> str | None:
        """A person's value written as text: None for any spelling of "I don't know"
        (``NOT_KNOWN``, any case, stray whitespace); for a categorical trait, its readable
        name (given as the name or the code letter); ValueError otherwise (a measurement is
        a number, never text)."""
        key = text.strip().lower()
        if key in NOT_KNOWN:
            return None
        for code, name in self.codes.items():
            if key in (name, code.lower()):
                return name
        raise ValueError(text)

    def not_a_value(self) -> str:
        """What is wrong with a value outside ``allowed_values``."""
        return f"not a value of {self.name}; values: {', '.join(self.allowed_values)}"

    def decode(self, code: str) -> str:
        if code in self.missing_codes:
            return NOT_RECORDED
        return self.codes[code]


@dataclass(frozen=True)
class DatasetCatalogue:
    name: str
    traits: tuple[Trait, ...]
    citation: str
    poison_markers: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Trait values the code book itself names as marks of poison: a description with one
    must never be answered edible (a check of the safety suite, not a rule of the model)."""
    has_species_profiles: bool = False
    """Whether the dataset documents each species' allowed values (secondary)."""

    @property
    def trait_names(self) -> list[str]:
        return [t.name for t in self.traits]

    @property
    def categorical(self) -> list[Trait]:
        return [t for t in self.traits if not t.is_numeric]

    @property
    def numeric(self) -> list[Trait]:
        return [t for t in self.traits if t.is_numeric]

    def trait(self, name: str) -> Trait:
        """Look a trait up by snake_case name or by the dataset's hyphenated column."""
        key = name.replace("-", "_")
        for t in self.traits:
            if t.name == key:
                return t
        raise KeyError(f"{self.name} has no trait {name!r}; traits: {', '.join(self.trait_names)}")


def _cat(column: str, codes: dict[str, str], missing: tuple[str, ...] = ()) -> Trait:
    return Trait(column, "categorical", MappingProxyType(codes), frozenset(missing))


def _sec_cat(column: str, codes: dict[str, str], also_missing: tuple[str, ...] = ()) -> Trait:
    """A secondary-dataset trait: an empty field means the trait was not recorded."""
    return _cat(column, codes, ("",) + also_missing)


def _num(column: str, unit: str) -> Trait:
    return Trait(column, "numeric", unit=unit)


# --- UCI Mushroom (1987): 22 categorical traits, "?" = missing stalk-root -------------

_UCI_COLORS = {
    "n": "brown",
    "b": "buff",
    "c": "cinnamon",
    "g": "gray",
    "r": "green",
    "p": "pink",
    "u": "purple",
    "e": "red",
    "w": "white",
    "y": "yellow",
}
_UCI_STALK_COLORS = {
    "n": "brown",
    "b": "buff",
    "c": "cinnamon",
    "g": "gray",
    "o": "orange",
    "p": "pink",
    "e": "red",
    "w": "white",
    "y": "yellow",
}
_UCI_STALK_SURFACE = {"f": "fibrous", "y": "scaly", "k": "silky", "s": "smooth"}

UCI = DatasetCatalogue(
    name="uci",
    citation="Schlimmer, J. (1987). Mushroom. UCI ML Repository. doi:10.24432/C5959T",
    # agaricus-lepiota.names, rule P_1: "odor=NOT(almond.OR.anise.OR.none)" is poisonous.
    poison_markers=MappingProxyType(
        {"odor": frozenset({"foul", "creosote", "fishy", "pungent", "spicy", "musty"})}
    ),
    traits=(
        _cat(
            "cap-shape",
            {
                "b": "bell",
                "c": "conical",
                "x": "convex",
                "f": "flat",
                "k": "knobbed",
                "s": "sunken",
            },
        ),
        _cat("cap-surface", {"f": "fibrous", "g": "grooves", "y": "scaly", "s": "smooth"}),
        _cat("cap-color", _UCI_COLORS),
        _cat("bruises", {"t": "bruises", "f": "no"}),
        _cat(
            "odor",
            {
                "a": "almond",
                "l": "anise",
                "c": "creosote",
                "y": "fishy",
                "f": "foul",
                "m": "musty",
                "n": "none",
                "p": "pungent",
                "s": "spicy",
            },
        ),
        _cat("gill-attachment", {"a": "attached", "d": "descending", "f": "free", "n": "notched"}),
        _cat("gill-spacing", {"c": "close", "w": "crowded", "d": "distant"}),
        _cat("gill-size", {"b": "broad", "n": "narrow"}),
        _cat(
            "gill-color",
            {
                "k": "black",
                "n": "brown",
                "b": "buff",
                "h": "chocolate",
                "g": "gray",
                "r": "green",
                "o": "orange",
                "p": "pink",
                "u": "purple",
                "e": "red",
                "w": "white",
                "y": "yellow",
            },
        ),
        _cat("stalk-shape", {"e": "enlarging", "t": "tapering"}),
        _cat(
            "stalk-root",
            {
                "b": "bulbous",
                "c": "club",
                "u": "cup",
                "e": "equal",
                "z": "rhizomorphs",
                "r": "rooted",
            },
            missing=("?",),
        ),
        _cat("stalk-surface-above-ring", _UCI_STALK_SURFACE),
        _cat("stalk-surface-below-ring", _UCI_STALK_SURFACE),
        _cat("stalk-color-above-ring", _UCI_STALK_COLORS),
        _cat("stalk-color-below-ring", _UCI_STALK_COLORS),
        _cat("veil-type", {"p": "partial", "u": "universal"}),
        _cat("veil-color", {"n": "brown", "o": "orange", "w": "white", "y": "yellow"}),
        _cat("ring-number", {"n": "none", "o": "one", "t": "two"}),
        _cat(
            "ring-type",
            {
                "c": "cobwebby",
                "e": "evanescent",
                "f": "flaring",
                "l": "large",
                "n": "none",
                "p": "pendant",
                "s": "sheathing",
                "z": "zone",
            },
        ),
        _cat(
            "spore-print-color",
            {
                "k": "black",
                "n": "brown",
                "b": "buff",
                "h": "chocolate",
                "r": "green",
                "o": "orange",
                "u": "purple",
                "w": "white",
                "y": "yellow",
            },
        ),
        _cat(
            "population",
            {
                "a": "abundant",
                "c": "clustered",
                "n": "numerous",
                "s": "scattered",
                "v": "several",
                "y": "solitary",
            },
        ),
        _cat(
            "habitat",
            {
                "g": "grasses",
                "l": "leaves",
                "m": "meadows",
                "p": "paths",
                "u": "urban",
                "w": "waste",
                "d": "woods",
            },
        ),
    ),
)

# --- Secondary Mushroom (2021): 3 numeric + 17 categorical, blank = missing ------------

_SEC_COLORS = {
    "n": "brown",
    "b": "buff",
    "g": "gray",
    "r": "green",
    "p": "pink",
    "u": "purple",
    "e": "red",
    "w": "white",
    "y": "yellow",
    "l": "blue",
    "o": "orange",
    "k": "black",
}
_SEC_SURFACE = {
    "i": "fibrous",
    "g": "grooves",
    "y": "scaly",
    "s": "smooth",
    "d": "dry",
    "h": "shiny",
    "l": "leathery",
    "k": "silky",
    "t": "sticky",
    "w": "wrinkled",
    "e": "fleshy",
}
_NONE = {"f": "none"}

SECONDARY = DatasetCatalogue(
    name="secondary",
    citation="Wagner, Heider & Hattab (2021). Secondary Mushroom. UCI ML Repository. "
    "doi:10.24432/C5FP5Q",
    has_species_profiles=True,
    traits=(
        _num("cap-diameter", "cm"),
        _sec_cat(
            "cap-shape",
            {
                "b": "bell",
                "c": "conical",
                "x": "convex",
                "f": "flat",
                "s": "sunken",
                "p": "spherical",
                "o": "others",
            },
        ),
        _sec_cat("cap-surface", _SEC_SURFACE),
        _sec_cat("cap-color", _SEC_COLORS),
        _sec_cat("does-bruise-or-bleed", {"t": "bruises-or-bleeding", "f": "no"}),
        # "?" (unknown) is listed in the code book but never used: unknowns are blank.
        _sec_cat(
            "gill-attachment",
            {
                "a": "adnate",
                "x": "adnexed",
                "d": "decurrent",
                "e": "free",
                "s": "sinuate",
                "p": "pores",
                "f": "none",
            },
            also_missing=("?",),
        ),
        _sec_cat("gill-spacing", {"c": "close", "d": "distant", "f": "none"}),
        _sec_cat("gill-color", _SEC_COLORS | _NONE),
        _num("stem-height", "cm"),
        _num("stem-width", "mm"),
        # "f" is undocumented; it only occurs for stemless species, like none=f elsewhere.
        _sec_cat(
            "stem-root",
            {
                "b": "bulbous",
                "s": "swollen",
                "c": "club",
                "u": "cup",
                "e": "equal",
                "z": "rhizomorphs",
                "r": "rooted",
                "f": "none",
            },
        ),
        _sec_cat("stem-surface", _SEC_SURFACE | _NONE),
        _sec_cat("stem-color", _SEC_COLORS | _NONE),
        _sec_cat("veil-type", {"p": "partial", "u": "universal"}),
        _sec_cat("veil-color", _SEC_COLORS | _NONE),
        _sec_cat("has-ring", {"t": "ring", "f": "none"}),
        _sec_cat(
            "ring-type",
            {
                "c": "cobwebby",
                "e": "evanescent",
                "r": "flaring",
                "g": "grooved",
                "l": "large",
                "p": "pendant",
                "s": "sheathing",
                "z": "zone",
                "y": "scaly",
                "m": "movable",
                "f": "none",
            },
            also_missing=("?",),
        ),
        _sec_cat("spore-print-color", _SEC_COLORS),
        _sec_cat(
            "habitat",
            {
                "g": "grasses",
                "l": "leaves",
                "m": "meadows",
                "p": "paths",
                "h": "heaths",
                "u": "urban",
                "w": "waste",
                "d": "woods",
            },
        ),
        _sec_cat("season", {"s": "spring", "u": "summer", "a": "autumn", "w": "winter"}),
    ),
)


def with_species(frame):
    """The rows of a documented species: a labelled answer joined from feedback names none
    (its species id is negative, ``mushroom.data.feedback``)."""
    return frame[frame[SPECIES_ID] >= 0]


def measurable(numbers):
    """Whether each number (an array, a Series or one number) may be a measurement: finite
    and >= 0. NaN (not measured) is not: callers that accept it mask it first."""
    return np.isfinite(numbers) & (np.asarray(numbers) >= 0)


def value_indices(frame, traits) -> np.ndarray:
    """Each categorical trait's readable values in ``frame`` as positions in its
    ``allowed_values`` (rows × traits); a value not given (None, NaN) is
    ``len(allowed_values)``: unknown."""
    columns = [
        frame[t.name]
        .map({v: i for i, v in enumerate(t.allowed_values)})
        .fillna(len(t.allowed_values))
        .to_numpy()
        for t in traits
    ]
    return np.column_stack(columns).astype(int) if columns else np.zeros((len(frame), 0), int)


CATALOGUES = MappingProxyType({c.name: c for c in (UCI, SECONDARY)})


def get_catalogue(dataset: str) -> DatasetCatalogue:
    try:
        return CATALOGUES[dataset]
    except KeyError:
        raise ValueError(
            f"unknown dataset {dataset!r}; expected one of: {', '.join(CATALOGUES)}"
        ) from None
