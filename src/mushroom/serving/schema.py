"""The request and answer schema of the service, generated from the feature catalogue.

A mushroom is a JSON object of traits. Field names are snake_case (``cap_shape``) or the
dataset's hyphenated form (``cap-shape``); a categorical value is its readable name
(``convex``) or code letter (``x``), any case; a measurement is a JSON number in the
catalogue's unit within the served model's plausible range (``measurement_ranges``). A
trait left out, null, or given as any spelling of "I don't know" (``"missing"``,
``"unknown"``, ``"?"``, ``""``; ``catalogue.NOT_KNOWN``) is *unknown*: an answer must hold
whatever its value. The datasets' own "not recorded" cannot be given: it is a fact about a
field guide, not about a mushroom. A validated categorical value is one of
``spellings(trait)`` or a readable name; the classifier maps it to the readable name, or to
unknown.
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

from mushroom.core.catalogue import NOT_KNOWN, DatasetCatalogue, Trait, get_catalogue
from mushroom.core.text import MAX_SHOWN_ERRORS
from mushroom.lifecycle.model_card import INTERNAL, ModelCard
from mushroom.lifecycle.store_names import POLICY_FILE
from mushroom.model.bundle import read_policy

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


NOT_KNOWN_SHOWN = ("missing", "unknown", "?")
"""The spellings of "I don't know" the OpenAPI document lists (every one of NOT_KNOWN works)."""
NOT_KNOWN_HINT = "or leave it out (or null, 'missing') if you do not know"
NOT_KNOWN_TEXT = (
    "leave it out (or null, 'missing', 'unknown', '?') if you do not know: the answer then "
    "holds whatever it is"
)
NOT_RECORDED_TEXT = (
    "The datasets' own 'not recorded' (a field guide that did not describe the trait) is "
    "not something a mushroom has: it is read as unknown too"
)


def _allowed_text(trait: Trait) -> str:
    return ", ".join(f"{name} ({code})" for code, name in trait.codes.items())


def spellings(trait: Trait) -> dict[str, str | None]:
    """Each common spelling of a categorical trait's values -> its readable name: the name,
    its code letter in lower and upper case; and each spelling of "I don't know", in lower
    and upper case -> None (unknown)."""
    table: dict[str, str | None] = {name: name for name in trait.describable_values}
    for code, name in trait.codes.items():
        table |= {code.lower(): name, code.upper(): name}
    return table | {s: None for s in NOT_KNOWN} | {s.upper(): None for s in NOT_KNOWN}


def _value_type(trait: Trait) -> Any:
    """A categorical trait's value. The common spellings validate in pydantic-core without
    calling Python (a request of 1,000 mushrooms holds 22,000 values); any other case or
    stray whitespace goes to ``Trait.read_value``. A value stays as spelled, so readers map
    it through ``spellings``; the fallback returns the readable name, or None (not known)."""
    values = trait.describable_values
    allowed = ", ".join(repr(name) for name in values[:-1]) + f" or {values[-1]!r}"
    schema = core_schema.union_schema(
        [
            core_schema.literal_schema(list(spellings(trait))),
            core_schema.no_info_after_validator_function(
                trait.read_value,  # its ValueError is reported as the union's message below
                core_schema.str_schema(),
            ),
        ],
        mode="left_to_right",
        custom_error_type="unknown_value",
        custom_error_message=f"Input should be {allowed}, or a code letter, in any case; "
        + NOT_KNOWN_HINT,
    )
    json_schema = {"type": "string", "enum": [*values, *NOT_KNOWN_SHOWN]}
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
    policy = read_policy(Path(model_dir) / POLICY_FILE)
    return mushroom_model(get_catalogue(policy["dataset"]), measurement_ranges(policy))


def _measurement_type(trait: Trait, low: float, high: float) -> Any:
    """A measurement: a number (not a boolean, not a numeric string) within ``low``..``high``,
    or a spelling of "I don't know" (``"missing"``), which is unknown (None) like a
    left-out trait."""
    unit = trait.unit
    expected = f"Input should be a number in {unit}, or 'missing' if not measured"

    def measurement(value: Any) -> float | None:
        if isinstance(value, str) and value.strip().lower() in NOT_KNOWN:
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
            {"type": "string", "enum": list(NOT_KNOWN_SHOWN)},
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
                    f"{high:g}; {NOT_KNOWN_TEXT}",
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
                    f"are accepted too; {NOT_KNOWN_TEXT}. {NOT_RECORDED_TEXT}",
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
class CheckNext(TypedDict):
    """An unknown trait worth finding out."""

    trait: str
    could_make: Annotated[
        list[str],
        Field(description="the verdicts, other than this answer's, that knowing it alone gives"),
    ]
    values: Annotated[
        dict[str, list[str]],
        Field(
            description="per verdict in could_make, the values that give it (a measurement: "
            "the points of its training range it was checked at)"
        ),
    ]


# A plain dict, not a model: building 1,000 models per request cost more than scoring them.
class Answer(TypedDict):
    """One mushroom's answer."""

    verdict: Annotated[
        Literal["edible", "poisonous", "uncertain"],
        Field(
            description="'edible': like known mushrooms, no known poisonous one within the "
            "lookalike margin, and calibrated P(poisonous) below the edible threshold "
            "whatever its unknown traits are: still never eat a wild mushroom on a model's "
            "word. 'poisonous': even its most edible familiar completion is scored "
            "poisonous. 'uncertain' means do not eat: unlike the mushrooms the model "
            "learned from, an unknown trait could make it poisonous, a poisonous lookalike, "
            "or the evidence is not strong enough either way"
        ),
    ]
    probability_poisonous: Annotated[
        float,
        Field(
            description="calibrated P(poisonous) of the description as given, unknown traits "
            "scored as the data's 'not recorded' (see probability_range)"
        ),
    ]
    probability_range: Annotated[
        list[float],
        Field(
            description="[lowest, highest] calibrated P(poisonous) over the values its unknown "
            "(and unseen or undocumented) traits may take: the lowest over those of familiar "
            "completions, the highest over every value; exact for logistic regression and "
            "naive Bayes, bounds for tree ensembles",
            min_length=2,
            max_length=2,
        ),
    ]
    edible_possible: Annotated[
        bool,
        Field(
            description="false when no value of the unknown traits could make it edible (a "
            "true is not a promise: it is not ruled out by what is known)"
        ),
    ]
    check_next: Annotated[
        list[CheckNext],
        Field(
            description="the unknown traits, most worth finding out first: those whose value "
            "alone could change the verdict (by the share of training mushrooms with such a "
            "value), then by how far they could move P(poisonous)"
        ),
    ]
    reasons: Annotated[
        list[str],
        Field(
            description="Why, most important first. 'unfamiliar': unlike the training "
            "mushrooms; 'unseen:<trait>=<value>': a value no training mushroom had; "
            "'unknown:<trait>': a trait not given whose value could change it most; "
            "'undocumented:<trait>': a value no species it fits documents, so the answer "
            "holds whatever it is; 'poisonous_species:<name>': a poisonous species the "
            "given traits fit; 'lookalike:<which>': a poisonous species within the lookalike "
            "margin, or (UCI) how the nearest poisonous training mushroom differs "
            "('odor=foul': it has a foul odor; 'identical'); 'borderline': between the "
            "edible and poisonous thresholds; 'no_edible_region': the model was not tested "
            "on enough poisonous mushrooms to answer edible at all; 'species:<name>': a "
            "species it fits; '<trait>=<value>': a given trait that pushed the answer most "
            "towards its verdict. The same description always gets the same reasons.",
            examples=[["odor=foul", "spore_print_color=chocolate", "gill_size=narrow"]],
        ),
    ]
    model_version: str
    request_id: Annotated[str, Field(description="identifies this prediction, e.g. for feedback")]
    unknown_traits: Annotated[
        list[str],
        Field(
            description="unknown traits: those not given (left out, null, or a spelling of "
            "'I don't know' such as 'missing'); the verdict holds whatever their values"
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
MAX_HEAD_BYTES, MAX_HEADER_FIELDS = 64 * 1024, 100
"""A request's head (request line and header fields) is refused (431) above these."""
ERRORS = {
    400: "The body is not JSON, repeats a key, or a field is missing, unknown, of the wrong "
    "type or out of range: each named",
    413: "The body is larger than the limit (counted as it streams in)",
    415: "The content type is not application/json, or the body is compressed "
    "(Content-Encoding): send plain JSON",
    431: f"The request line and header fields are larger than {MAX_HEAD_BYTES // 1024} KiB, or "
    f"there are more than {MAX_HEADER_FIELDS} header fields; the connection is closed",
    500: "An unexpected server error; the server log has the details",
    503: "The service cannot answer now (overloaded, or its prediction log is unavailable): "
    "retry later",
    504: "BentoML gave up waiting after the service's timeout (traffic.timeout, 5 s) and "
    "cancelled the request; answers already being judged may still be logged: retry later",
}
ROUTE_ERRORS = {
    "/feedback": {
        404: "No prediction has this request_id",
        401: "A feedback token is configured (MUSHROOM_FEEDBACK_TOKEN) and the request did "
        "not carry it as 'Authorization: Bearer <token>'",
    },
}


def served_model_schema() -> dict:
    """``GET /model``: the model card's shown fields, and how the model came to serve."""
    card = ModelCard.model_json_schema()["properties"]
    properties = {name: card[name] for name in card if name not in INTERNAL} | {
        "bento_model": {"type": "string", "description": "the BentoML store entry served"},
        "chosen_by": {"type": "string", "enum": ["MUSHROOM_MODEL", "bento", "champion"]},
        "champion_history": {
            "type": "array",
            "items": {"type": "object"},
            "description": "every move of the champion alias, oldest first",
        },
    }
    return {
        "type": "object",
        "description": "The served model's card, and how it came to serve",
        "properties": properties,
        "required": list(properties),
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
                    "content": {"application/json": {"schema": served_model_schema()}},
                }
            },
        }
    }
    return spec
