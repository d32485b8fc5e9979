"""BentoML service: the promoted champion answers ``POST /classify``.

    bentoml serve mushroom.service:MushroomClassifier --host 127.0.0.1 --port 3000

The served model decides the schema: which traits exist and their allowed values come
from the catalogue of the dataset it was trained on (read from its model card at import,
so the OpenAPI document lists them). ``MUSHROOM_MODEL`` picks another store tag.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Annotated

import bentoml
import joblib
import numpy as np
from pydantic import Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mushroom.api_schema import Answer, mushroom_model
from mushroom.catalogue import get_catalogue
from mushroom.httpguard import RequestGuard
from mushroom.predlog import Prediction, PredictionLog
from mushroom.promote import CARD_FILE, MODEL_FILE, NAME
from mushroom.scoring import FastScorer

MODEL_TAG = os.environ.get("MUSHROOM_MODEL", f"{NAME}:latest")
CARD = json.loads(Path(bentoml.models.get(MODEL_TAG).path_of(CARD_FILE)).read_text())
CATALOGUE = get_catalogue(CARD["dataset"])
MAX_MUSHROOMS = int(CARD["params"]["serve"]["max_mushrooms"])
Mushroom = mushroom_model(CATALOGUE)


def model_info(request: Request) -> JSONResponse:
    keys = (
        "name",
        "version",
        "dataset",
        "split",
        "model",
        "encoder",
        "params",
        "test_metrics",
        "trained_at",
        "training_seconds",
        "git_commit",
        "policy",
        "features",
    )
    return JSONResponse({key: CARD[key] for key in keys} | {"bento_model": MODEL_TAG})


info_app = Starlette(routes=[Route("/", model_info, methods=["GET"])])


@bentoml.asgi_app(info_app, path="/model")
@bentoml.service(
    name=NAME,
    traffic={"timeout": 10},  # see README "Serving": shorter keeps GC pauses short
    http={"host": "127.0.0.1"},
)
class MushroomClassifier:
    model = bentoml.models.BentoModel(MODEL_TAG)

    def __init__(self) -> None:
        card = json.loads(Path(self.model.path_of(CARD_FILE)).read_text())
        pipeline = joblib.load(self.model.path_of(MODEL_FILE))
        self.features = card["features"]
        self.scorer = FastScorer(pipeline, self.features, CATALOGUE)
        self.index = {
            t.name: {v: i for i, v in enumerate(values)}
            for t, values in zip(self.scorer.categorical, self.scorer.values.values(), strict=True)
        }
        self.version = f"{NAME}:{card['version']}"
        self.edible_below = card["policy"]["edible_below"]
        self.poisonous_from = card["policy"]["poisonous_from"]
        self.log = PredictionLog()

    def verdict(self, p: float) -> str:
        if p < self.edible_below:
            return "edible"
        return "poisonous" if p >= self.poisonous_from else "uncertain"

    @bentoml.api(batchable=True, max_batch_size=MAX_MUSHROOMS, max_latency_ms=20)
    def classify(
        self, mushrooms: Annotated[list[Mushroom], Field(min_length=1, max_length=MAX_MUSHROOMS)]
    ) -> list[Answer]:
        records = [m.model_dump() for m in mushrooms]
        missing_value = {t.name: self.index[t.name]["missing"] for t in self.scorer.categorical}
        index = np.array(
            [
                [
                    self.index[t.name][r[t.name]] if r[t.name] else missing_value[t.name]
                    for t in self.scorer.categorical
                ]
                for r in records
            ],
            dtype=int,
        )
        numbers = np.array(
            [
                [r[t.name] if r[t.name] is not None else np.nan for t in self.scorer.numeric]
                for r in records
            ],
            dtype=float,
        )
        numbers = numbers.reshape(len(records), len(self.scorer.numeric))
        probabilities = self.scorer.predict_proba(index.reshape(len(records), -1), numbers)
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        answers, logged = [], []
        for record, p in zip(records, probabilities.tolist(), strict=True):
            answer = Answer(
                verdict=self.verdict(p),
                probability_poisonous=p,
                model_version=self.version,
                request_id=uuid.uuid4().hex,
                missing_traits=[f for f in self.features if record[f] is None],
            )
            answers.append(answer)
            logged.append(
                Prediction(answer.request_id, now, self.version, p, answer.verdict, record)
            )
        self.log.append(logged)  # before answering: an answered prediction is a logged one
        return answers


MushroomClassifier.add_asgi_middleware(RequestGuard, max_body_bytes=MAX_MUSHROOMS * 2048)
