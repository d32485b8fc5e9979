"""The service's counters at /metrics, read from a real `bentoml serve`, and the Prometheus
alert rules on them, checked and unit-tested by promtool."""

from __future__ import annotations

import contextlib
import shutil
import socket
import sqlite3
import subprocess
from pathlib import Path

import httpx
import pandas as pd
from prometheus_client.parser import text_string_to_metric_families

from mushroom.core.catalogue import UCI
from mushroom.data.raw import read_raw
from servefixtures import Server

RULES = Path(__file__).parents[1] / "src" / "prometheus"


Samples = list[tuple[str, dict[str, str], float]]


def counters(server: Server) -> Samples:
    """Every counter sample at /metrics: (name, labels, value)."""
    text = httpx.get(f"{server.url}/metrics", timeout=30).text
    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.endswith("_total")
    ]


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples that have ``labels``; KeyError when there is none."""
    found = [v for n, have, v in samples if n == name and labels.items() <= have.items()]
    if not found:
        raise KeyError(f"no {name} with {labels}")
    return sum(found)


def post(server: Server, route: str, body: dict) -> httpx.Response:
    return httpx.post(f"{server.url}/{route}", json=body, timeout=30)


def rename_column(log: Path, old: str, new: str) -> None:
    """Renaming the verdict column makes the service's log fail, as a damaged one would."""
    with contextlib.closing(sqlite3.connect(log)) as db:
        db.execute(f"alter table predictions rename column {old} to {new}")
        db.commit()


def test_counters_count_what_the_log_committed(uci_model, pulled_repo, tmp_path):
    rows = read_raw("uci", pulled_repo / "data" / "raw")
    edible = rows[(rows["class"] == "edible") & (rows["odor"] == "anise")].head(3)
    poisonous = rows[(rows["class"] == "poisonous") & (rows["odor"] == "foul")].head(2)
    described = [
        {t.name: row[t.name] for t in UCI.traits}
        for _, row in pd.concat([edible, poisonous]).iterrows()
    ]
    log = tmp_path / "predictions.db"
    server = Server(uci_model, log)
    try:
        at_start = [(n, labels, v) for n, labels, v in counters(server) if n.startswith("mushroom")]
        answers = post(server, "classify", {"mushrooms": described}).json()
        answers += post(server, "classify", {"mushrooms": [{"odor": "foul"}] * 2}).json()
        answers += post(server, "classify", {"mushrooms": [{"odor": "none"}]}).json()
        version = answers[0]["model_version"]
        # a foul odor alone is poisonous; odor none alone is uncertain
        assert [a["verdict"] for a in answers] == ["edible"] * 3 + ["poisonous"] * 4 + ["uncertain"]
        # Every series of the served version exists before its first answer, at 0, named
        # after the replica: the host, as no MUSHROOM_REPLICA is set.
        assert {v for _, _, v in at_start} == {0}
        assert {labels["replica"] for _, labels, _ in at_start} == {socket.gethostname()}
        assert {
            (name, labels.get("verdict", labels.get("true_class")))
            for name, labels, _ in at_start
            if labels["model_version"] == version
        } == {
            ("mushroom_answers_total", "edible"),
            ("mushroom_answers_total", "poisonous"),
            ("mushroom_answers_total", "uncertain"),
            ("mushroom_unfamiliar_answers_total", None),
            ("mushroom_feedback_labels_total", "edible"),
            ("mushroom_feedback_labels_total", "poisonous"),
            ("mushroom_labelled_false_edibles_total", None),
            ("mushroom_label_conflicts_total", None),
        }

        rename_column(log, "verdict", "verdict_was")
        refused = post(server, "classify", {"mushrooms": [{"odor": "foul"}] * 5})
        assert refused.status_code == 503
        counted = counters(server)
        for verdict in ("edible", "poisonous", "uncertain"):
            given = sum(a["verdict"] == verdict for a in answers)
            assert total(counted, "mushroom_answers_total", verdict=verdict) == given, verdict
        unfamiliar = sum("unfamiliar" in a["reasons"] for a in answers)
        assert 1 <= unfamiliar < len(answers)
        assert total(counted, "mushroom_unfamiliar_answers_total") == unfamiliar
        # What MushroomAnswersRefused (src/prometheus/alerts.yml) reads.
        request = "bentoml_service_request_total"
        assert total(counted, request, endpoint="/classify", http_response_code="503") == 1

        rename_column(log, "verdict_was", "verdict")
        server.wait_ready(timeout=10)
        false_edible, right_edible = answers[0]["request_id"], answers[1]["request_id"]
        statuses = [
            post(
                server, "feedback", {"request_id": request_id, "true_class": true_class}
            ).status_code
            for request_id, true_class in [
                (false_edible, "poisonous"),
                (false_edible, "poisonous"),  # again: stored once, counted once
                (false_edible, "edible"),  # a conflict: still poisonous, counted as such
                (right_edible, "edible"),
                (answers[3]["request_id"], "poisonous"),  # answered poisonous: right
                (answers[7]["request_id"], "poisonous"),  # uncertain: not a false edible
                (right_edible, "poisonous"),  # overturns its edible label: a false edible
            ]
        ]
        assert statuses == [200] * 7
        labelled = counters(server)
        for true_class, count in {"poisonous": 4, "edible": 1}.items():
            assert total(labelled, "mushroom_feedback_labels_total", true_class=true_class) == count
        assert total(labelled, "mushroom_labelled_false_edibles_total", model_version=version) == 2
        assert total(labelled, "mushroom_label_conflicts_total", model_version=version) == 2
    finally:
        server.stop()


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is not installed: `make promtool` installs it (Debian: prometheus)"
    return found


def test_alert_rules_are_valid():
    checked = subprocess.run(
        [promtool(), "check", "rules", str(RULES / "alerts.yml")], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


def test_alert_rules_fire_on_their_synthetic_series():
    """src/prometheus/alerts_test.yml: a false edible fires at once, also as the first
    sample of a series or after a restart; the others need volume and time."""
    tested = subprocess.run(
        [promtool(), "test", "rules", "alerts_test.yml"],
        cwd=RULES,
        capture_output=True,
        text=True,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout
