"""The design the project started from, kept only as the benchmark's baseline: FastAPI,
pydantic records -> pandas DataFrame -> the fitted sklearn pipeline (category_encoders +
model) per request.

    python bench/baseline_server.py MODEL.joblib CARD.json --port 8001
"""

import argparse
import json

import joblib
import pandas as pd
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel, create_model

from mushroom.core.catalogue import get_catalogue


def build_app(model_path: str, card_path: str) -> FastAPI:
    card = json.loads(open(card_path).read())
    pipeline = joblib.load(model_path)
    features = card["features"]
    catalogue = get_catalogue(card["dataset"])
    Mushroom = create_model(
        "Mushroom",
        **{  # noqa: N806
            t.name: (float | None if t.is_numeric else str, "missing") for t in catalogue.traits
        },
    )

    class Request(BaseModel):
        mushrooms: list[Mushroom]

    app = FastAPI()

    @app.post("/classify")
    def classify(request: Request) -> list[dict]:
        frame = pd.DataFrame([m.model_dump() for m in request.mushrooms])[features]
        probabilities = pipeline.predict_proba(frame)[:, 1]
        return [
            {"probability_poisonous": float(p), "verdict": "poisonous" if p >= 0.5 else "edible"}
            for p in probabilities
        ]

    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("card")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        build_app(args.model, args.card), host="127.0.0.1", port=args.port, log_level="warning"
    )
