"""The request and answer schema of the service, generated from the feature catalogue.

A mushroom is a JSON object of traits. Field names are snake_case (``cap_shape``) or the
dataset's hyphenated form (``cap-shape``); a categorical value is its readable name
(``convex``) or code letter (``x``), any case; measurements are numbers >= 0 in the
catalogue's unit. A trait left out, null, or ``"missing"`` is missing. Validation turns
every value into its readable name, so the scorer sees one spelling only.
"""

from __future__ import annotations

import enum
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, create_model

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


def _value_enum(trait: Trait) -> type[enum.Enum]:
    """The trait's readable values as an Enum. Exact readable names validate in
    pydantic-core without Python; other spellings (code letters, any case, the dataset's
    own missing code such as UCI "?") go through ``_missing_``."""
    table = {name.lower(): name for name in trait.allowed_values}
    table |= {code.lower(): name for code, name in trait.codes.items()}
    table |= {code.lower(): MISSING for code in trait.missing_codes if code}
    values = enum.Enum(
        trait.name.title().replace("_", ""), {name: name for name in trait.allowed_values}, type=str
    )

    def _missing_(cls, value):
        if isinstance(value, str):
            return cls._value2member_map_.get(table.get(value.strip().lower()))
        return None

    values._missing_ = classmethod(_missing_)
    return values


def mushroom_model(catalogue: DatasetCatalogue) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for trait in catalogue.traits:
        names = AliasChoices(trait.name, trait.column)
        if trait.is_numeric:
            fields[trait.name] = (
                float | None,
                Field(
                    default=None,
                    ge=0,
                    allow_inf_nan=False,
                    validation_alias=names,
                    description=f"{trait.column}, in {trait.unit}; leave out if not measured",
                    json_schema_extra={"example": 5.0},
                ),
            )
        else:
            fields[trait.name] = (
                _value_enum(trait) | None,
                Field(
                    default=None,
                    validation_alias=names,
                    description=f"{trait.column}: {_allowed_text(trait)}; codes and any case "
                    "are accepted too",
                    json_schema_extra={
                        "example": next(iter(trait.codes.values())),
                        "x-codes": dict(trait.codes),
                    },
                ),
            )
    return create_model(
        f"{catalogue.name.capitalize()}Mushroom",
        __config__=ConfigDict(
            extra="forbid",
            use_enum_values=True,
            json_schema_extra={"example": EXAMPLES[catalogue.name]},
        ),
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
