"""The promoted model as the service and the batch CLI use it: validated mushrooms in,
verdicts out. Both go through this class, so both give the same answers."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import joblib
import numpy as np
from pydantic import BaseModel

from mushroom.api_schema import Answer, mushroom_model
from mushroom.catalogue import get_catalogue
from mushroom.modelstore import CARD_FILE, MODEL_FILE, NAME
from mushroom.scoring import FastScorer


def read_card(model_dir: str | Path) -> dict:
    return json.loads((Path(model_dir) / CARD_FILE).read_text())


class Classifier:
    def __init__(self, model_dir: str | Path):
        self.card = read_card(model_dir)
        self.catalogue = get_catalogue(self.card["dataset"])
        self.Mushroom: type[BaseModel] = mushroom_model(self.catalogue)
        self.features = self.card["features"]
        self.scorer = FastScorer(
            joblib.load(Path(model_dir) / MODEL_FILE), self.features, self.catalogue
        )
        self.value_index = {
            name: {v: i for i, v in enumerate(values)}
            for name, values in self.scorer.values.items()
        }
        self.version = f"{NAME}:{self.card['version']}"
        self.edible_below = self.card["policy"]["edible_below"]
        self.poisonous_from = self.card["policy"]["poisonous_from"]

    def verdict(self, p: float) -> str:
        if p < self.edible_below:
            return "edible"
        return "poisonous" if p >= self.poisonous_from else "uncertain"

    def classify(self, mushrooms: list[BaseModel]) -> tuple[list[Answer], list[dict]]:
        """Answers, and each mushroom's traits as readable names (None = missing)."""
        records = [m.model_dump() for m in mushrooms]
        index = np.array(
            [
                [self.value_index[t.name][r[t.name] or "missing"] for t in self.scorer.categorical]
                for r in records
            ],
            dtype=int,
        ).reshape(len(records), len(self.scorer.categorical))
        numbers = np.array(
            [
                [np.nan if r[t.name] is None else r[t.name] for t in self.scorer.numeric]
                for r in records
            ],
            dtype=float,
        ).reshape(len(records), len(self.scorer.numeric))
        probabilities = self.scorer.predict_proba(index, numbers).tolist()
        answers = [
            Answer(
                verdict=self.verdict(p),
                probability_poisonous=p,
                model_version=self.version,
                request_id=uuid.uuid4().hex,
                missing_traits=[f for f in self.features if record[f] is None],
            )
            for record, p in zip(records, probabilities, strict=True)
        ]
        return answers, records
