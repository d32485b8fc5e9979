"""What the service answered and was told, as Prometheus counters at ``/metrics`` beside
BentoML's own (alert rules on them: src/prometheus/alerts.yml).

    mushroom_answers_total{replica, verdict, model_version}
    mushroom_unfamiliar_answers_total{replica, model_version}
    mushroom_feedback_labels_total{replica, true_class, model_version}   (the answer's version)
    mushroom_labelled_false_edibles_total{replica, model_version}  poisonous, answered edible
    mushroom_label_conflicts_total{replica, model_version}  disagreeing with an earlier label

``replica`` names the server that counted (``MUSHROOM_REPLICA``, else the host's name): in a
fleet, any replica may store the label of another's answer, so each counts what it stored.

Each counts what the prediction log committed, so an answer refused with 503 is not
counted, and a label given again is counted once. A request counts as the class it newly
counts as: a poisonous label after an edible one counts it as poisonous (and, for an edible
answer, a false edible), an edible one after a poisonous one only as a conflict. BentoML
serves ``/metrics`` from every worker's files in ``PROMETHEUS_MULTIPROC_DIR``; it sets that
variable for its workers, and ``prometheus_client`` reads it once, when first imported: it
is imported when a worker builds its ``ServiceMetrics``, never at import (``bentoml
serve``'s main process imports the service without it). ``bentoml.metrics`` did this for
us but is deprecated in 1.4.40.
"""

from __future__ import annotations

import functools
import os
import socket
from collections import Counter
from collections.abc import Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mushroom.data.prediction_log import Label
    from mushroom.serving.schema import Answer

REPLICA_ENV = "MUSHROOM_REPLICA"
VERDICTS = ("edible", "poisonous", "uncertain")
TRUE_CLASSES = ("edible", "poisonous")


@functools.cache
def _counters() -> SimpleNamespace:
    """One set per process: a second registration of a name is an error."""
    import prometheus_client

    return SimpleNamespace(
        answers=prometheus_client.Counter(
            "mushroom_answers",
            "Answers logged, by verdict and the model version that gave them",
            ["replica", "verdict", "model_version"],
        ),
        unfamiliar=prometheus_client.Counter(
            "mushroom_unfamiliar_answers",
            "Answers logged for descriptions unlike the model's training data",
            ["replica", "model_version"],
        ),
        labels=prometheus_client.Counter(
            "mushroom_feedback_labels",
            "Feedback labels stored, by true class and the version of the model that answered",
            ["replica", "true_class", "model_version"],
        ),
        false_edibles=prometheus_client.Counter(
            "mushroom_labelled_false_edibles",
            "Feedback labels 'poisonous' for answers that were 'edible'",
            ["replica", "model_version"],
        ),
        conflicts=prometheus_client.Counter(
            "mushroom_label_conflicts",
            "Feedback labels that disagree with one given before (the request counts as poisonous)",
            ["replica", "model_version"],
        ),
    )


def replica() -> str:
    """This server's name on its series: ``MUSHROOM_REPLICA``, else the host's name (a
    container's or a pod's is its own; set it for several servers on one host)."""
    return os.environ.get(REPLICA_ENV) or socket.gethostname()


class ServiceMetrics:
    """The counters of one served model version on one replica."""

    def __init__(self, model_version: str, replica_name: str):
        counters = _counters()
        self._counters, self._replica = counters, replica_name
        # Every series of the served version exists from start-up, at 0: Prometheus's
        # increase() cannot see a series' first sample as a rise, so a false edible that
        # created its series would not fire the alert.
        here = replica_name
        self._answers = {v: counters.answers.labels(here, v, model_version) for v in VERDICTS}
        self._unfamiliar = counters.unfamiliar.labels(here, model_version)
        for true_class in TRUE_CLASSES:
            counters.labels.labels(here, true_class, model_version)
        counters.false_edibles.labels(here, model_version)
        counters.conflicts.labels(here, model_version)

    def count_answers(self, answers: Sequence[Answer]) -> None:
        """One increment per verdict of a batch, not one per answer."""
        for verdict, count in Counter(a["verdict"] for a in answers).items():
            self._answers[verdict].inc(count)
        unfamiliar = sum("unfamiliar" in a["reasons"] for a in answers)
        if unfamiliar:
            self._unfamiliar.inc(unfamiliar)

    def count_label(self, label: Label) -> None:
        """A stored label of an answer, maybe of an earlier model version: counted by the
        class it newly counts as (a conflict that made it poisonous: as poisonous)."""
        here, version = self._replica, label.answered.model_version
        if label.conflict:
            self._counters.conflicts.labels(here, version).inc()
        if label.newly is None:
            return
        self._counters.labels.labels(here, label.newly, version).inc()
        if label.newly == "poisonous" and label.answered.verdict == "edible":
            self._counters.false_edibles.labels(here, version).inc()
