"""The request and answer schema of the service, generated from the feature catalogue.

A mushroom is a JSON object of traits. Field names are snake_case (``cap_shape``) or the
dataset's hyphenated form (``cap-shape``); a categorical value is its readable name
(``convex``) or code letter (``x``), any case; measurements are numbers >= 0 in the
catalogue's unit. A trait left out (or null, or ``"missing"``) is missing. Validation
turns every value into its readable name, so the scorer sees one spelling only.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from mushroom.catalogue import MISSING, DatasetCatalogue, Trait

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
    return ", ".join(pairs + [MISSING])


def _lookup(trait: Trait) -> dict[str, str]:
    """Lower-cased readable name or code -> readable name."""
    table = {name.lower(): name for name in trait.allowed_values}
    table |= {code.lower(): name for code, name in trait.codes.items()}
    table |= {code.lower(): MISSING for code in trait.missing_codes if code}  # UCI "?"
    return table


def mushroom_model(catalogue: DatasetCatalogue) -> type[BaseModel]:
    by_key = {t.name: t for t in catalogue.traits} | {t.column: t for t in catalogue.traits}
    lookups = {t.name: _lookup(t) for t in catalogue.categorical}
    fields: dict[str, Any] = {}
    for trait in catalogue.traits:
        if trait.is_numeric:
            fields[trait.name] = (
                float | None,
                Field(
                    default=None,
                    ge=0,
                    allow_inf_nan=False,
                    json_schema_extra={"example": 5.0},
                    description=f"{trait.column}, in {trait.unit}; leave out if not measured",
                ),
            )
        else:
            fields[trait.name] = (
                str | None,
                Field(
                    default=None,
                    description=f"{trait.column}: {_allowed_text(trait)}",
                    json_schema_extra={
                        "example": next(iter(trait.codes.values())),
                        "x-allowed-values": list(trait.allowed_values),
                        "x-codes": dict(trait.codes),
                    },
                ),
            )

    def normalise(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data  # pydantic reports the wrong type
        clean: dict[str, Any] = {}
        for key, value in data.items():
            trait = by_key.get(key)
            if trait is None:
                clean[key] = value  # extra="forbid" names the unknown field
                continue
            if trait.name in clean:
                raise ValueError(f"{trait.name}: given twice (as {trait.name} and {trait.column})")
            if value is not None and not trait.is_numeric:
                if not isinstance(value, str):
                    raise ValueError(f"{key}: expected a string, got {type(value).__name__}")
                name = lookups[trait.name].get(value.strip().lower())
                if name is None:
                    raise ValueError(
                        f"{key}: unknown value {value!r}; allowed: {_allowed_text(trait)}"
                    )
                value = None if name == MISSING else name
            clean[trait.name] = value
        return clean

    return create_model(
        f"{catalogue.name.capitalize()}Mushroom",
        __config__=ConfigDict(
            extra="forbid", json_schema_extra={"example": EXAMPLES[catalogue.name]}
        ),
        __validators__={"normalise": model_validator(mode="before")(normalise)},
        **fields,
    )


class Answer(BaseModel):
    verdict: Literal["edible", "poisonous", "uncertain"] = Field(
        description="'uncertain' means do not eat: the model is not sure enough"
    )
    probability_poisonous: float
    model_version: str
    request_id: str = Field(description="identifies this prediction, e.g. for feedback")
    missing_traits: list[str] = Field(description="traits the model uses that were not given")
