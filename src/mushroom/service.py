"""BentoML service: the promoted champion answers ``POST /classify``.

    bentoml serve mushroom.service:MushroomClassifier --host 127.0.0.1 --port 3000

The served model decides the schema: which traits exist and their allowed values come
from the catalogue of the dataset it was trained on, read from its model card at import so
the OpenAPI document lists them. Which model serves is decided once, at start-up: the
MLflow ``champion`` alias, a built bento's own model, or ``MUSHROOM_MODEL`` (a store tag),
see mushroom.champion; restart the server to serve a new champion.
"""

from __future__ import annotations

import gc
import time
from http import HTTPStatus
from pathlib import Path
from typing import Annotated, Literal

import bentoml
from pydantic import BaseModel, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mushroom.api_schema import ANSWERS, Answer, served_mushroom
from mushroom.batching import dispatch_when_free
from mushroom.bundle import OutdatedBundle, current_policy
from mushroom.champion import NoChampion, select
from mushroom.classifier import Classifier, read_card
from mushroom.controlsocket import private_control_sockets
from mushroom.docspage import DocsPage, project_info
from mushroom.httpguard import error_response, guard
from mushroom.modelstore import NAME, POLICY_FILE
from mushroom.predlog import (
    LabelConflict,
    LogUnavailable,
    PredictionLog,
    UnknownPrediction,
    log_path,
)
from mushroom.servicemetrics import ServiceMetrics

dispatch_when_free()
private_control_sockets()
try:
    SERVED = select()
except NoChampion as exc:
    raise SystemExit(f"error: {exc}; not serving") from None
MODEL_TAG = SERVED.tag
MODEL_DIR = bentoml.models.get(MODEL_TAG).path
try:
    current_policy(Path(MODEL_DIR) / POLICY_FILE)
except OutdatedBundle as exc:
    raise SystemExit(f"error: {MODEL_TAG}: {exc}; not serving") from None
CARD = read_card(MODEL_DIR)
MAX_MUSHROOMS = int(CARD["params"]["serve"]["max_mushrooms"])
Mushroom = served_mushroom(MODEL_DIR)
BYTES_PER_MUSHROOM = 2048  # a full secondary mushroom in hyphenated JSON is ~700 bytes
INFO_KEYS = (
    "name",
    "version",
    "dataset",
    "split",
    "model",
    "encoder",
    "params",
    "metrics",
    "held_out",
    "trained_at",
    "training_seconds",
    "git_commit",
    "policy",
    "familiarity",
    "features",
)


def not_recorded(failure: LogUnavailable) -> JSONResponse:
    """503 instead of answers the prediction log could not record: none is given unlogged."""
    response = error_response(
        HTTPStatus.SERVICE_UNAVAILABLE,
        f"the prediction log cannot record answers ({failure.cause}): nothing was answered "
        "or stored, try again later",
    )
    response.headers["Retry-After"] = "1"
    return response


class FeedbackReceipt(BaseModel):
    request_id: str
    true_class: Literal["edible", "poisonous"]
    stored: bool = Field(description="false when this label was already stored")


def model_info(request: Request) -> JSONResponse:
    return JSONResponse(
        {key: CARD[key] for key in INFO_KEYS}
        | {
            "bento_model": MODEL_TAG,
            "chosen_by": SERVED.chosen_by,
            "champion_history": SERVED.history,
        }
    )


@bentoml.asgi_app(Starlette(routes=[Route("/model", model_info, methods=["GET"])]), path="/")
@bentoml.service(
    name=NAME,
    http={"host": "127.0.0.1"},
    # Short: BentoML keeps per-request objects alive for the timeout, and long-lived
    # garbage makes the full GC pauses that set p99 under load.
    traffic={"timeout": 5},
    # Every answer is already a row in the prediction log, and /metrics counts requests:
    # a formatted access-log line per request cost ~10 % of the server's CPU.
    logging={"access": {"enabled": False}},
)
class MushroomClassifier:
    model = bentoml.models.BentoModel(MODEL_TAG)

    @bentoml.on_deployment
    def check_prediction_log() -> None:
        """Runs in `bentoml serve`'s main process before any worker starts: a log that
        cannot record answers stops the server with one line naming it and the cause."""
        try:
            PredictionLog.check(Path(MushroomClassifier.working_dir) / log_path())
        except LogUnavailable as failure:
            raise SystemExit(f"error: {failure}; not serving") from None

    def __init__(self) -> None:
        self.classifier = Classifier(Path(self.model.path))
        # Never raises: a log broken since the check leaves the worker up, not ready and
        # answering 503 until the log works, instead of failing and being restarted forever.
        self.log = PredictionLog()
        self.metrics = ServiceMetrics(self.classifier.version)
        # The model and libraries are loaded for good: keep them out of every later GC pass.
        gc.collect()
        gc.freeze()

    def __is_ready__(self) -> bool:
        """``/readyz``: false while the prediction log cannot record answers."""
        return self.log.ready()

    # A generous latency bound: under a burst BentoML's dispatcher answers 503 ("overloaded")
    # to requests it expects to exceed it; queueing them within traffic.timeout is better.
    @bentoml.api(batchable=True, max_batch_size=MAX_MUSHROOMS, max_latency_ms=5000)
    def classify(
        self, mushrooms: Annotated[list[Mushroom], Field(min_length=1, max_length=MAX_MUSHROOMS)]
    ) -> list[Answer]:
        answers, traits = self.classifier.classify(mushrooms)
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        # Logged before answering: every answered prediction is in the log.
        try:
            self.log.append(
                self.classifier.trait_names, self.classifier.log_rows(answers, traits, now)
            )
        except LogUnavailable as failure:
            return [failure] * len(answers)  # each request of the batch: 503, see answers_response
        self.metrics.count_answers(answers)
        return answers

    @bentoml.api
    def feedback(
        self,
        request_id: Annotated[str, Field(min_length=1, max_length=64)],
        true_class: Literal["edible", "poisonous"],
    ) -> FeedbackReceipt:
        """The true class of an answered mushroom, found out later (for monitoring)."""
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        try:
            labelled = self.log.add_feedback(request_id, true_class, now)
        except UnknownPrediction as exc:
            return error_response(HTTPStatus.NOT_FOUND, str(exc))
        except LabelConflict as exc:
            return error_response(HTTPStatus.CONFLICT, str(exc))
        except LogUnavailable as failure:
            return not_recorded(failure)
        if labelled:
            self.metrics.count_label(true_class, labelled)
        return FeedbackReceipt(
            request_id=request_id, true_class=true_class, stored=labelled is not None
        )


guard(MushroomClassifier, max_body_bytes=MAX_MUSHROOMS * BYTES_PER_MUSHROOM)
MushroomClassifier.add_asgi_middleware(DocsPage, info=project_info(CARD, MODEL_TAG))


async def answers_response(_spec: type, answers: list[Answer], _serde: object) -> Response:
    """The answers as JSON, serialised once, in Rust. BentoML's own path re-validates the
    list, dumps it to Python twice and encodes with ``json``: 2 ms of a 1,000-mushroom
    request; it also derives the media type by rebuilding the answer's JSON schema on every
    response, which was a quarter of the server's CPU at concurrency 8."""
    if answers and isinstance(answers[0], LogUnavailable):
        return not_recorded(answers[0])
    return Response(ANSWERS.dump_json(answers), media_type="application/json")


MushroomClassifier.apis["classify"].output_spec.to_http_response = classmethod(answers_response)
