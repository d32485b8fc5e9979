"""The model card: what promotion records about a model beside it in the BentoML store, and
what ``GET /model``, the API page and ``mushroom predict`` say about the model they serve.
Its fields are declared here, once; a card missing one, or holding one this code does not
know, is refused with their names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mushroom.core.atomic import read_json, write_json
from mushroom.lifecycle.store_names import CARD_FILE, NAME

INTERNAL = frozenset({"mlflow_run_id", "inputs_sha256"})
"""Promotion's bookkeeping, not shown by ``GET /model``."""


class InvalidCard(ValueError):
    pass


class ModelCard(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="the MLflow registered model and BentoML store entry")
    version: str = Field(description="the MLflow registry version")
    mlflow_run_id: str
    inputs_sha256: str = Field(description="prepared data, model, policy and params, hashed")
    dataset: str
    split: str = Field(description="how its test split was held out: random or species")
    features: list[str]
    git_commit: str
    model: str
    encoder: str
    trained_at: str | None
    training_seconds: float | None
    params: dict[str, Any] = Field(description="params.yaml as it was trained with")
    metrics: dict[str, Any] = Field(description="evaluate's figures: test split and cv")
    policy: dict[str, Any] = Field(description="the verdict policy: calibration, thresholds")
    held_out: dict[str, Any] = Field(description="how the policy did on held-out folds")
    familiarity: dict[str, Any] = Field(description="how the familiarity detector was fitted")

    @property
    def full_version(self) -> str:
        return f"{NAME}:{self.version}"

    def shown(self) -> dict[str, Any]:
        return self.model_dump(exclude=INTERNAL)

    def write(self, folder: Path) -> None:
        write_json(folder / CARD_FILE, self.model_dump())

    @classmethod
    def read(cls, folder: str | Path) -> ModelCard:
        path = Path(folder) / CARD_FILE
        try:
            return cls.model_validate(read_json(path))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'card'}: {e['msg']}" for e in exc.errors()
            )
            raise InvalidCard(f"{path}: {problems}") from None
