"""The request and answer schema of the service, generated from the feature catalogue.

A mushroom is a JSON object of traits. Field names are snake_case (``cap_shape``) or the
dataset's hyphenated form (``cap-shape``); a categorical value is its readable name
(``convex``) or code letter (``x``), any case; a measurement is a JSON number in the
catalogue's unit within the served model's plausible range (``measurement_ranges``). A
trait left out or null is *unknown*: an answer must hold whatever its value. For a
categorical trait ``"missing"`` (UCI: ``?``) is a value, the datasets' "not recorded"; for
a measurement it means not measured, unknown, since the data records every measurement. A
validated categorical value is one of ``spellings(trait)``; the classifier maps it to the
readable name.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    ConfigDict,
    Field,
    GetPydanticSchema,
    TypeAdapter,
)
from pydantic_core import PydanticCustomError, core_schema
from typing_extensions import TypedDict

from mushroom.catalogue import MISSING, DatasetCatalogue, Trait, get_catalogue
from mushroom.fsutil import read_json
from mushroom.modelstore import POLICY_FILE
from mushroom.text import MAX_SHOWN_ERRORS

PLAUSIBLE_FACTOR = 2
"""A measurement may be up to this many times the largest the served model's data holds.
Beyond the training species' ranges (and the detector's tolerance) a description is
unfamiliar, so uncertain, anyway; a value this far out is a unit or typing error."""

EXAMPLES = {
    "uci": {
        "cap_shape": "convex",
        "cap_surface": "smooth",
        "cap_color": "brown",
        "bruises": "bruises",
        "odor": "none",
        "gill_size": "broad",
        "habitat": "woods",
    },
    "secondary": {
        "cap_diameter": 6.2,
        "cap_shape": "convex",
        "cap_color": "brown",
        "stem_height": 5.1,
        "stem_width": 9.4,
        "habitat": "woods",
        "season": "autumn",
    },
}


def _allowed_text(trait: Trait) -> str:
    pairs = [f"{name} ({code})" for code, name in trait.codes.items()]
    return ", ".join(pairs + [f"{MISSING} (not recorded)"])


def spellings(trait: Trait) -> dict[str, str]:
    """Each common spelling of a categorical trait's values -> its readable name: the name,
    its code letter in lower and upper case, and the dataset's own missing codes (UCI "?")."""
    table = {name: name for name in trait.allowed_values}
    for code, name in trait.codes.items():
        table |= {code.lower(): name, code.upper(): name}
    return table | {code: MISSING for code in trait.missing_codes if code}


def _value_type(trait: Trait) -> Any:
    """A categorical trait's value. The common spellings validate in pydantic-core without
    calling Python (a request of 1,000 mushrooms holds 22,000 values); any other case or
    stray whitespace goes to ``readable_name``. A value stays as spelled, so readers map it
    through ``spellings``; the readable name is what the fallback returns."""
    common = spellings(trait)
    by_lower = {spelling.lower(): name for spelling, name in common.items()}

    def readable_name(value: str) -> str:
        name = by_lower.get(value.strip().lower())
        if name is None:
            raise ValueError(value)  # reported as the union's message below
        return name

    allowed = ", ".join(repr(name) for name in trait.allowed_values[:-1])
    schema = core_schema.union_schema(
        [
            core_schema.literal_schema(list(common)),
            core_schema.no_info_after_validator_function(readable_name, core_schema.str_schema()),
        ],
        mode="left_to_right",
        custom_error_type="unknown_value",
        custom_error_message=f"Input should be {allowed} or {trait.allowed_values[-1]!r}, "
        "or a code letter, in any case",
    )
    json_schema = {"type": "string", "enum": list(trait.allowed_values)}
    return Annotated[
        str, GetPydanticSchema(lambda _type, _handler: schema, lambda _core, _handler: json_schema)
    ]


