"""The promoted model as the service and the batch CLI use it: validated mushrooms in,
verdicts out. Both go through this class, so both give the same answers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import joblib
import numpy as np
from pydantic import BaseModel

from mushroom.api_schema import Answer, mushroom_model
from mushroom.catalogue import MISSING, get_catalogue
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
        self.categorical_names = [t.name for t in self.scorer.categorical]
        self.numeric_names = [t.name for t in self.scorer.numeric]
        self.trait_names = [t.name for t in self.catalogue.traits]
        self.trait_kinds = [(t.name, not t.is_numeric) for t in self.catalogue.traits]
        self.version = f"{NAME}:{self.card['version']}"
        self.edible_below = self.card["policy"]["edible_below"]
        self.poisonous_from = self.card["policy"]["poisonous_from"]

    def verdict(self, p: float) -> str:
        if p < self.edible_below:
            return "edible"
        return "poisonous" if p >= self.poisonous_from else "uncertain"

    def classify(self, mushrooms: list[BaseModel]) -> tuple[list[Answer], list[tuple]]:
        """Answers, and each mushroom's traits in catalogue order as the prepared data
        spells them (readable names, ``missing``; measurements, None when not given)."""
        records = [m.__dict__ for m in mushrooms]  # validated field values, no copy
        n = len(records)
        index = np.empty((n, len(self.scorer.categorical)), dtype=int)
        for column, name in enumerate(self.categorical_names):
            lookup = self.value_index[name]
            index[:, column] = [lookup[r[name] or MISSING] for r in records]
        numbers = np.array(
            [[r[name] for name in self.numeric_names] for r in records], dtype=float
        ).reshape(n, len(self.numeric_names))  # None -> NaN
        probabilities = self.scorer.predict_proba(index, numbers).tolist()
        ids = os.urandom(16 * n).hex()
        answers, values = [], []
        for i, (record, p) in enumerate(zip(records, probabilities, strict=True)):
            row = tuple(
                record[name] or MISSING if categorical else record[name]
                for name, categorical in self.trait_kinds
            )
            answers.append(
                Answer.model_construct(  # built right here: skip re-validation
                    verdict=self.verdict(p),
                    probability_poisonous=p,
                    model_version=self.version,
                    request_id=ids[32 * i : 32 * (i + 1)],
                    missing_traits=[f for f in self.features if record[f] in (None, MISSING)],
                )
            )
            values.append(row)
        return answers, values

    def log_rows(self, answers: list[Answer], values: list[tuple], logged_at: str) -> list[tuple]:
        """The rows ``PredictionLog.append(self.trait_names, rows)`` takes for these answers."""
        dataset = self.catalogue.name
        return [
            (
                a.request_id,
                logged_at,
                a.model_version,
                dataset,
                a.probability_poisonous,
                a.verdict,
                *v,
            )
            for a, v in zip(answers, values, strict=True)
        ]
