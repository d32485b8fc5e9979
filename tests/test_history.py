"""Every drift run kept in an Evidently local workspace, read back with Evidently's own API,
by `mushroom monitor history` and by `evidently ui` (offline, on a loopback port)."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import repocopy
from mushroom.cli import main as mushroom
from mushroom.data.prediction_log import PredictionLog
from mushroom.monitoring import history
from mushroom.stages import drift
from servefixtures import free_port
from test_drift import empty_snapshot, log_test_split, run_drift, served_classifier

FIGURES_IN_REPORT = ["n_current", "drift_share", "prediction_drift_score", "unfamiliar_share"]


@pytest.fixture(scope="module")
def kept(uci_model, bentoml_home, tmp_path_factory) -> dict:
    """Three drift runs on a growing log: 120 unlabelled answers; 320 answers with two labels
    (one a false edible); the same 320 judged again. Their reports, stage output, and the
    drift.json bytes of the last two."""
    tmp = tmp_path_factory.mktemp("history")
    classifier = served_classifier(uci_model, bentoml_home)
    log = tmp / "predictions.db"

    def judged() -> tuple[dict, bytes]:
        report = run_drift(uci_model.workdir, tmp, log=log, drift__min_rows=100)
        return report, (tmp / "drift" / "drift.json").read_bytes()

    log_test_split(classifier, uci_model, tmp, 120)
    first, _ = judged()
    _, edible, poisonous = log_test_split(classifier, uci_model, tmp, 200)
    labels = PredictionLog(log)
    assert labels.add_feedback(edible[0], "poisonous", "2026-11-27T00:00:00Z")
    assert labels.add_feedback(poisonous[0], "poisonous", "2026-11-27T00:00:00Z")
    labels.close()
    second, second_bytes = judged()
    again, again_bytes = judged()
    return {
        "folder": tmp / "history",
        "reports": [first, second],
        "again": again,
        "bytes": (second_bytes, again_bytes),
    }


def test_each_run_is_kept_with_its_figures_and_opens_with_evidentlys_api(kept):
    from evidently.ui.workspace import Workspace

    workspace = Workspace(str(kept["folder"]))
    project = workspace.get_project(history.PROJECT_ID)
    assert project is not None and project.name == history.PROJECT_NAME
    runs = [workspace.get_run(project.id, i) for i in workspace.list_runs(project.id)]
    runs.sort(key=lambda run: run.timestamp)
    assert len(runs) == 2
    for run, report in zip(runs, kept["reports"], strict=True):
        values = {
            r.metric_value_location.metric.params["column"]: r.value
            for r in run.metric_results.values()
        }
        assert {f: values[f] for f in FIGURES_IN_REPORT} == {
            f: report[f] for f in FIGURES_IN_REPORT
        }
        assert run.metadata["source"] == "log:predictions.db"
        assert run.metadata["judged"] == report["current"] and "log" in run.tags
    first, second = runs
    assert "live_accuracy" not in {
        r.metric_value_location.metric.params["column"] for r in first.metric_results.values()
    }
    labelled = {
        r.metric_value_location.metric.params["column"]: r.value
        for r in second.metric_results.values()
    }
    assert (labelled["labelled"], labelled["live_accuracy"], labelled["live_false_edible"]) == (
        2,
        0.5,
        1,
    )
    assert "false edible" in second.tags and "false edible" not in first.tags
    # The dashboard plots figures the runs hold.
    panels = workspace.get_dashboard(project.id).panels
    plotted = {v.metric_labels["column"] for panel in panels for v in panel.values}
    assert {"drift_share", "prediction_drift_score", "unfamiliar_share", "live_accuracy"} <= plotted
    assert {v.metric for panel in panels for v in panel.values} == {history.MEAN_VALUE}


def test_the_same_window_judged_again_is_kept_once_and_reports_the_same(kept, capsys):
    assert kept["again"] == kept["reports"][1]
    assert kept["bytes"][0] == kept["bytes"][1]  # drift.json does not depend on the history
    assert mushroom(["monitor", "history", "--history", str(kept["folder"])]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4  # heading, two runs, where to see them plotted
    assert lines[0].split() == [
        "when", "(UTC)", "source", "rows", "drift", "share", "prediction", "drift",
        "unfamiliar", "labelled", "live", "accuracy", "false", "edibles",
    ]  # fmt: skip
    first, second = (line.split()[2:] for line in lines[1:3])
    report = kept["reports"][1]
    assert first[:2] == ["log:predictions.db", "120"] and first[-3:] == ["0", "-", "0"]
    assert second == [
        "log:predictions.db",
        "320",
        f"{report['drift_share']:.2f}",
        f"{report['prediction_drift_score']:.3g}",
        f"{report['unfamiliar_share']:.1%}",
        "2",
        "0.5",
        "1",
    ]
    assert lines[3] == f"plotted by: DO_NOT_TRACK=true evidently ui --workspace {kept['folder']}"


def test_evidently_ui_serves_the_trend_offline_and_sees_new_runs(kept, tmp_path):
    """`evidently ui` on (a copy of) the history: the project, and each figure as a series over
    the runs, what a dashboard panel plots; a run kept while it serves joins the series.
    Telemetry is off (DO_NOT_TRACK)."""
    folder = tmp_path / "history"
    shutil.copytree(kept["folder"], folder)
    port = free_port()
    command = [str(Path(sys.executable).parent / "evidently"), "ui", "--workspace", str(folder)]
    with open(tmp_path / "ui.log", "w") as output:
        server = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            cwd=tmp_path,
            env=repocopy.tool_env() | {"DO_NOT_TRACK": "true"},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    wanted = {"tags": [], "metadata": {}, "metric": history.MEAN_VALUE}
    series_filter = [
        wanted | {"metric_labels": {"column": "n_current"}},
        wanted | {"metric_labels": {"column": "live_false_edible"}},
    ]

    def plotted() -> dict:
        series = httpx.post(
            f"{url}/api/v2/snapshots/{history.PROJECT_ID}/data_series_batch",
            json={"series_filter": series_filter},
            timeout=10,
        ).json()
        return {s["params"]["column"]: s["values"] for s in series["series"]}

    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and server.poll() is None:
            try:
                httpx.get(f"{url}/api/version", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert server.poll() is None, (tmp_path / "ui.log").read_text()
        projects = httpx.get(f"{url}/api/projects", timeout=10).json()
        assert [p["name"] for p in projects] == [history.PROJECT_NAME]
        assert plotted() == {"n_current": [120, 320], "live_false_edible": [0, 1]}

        later = kept["reports"][1] | {"n_current": 400, "live_false_edible": 0}
        assert history.record(folder, later, "f" * 64, "predictions.db")
        deadline = time.monotonic() + 20
        while len(plotted()["n_current"]) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert plotted() == {"n_current": [120, 320, 400], "live_false_edible": [0, 1, 0]}
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def test_history_problems_are_one_line_errors(uci_model, tmp_path, capsys):
    folder = tmp_path / "history"
    assert mushroom(["monitor", "history", "--history", str(folder)]) == 2
    assert capsys.readouterr().err == (
        f"mushroom monitor history: {folder}: no such folder (runs are recorded by dvc "
        "repro's drift stage and mushroom monitor check --live)\n"
    )
    folder.mkdir()
    assert mushroom(["monitor", "history", "--history", str(folder)]) == 0
    assert (
        capsys.readouterr().out == f"mushroom monitor history: no drift run kept in {folder} yet\n"
    )

    run_drift(uci_model.workdir, tmp_path, drift__source="scenario")
    capsys.readouterr()  # the stage's progress lines
    run = next((folder / str(history.PROJECT_ID) / "snapshots").iterdir())
    run.write_text(run.read_text()[:100])  # cut short, as by a full disk
    assert mushroom(["monitor", "history", "--history", str(folder)]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"mushroom monitor history: {folder}: not a workspace of drift runs: ")
    assert error.count("\n") == 1

    blocked = tmp_path / "blocked"
    blocked.write_text("")  # a file where the history folder should be
    work, out = uci_model.workdir, tmp_path / "out"
    code = drift.main(
        [
            *("--params", str(work / "params.yaml"), "--prepared", str(work / "prepared")),
            *("--model", str(work / "models" / "model.joblib")),
            *("--policy", str(work / "models" / "policy.json")),
            *("--log", str(empty_snapshot(tmp_path)), "--history", str(blocked)),
            *("--json", str(out / "drift.json"), "--html", str(out / "drift.html")),
        ]
    )
    progress = re.compile(r"drift: step \d/4: .* \(\d+ s\)")
    said = capsys.readouterr().err.splitlines()
    errors = [line for line in said if not progress.fullmatch(line)]
    assert len(said) == 4 and len(errors) == 1  # three steps done, then the one error
    assert code == 2 and errors[0].startswith(f"drift: history not kept in {blocked}: ")
    assert json.loads((out / "drift.json").read_text())["n_current"] == 0  # reported all the same


def test_runs_of_temporary_experiments_are_kept_in_the_projects_history(tmp_path, monkeypatch):
    """`dvc exp run --temp` and queued runs execute in copies under .dvc/tmp/exps/."""
    copy = tmp_path / ".dvc" / "tmp" / "exps" / "tmpabc123"
    copy.mkdir(parents=True)
    monkeypatch.chdir(copy)
    assert history.default_folder() == tmp_path.resolve() / "data" / "live" / "history"