def measurement_ranges(policy: dict) -> dict[str, tuple[float, float]]:
    """Each measurement's plausible range for the model whose ``policy.json`` this is: from
    0 to ``PLAUSIBLE_FACTOR`` times the largest value its training data holds or a training
    species documents (with the familiarity detector's tolerance)."""
    species = policy["familiarity"].get("species", [])
    tolerance = policy["familiarity"].get("numeric_tolerance", 0.0)
    ranges = {}
    for name, seen in policy["training"]["measurements"].items():
        documented = [s["traits"][name][1] * (1 + tolerance) for s in species]
        largest = max([seen["max"], *documented])
        ranges[name] = (0.0, float(f"{PLAUSIBLE_FACTOR * largest:.3g}"))
    return ranges


def served_mushroom(model_dir: str | Path) -> type:
    """The mushroom schema of the promoted model in ``model_dir``: its dataset's traits, its
    measurements' plausible ranges. The service and ``mushroom predict`` both use it."""
    policy = read_json(Path(model_dir) / POLICY_FILE)
    return mushroom_model(get_catalogue(policy["dataset"]), measurement_ranges(policy))


def _measurement_type(trait: Trait, low: float, high: float) -> Any:
    """A measurement: a number (not a boolean, not a numeric string) within ``low``..``high``,
    or ``"missing"`` in any case, which is unknown (None) like a left-out trait."""
    unit = trait.unit
    expected = f"Input should be a number in {unit} or 'missing'"

    def measurement(value: Any) -> float | None:
        if isinstance(value, str) and value.strip().lower() == MISSING:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise PydanticCustomError("measurement_type", expected)
        try:
            number = float(value)
        except OverflowError:  # an integer of hundreds of digits
            number = math.inf
        if not (math.isfinite(number) and low <= number <= high):
            raise PydanticCustomError(
                "measurement_range",
                f"Input should be from {low:g} to {high:g} {unit} (up to {PLAUSIBLE_FACTOR}x "
                f"the largest in the model's data: is the unit {unit}?)",
            )
        return number

    schema = core_schema.no_info_plain_validator_function(measurement)
    json_schema = {
        "anyOf": [
            {"type": "number", "minimum": low, "maximum": high},
            {"type": "string", "enum": [MISSING]},
        ]
    }
    return Annotated[
        float,
        GetPydanticSchema(lambda _type, _handler: schema, lambda _core, _handler: json_schema),
    ]


def mushroom_model(catalogue: DatasetCatalogue, ranges: dict[str, tuple[float, float]]) -> type:
    """A mushroom of ``catalogue``'s dataset as a TypedDict: validation yields a plain dict
    with every trait (None when left out), ~15 % cheaper than a model per mushroom. A
    measurement is bounded by its ``ranges`` entry (one the model does not use: finite and
    >= 0)."""
    fields: dict[str, Any] = {}
    for trait in catalogue.traits:
        names = AliasChoices(trait.name, trait.column)
        if trait.is_numeric:
            low, high = ranges.get(trait.name, (0.0, math.inf))
            fields[trait.name] = Annotated[
                _measurement_type(trait, low, high) | None,
                Field(
                    default=None,
                    validation_alias=names,
                    description=f"{trait.column}, a number in {trait.unit} from {low:g} to "
                    f"{high:g}; leave out, null or 'missing' if not measured (unknown)",
                    json_schema_extra={"example": 5.0},
                ),
            ]
        else:
            fields[trait.name] = Annotated[
                _value_type(trait) | None,
                Field(
                    default=None,
                    validation_alias=names,
                    description=f"{trait.column}: {_allowed_text(trait)}; codes and any case "
                    "are accepted too; leave out (or null) if unknown",
                    json_schema_extra={
                        "example": next(iter(trait.codes.values())),
                        "x-codes": dict(trait.codes),
                    },
                ),
            ]
    mushroom = TypedDict(f"{catalogue.name.capitalize()}Mushroom", fields)
    mushroom.__pydantic_config__ = ConfigDict(
        extra="forbid", json_schema_extra={"example": EXAMPLES[catalogue.name]}
    )
    return mushroom


