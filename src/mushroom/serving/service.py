"""BentoML service: the promoted champion answers ``POST /classify``.

    bentoml serve mushroom.serving.service:MushroomClassifier --host 127.0.0.1 --port 3000

The served model decides the schema: which traits exist and their allowed values come
from the catalogue of the dataset it was trained on, read from its model card at import so
the OpenAPI document lists them. Which model serves is decided once, at start-up: the
MLflow ``champion`` alias, a built bento's own model, or ``MUSHROOM_MODEL`` (a store tag),
see mushroom.lifecycle.champion; restart the server to serve a new champion.
"""

from __future__ import annotations

import gc
import os
import sys
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

from mushroom.core.catalogue import get_catalogue
from mushroom.core.environment import die_with_parent
from mushroom.core.paths import CHECKOUT, mlflow_uri
from mushroom.core.versions import UnsupportedVersion
from mushroom.data.prediction_log import (
    Database,
    Location,
    LogUnavailable,
    PredictionLog,
    UnknownPrediction,
    log_location,
)
from mushroom.lifecycle.champion import NoChampion, pin, select, use_project_store
from mushroom.lifecycle.model_card import InvalidCard, ModelCard
from mushroom.lifecycle.store_names import NAME, POLICY_FILE
from mushroom.model.bundle import OutdatedBundle, read_policy
from mushroom.serving import patches, people_page
from mushroom.serving.classifier import Classifier
from mushroom.serving.docs_page import DocsPage, project_info
from mushroom.serving.http_guard import error_response, guard, guarded_input
from mushroom.serving.metrics import ServiceMetrics, replica
from mushroom.serving.schema import (
    ANSWERS,
    MAX_HEAD_BYTES,
    MAX_HEADER_FIELDS,
    Answer,
    served_mushroom,
)

use_project_store()
try:
    SERVED = select()
except NoChampion as exc:
    raise SystemExit(f"error: {exc}; not serving") from None
if pin(SERVED):  # a worker: it ends with its server
    die_with_parent()
MODEL_TAG = SERVED.tag
MODEL_DIR = bentoml.models.get(MODEL_TAG).path
try:
    POLICY = read_policy(Path(MODEL_DIR) / POLICY_FILE)
    CARD = ModelCard.read(MODEL_DIR)
except (OutdatedBundle, InvalidCard) as exc:
    raise SystemExit(f"error: {MODEL_TAG}: {exc}; not serving") from None
MAX_MUSHROOMS = int(CARD.params["serve"]["max_mushrooms"])
Mushroom = served_mushroom(MODEL_DIR)
BYTES_PER_MUSHROOM = 2048  # a full secondary mushroom in hyphenated JSON is ~700 bytes
ClassifyInput = guarded_input(
    mushrooms=(Annotated[list[Mushroom], Field(min_length=1, max_length=MAX_MUSHROOMS)], ...)
)
FeedbackInput = guarded_input(
    request_id=(Annotated[str, Field(min_length=1, max_length=64)], ...),
    true_class=(Literal["edible", "poisonous"], ...),
)