# A plain dict, not a model: building 1,000 models per request cost more than scoring them.
class Answer(TypedDict):
    """One mushroom's answer."""

    verdict: Annotated[
        Literal["edible", "poisonous", "uncertain"],
        Field(
            description="'uncertain' means do not eat: the description is unlike the "
            "mushrooms the model learned from, an unknown trait could make it poisonous, "
            "or the evidence is not strong enough either way"
        ),
    ]
    probability_poisonous: Annotated[
        float,
        Field(description="calibrated P(poisonous), unknown traits scored as not recorded"),
    ]
    reasons: Annotated[
        list[str],
        Field(
            description="Why, most important first. 'unfamiliar': unlike the training "
            "mushrooms; 'unknown:<trait>': a trait not given whose value could change it most; "
            "'poisonous_species:<name>': a poisonous species the given traits fit; "
            "'borderline': between the edible and poisonous thresholds; "
            "'species:<name>': a species it fits; '<trait>=<value>': a given trait that "
            "pushed the answer most towards its verdict. The same description always "
            "gets the same reasons.",
            examples=[["odor=foul", "spore_print_color=chocolate", "gill_size=narrow"]],
        ),
    ]
    model_version: str
    request_id: Annotated[str, Field(description="identifies this prediction, e.g. for feedback")]
    unknown_traits: Annotated[
        list[str],
        Field(
            description="unknown traits: those the model uses that were not given (left out "
            "or null); the verdict holds whatever their values ('missing' is a value, 'not "
            "recorded', and is not listed here)"
        ),
    ]


ANSWERS = TypeAdapter(list[Answer])


ERROR_SCHEMA = {
    "title": "Error",
    "type": "object",
    "properties": {
        "error": {
            "type": "string",
            "description": "What was wrong, in one line, naming the field, header or value; "
            f"of many invalid values, the first {MAX_SHOWN_ERRORS} and how many more",
        }
    },
    "required": ["error"],
    "additionalProperties": False,
}
ERRORS = {
    400: "The body is not JSON, repeats a key, or a field is missing, unknown, of the wrong "
    "type or out of range: each named",
    413: "The body is larger than the limit (counted as it streams in)",
    415: "The content type is not application/json, or the body is compressed "
    "(Content-Encoding): send plain JSON",
    500: "An unexpected server error; the server log has the details",
    503: "The service cannot answer now (overloaded, or its prediction log is unavailable): "
    "retry later",
}
ROUTE_ERRORS = {
    "/feedback": {
        404: "No prediction has this request_id",
        409: "This prediction is already labelled with the other class: a label is never rewritten",
    },
}
MODEL_CARD = {
    "type": "object",
    "description": "The served model's card: name, version, dataset, split, model, encoder, "
    "params, metrics (test, cv), held_out, trained_at, training_seconds, git_commit, the "
    "verdict policy, the familiarity detector, features, and bento_model (the store tag)",
    "properties": {"version": {"type": "string"}, "dataset": {"type": "string"}},
    "required": ["version", "dataset"],
}
_REPLACED_SCHEMAS = ("InvalidArgument", "NotFound", "InternalServerError")
"""BentoML's error schemas, with a `detail` field its answers do not have."""


def document_http(spec: dict) -> dict:
    """BentoML's OpenAPI document completed with what the service does: every API route
    needs a body and answers each error as ``{"error": "..."}`` with the statuses it can
    give; ``GET /model`` is listed."""
    schemas = spec["components"]["schemas"]
    for name in _REPLACED_SCHEMAS:
        schemas.pop(name, None)
    schemas["Error"] = ERROR_SCHEMA
    error_body = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for route, item in spec["paths"].items():
        operation = item.get("post", {})
        if "x-bentoml-name" not in operation:
            continue
        operation["requestBody"]["required"] = True
        answers = {str(status): answer for status, answer in operation["responses"].items()}
        errors = ERRORS | ROUTE_ERRORS.get(route, {})
        operation["responses"] = {"200": answers["200"]} | {
            str(status): {"description": text, "content": error_body}
            for status, text in sorted(errors.items())
        }
    spec["paths"]["/model"] = {
        "get": {
            "tags": ["Service APIs"],
            "description": "The served model: version, data, metrics and verdict policy",
            "operationId": "model",
            "responses": {
                "200": {
                    "description": "The model card",
                    "content": {"application/json": {"schema": MODEL_CARD}},
                }
            },
        }
    }
    return spec