def starting_line(log: Location) -> str:
    """Which model, chosen how, from which stores, by which code, logging where: said once
    at start, so a server never serves another checkout's champion unnoticed."""
    return (
        f"mushroom: serving {CARD.full_version} ({MODEL_TAG}, chosen by {SERVED.chosen_by}) "
        f"from {MODEL_DIR}; MLflow store {mlflow_uri()}; code {CHECKOUT / 'src'}; "
        f"prediction log {log if isinstance(log, Database) else log.resolve()}"
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


FEEDBACK_TOKEN = os.environ.get("MUSHROOM_FEEDBACK_TOKEN", "")
"""When set, ``POST /feedback`` needs ``Authorization: Bearer <it>`` (else 401)."""


class FeedbackReceipt(BaseModel):
    request_id: str
    true_class: Literal["edible", "poisonous"] = Field(description="the label given")
    stored: bool = Field(description="false when this label was already stored")
    counts_as: Literal["edible", "poisonous"] = Field(
        description="the request's label now, for alarms, drift and replay: poisonous once "
        "any label said so (the safe label wins)"
    )
    conflict: bool = Field(
        description="true when this label disagrees with one given before: both are kept, "
        "and the request counts as poisonous"
    )


def model_info(request: Request) -> JSONResponse:
    return JSONResponse(
        CARD.shown()
        | {
            "bento_model": MODEL_TAG,
            "chosen_by": SERVED.chosen_by,
            "champion_history": SERVED.history,
        }
    )


PAGES = Starlette(
    routes=[
        Route("/model", model_info, methods=["GET"]),
        *people_page.routes(CARD, get_catalogue(CARD.dataset), POLICY),
    ]
)


# Mounted at /, its routes come before BentoML's own (its page at / included).
@bentoml.asgi_app(PAGES, path="/")
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
        working_dir = Path(MushroomClassifier.working_dir)
        log = log_location(working_dir)
        log = log if isinstance(log, Database) else working_dir / log
        try:
            PredictionLog.check(log)
        except LogUnavailable as failure:
            raise SystemExit(f"error: {failure}; not serving") from None
        print(starting_line(log), file=sys.stderr, flush=True)

    def __init__(self) -> None:
        self.classifier = Classifier(Path(self.model.path))
        # Never raises: a log broken since the check leaves the worker up, not ready and
        # answering 503 until the log works, instead of failing and being restarted forever.
        self.log = PredictionLog()
        self.metrics = ServiceMetrics(self.classifier.version, replica())
        # The model and libraries are loaded for good: keep them out of every later GC pass.
        gc.collect()
        gc.freeze()

    def __is_ready__(self) -> bool:
        """``/readyz``: false while the prediction log cannot record answers."""
        return self.log.ready()

    # A generous latency bound: under a burst BentoML's dispatcher answers 503 ("overloaded")
    # to requests it expects to exceed it; queueing them within traffic.timeout is better.
    @bentoml.api(
        input_spec=ClassifyInput, batchable=True, max_batch_size=MAX_MUSHROOMS, max_latency_ms=5000
    )
    def classify(self, mushrooms: list[Mushroom]) -> list[Answer]:
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

    @bentoml.api(input_spec=FeedbackInput)
    def feedback(
        self, request_id: str, true_class: Literal["edible", "poisonous"]
    ) -> FeedbackReceipt:
        """The true class of an answered mushroom, found out later (for monitoring)."""
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        source = "token" if FEEDBACK_TOKEN else "open"  # the guard checked the token
        try:
            label = self.log.add_feedback(request_id, true_class, now, source)
        except UnknownPrediction as exc:
            return error_response(HTTPStatus.NOT_FOUND, str(exc))
        except LogUnavailable as failure:
            return not_recorded(failure)
        self.metrics.count_label(label)
        return FeedbackReceipt(
            request_id=request_id,
            true_class=true_class,
            stored=label.newly is not None or label.conflict,
            counts_as=label.counts_as,
            conflict=label.conflict,
        )


async def answers_response(_spec: type, answers: list[Answer], _serde: object) -> Response:
    """A request's answers as JSON, serialised once, in Rust (why BentoML's own path is
    not used: ``patches.respond_with``); 503 if the log could not record them."""
    if answers and isinstance(answers[0], LogUnavailable):
        return not_recorded(answers[0])
    return Response(ANSWERS.dump_json(answers), media_type="application/json")


# Every use of BentoML's and circus's internals (mushroom.serving.patches), applied here, at
# import: in `bentoml serve`'s main process before it makes its process manager, and in each
# worker before it builds its dispatchers. A library at a version a patch was not written
# for stops the server here, naming it.
try:
    patches.dispatch_when_free()
    patches.private_control_sockets()
    patches.private_metrics_folder()
    patches.bounded_request_heads(MAX_HEAD_BYTES, MAX_HEADER_FIELDS)
    guard(
        MushroomClassifier,
        max_body_bytes=MAX_MUSHROOMS * BYTES_PER_MUSHROOM,
        tokens={"/feedback": FEEDBACK_TOKEN} if FEEDBACK_TOKEN else {},
    )
    patches.respond_with(MushroomClassifier, "classify", answers_response)
except UnsupportedVersion as exc:
    raise SystemExit(f"error: {exc}; not serving") from None
MushroomClassifier.add_asgi_middleware(DocsPage, info=project_info(CARD, MODEL_TAG))
