"""Every drift run kept, as a run of an Evidently local workspace, so the trend over time can be
read with ``mushroom monitor history`` or seen, offline, with
``evidently ui --workspace data/live/history``.

Both the drift stage (``dvc repro``) and ``mushroom monitor check --live`` record into it. It
accumulates, so it is no DVC output: it lives beside the live log, outside git. Each run holds
the stage's figures as Evidently metric values (``MeanValue`` of a one-row table: built-in
metrics the UI plots without this package) and says what was judged in its metadata and tags.

A run's id is a digest of what was judged (the rows, their labels, the model, its verdict
policy, the ``drift`` params), so judging the same window again (``dvc repro -f``, a second
``check --live`` with no new answers) keeps one run, the first. Runs are written straight in
the layout ``Workspace`` reads, each file whole, by ``mushroom.monitoring.evidently_compat``
(why not ``Workspace.add_run``: its docstring), on the Evidently version it was written for
only; they are read back with ``Workspace``.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from pydantic import BaseModel

from mushroom.core.paths import HISTORY, project_root
from mushroom.monitoring import evidently_compat

PROJECT_ID = uuid.UUID("7c0e5b1a-3f1d-4c57-9a41-6d2f0b8e4a10")
PROJECT_NAME = "Mushroom drift history"
FIGURES = {
    "n_current": "rows judged",
    "drift_share": "drift share",
    "prediction_drift_score": "prediction drift",
    "unfamiliar_share": "unfamiliar share",
    "labelled": "labelled",
    "live_accuracy": "live accuracy",
    "live_false_edible": "false edibles",
}
"""The drift summary's figures a run keeps (those the summary has: drift only when judged,
accuracy only with labels), as ``MeanValue(column=<key>)``, and how they are named."""
ALARMS = {
    "dataset_drift": "dataset drift",
    "prediction_drift": "prediction drift",
    "unfamiliar_alarm": "unfamiliar",
    "live_false_edible": "false edible",
}
"""Summary flags that tag a run, so the UI can filter the runs that alarmed."""
MEAN_VALUE = "evidently:metric_v2:MeanValue"
"""The type Evidently gives ``MeanValue`` results, which dashboard panels select on."""
COLUMNS = {
    "when": ("when (UTC)", "{:%Y-%m-%d %H:%M:%S}"),
    "source": ("source", "{}"),
    "n_current": ("rows", "{:.0f}"),
    "drift_share": ("drift share", "{:.2f}"),
    "prediction_drift_score": ("prediction drift", "{:.3g}"),
    "unfamiliar_share": ("unfamiliar", "{:.1%}"),
    "labelled": ("labelled", "{:.0f}"),
    "live_accuracy": ("live accuracy", "{:.3g}"),
    "live_false_edible": ("false edibles", "{:.0f}"),
}
"""``mushroom monitor history``'s table: heading and format of each run's value."""


def default_folder() -> Path:
    """The project's history folder, also from the copies ``dvc exp run --temp`` and queued
    runs execute in (under ``.dvc/tmp/exps/``), whose own folder goes when they end."""
    return project_root() / HISTORY


class HistoryError(Exception):
    """The history folder cannot be read as a workspace of drift runs."""


def run_key(params: BaseModel, files: Iterable[Path], frames: Iterable[pd.DataFrame]) -> str:
    """A digest of the judged rows and labels (``frames``), the model and policy (``files``)
    and the ``drift`` params: equal for a repeated judgement, whatever the file names."""
    digest = hashlib.sha256(params.model_dump_json().encode())
    for path in files:
        digest.update(path.read_bytes())
    for frame in frames:
        digest.update(json.dumps(list(map(str, frame.columns))).encode())
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def record(folder: Path, summary: dict, key: str, judged: str) -> bool:
    """Keep the run ``summary`` (drift.json's content) describes, judged on ``judged`` (a file
    or scenario name); False if a run with this ``key`` is already kept."""
    run_id = uuid.UUID(key[:32])
    if evidently_compat.run_file(folder, PROJECT_ID, run_id).exists():
        return False
    run = figures_run(summary, key, judged)
    if not evidently_compat.has_project(folder, PROJECT_ID):
        write_project(folder)
    evidently_compat.write_run(folder, PROJECT_ID, run_id, run)
    return True


def figures_run(summary: dict, key: str, judged: str):
    """The run as an Evidently snapshot model: one ``MeanValue`` per figure and one counter
    widget showing them all."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import MeanValue
    from evidently.widgets import CounterData, counter

    figures = {name: float(summary[name]) for name in FIGURES if name in summary}
    dataset = Dataset.from_pandas(
        pd.DataFrame([figures]), data_definition=DataDefinition(numerical_columns=list(figures))
    )
    tags = [summary["source"], *(tag for flag, tag in ALARMS.items() if summary.get(flag))]
    metadata = {"source": f"{summary['source']}:{judged}", "judged": summary["current"]}
    metadata |= {"run_key": key, "drifted": ",".join(summary.get("drifted_columns", []))}
    snapshot = Report([MeanValue(column=name) for name in figures]).run(
        dataset,
        None,
        timestamp=datetime.now(UTC).replace(tzinfo=None),  # naive, as the UI compares them
        tags=tags,
        metadata=metadata,
        name=f"drift {metadata['source']}",
    )
    model = snapshot.to_snapshot_model()
    for result in model.metric_results.values():
        # Evidently draws each figure as a one-bar plot, 17 kB of plotly layout a figure
        # (kept in the result and in the page): a run is 3.5 kB without them, 125 kB with.
        result.widget = []
    model.widgets = [
        counter(
            title=f"{summary['source']}: {summary['current']}",
            counters=[
                CounterData(FIGURES[name], f"{value:.4g}") for name, value in figures.items()
            ],
        )
    ]
    return model


def write_project(folder: Path) -> None:
    """The project and its dashboard: each figure plotted over the runs."""
    from evidently.sdk.models import (
        DashboardModel,
        DashboardPanelPlot,
        DashboardTabModel,
        PanelMetric,
        ProjectModel,
    )

    def plot(title: str, names: list[str], kind: str = "line") -> DashboardPanelPlot:
        return DashboardPanelPlot(
            title=title,
            subtitle=None,
            size="half",
            values=[
                PanelMetric(legend=FIGURES[name], metric=MEAN_VALUE, metric_labels={"column": name})
                for name in names
            ],
            plot_params={"plot_type": kind},
        )

    panels = [
        plot("Drift share and prediction drift", ["drift_share", "prediction_drift_score"]),
        plot("Unfamiliar descriptions (share)", ["unfamiliar_share"]),
        plot("Live accuracy (labelled answers)", ["live_accuracy"]),
        plot("Labelled false edibles", ["live_false_edible"], kind="bar"),
        plot("Rows judged and labelled", ["n_current", "labelled"], kind="bar"),
    ]
    description = "Every drift run: the drift stage (dvc repro) and mushroom monitor check --live"
    tab = DashboardTabModel(title="Trend", panels=[panel.id for panel in panels])
    evidently_compat.write_project(
        folder,
        ProjectModel(id=PROJECT_ID, name=PROJECT_NAME, description=description),
        DashboardModel(tabs=[tab], panels=panels),
    )


def runs(folder: Path) -> list[dict]:
    """The kept runs, oldest first, read back with Evidently's ``Workspace``: ``when``
    (UTC), ``source`` and the other metadata, and each figure kept."""
    if not folder.is_dir():
        raise HistoryError(
            f"{folder}: no such folder (runs are recorded by dvc repro's drift stage "
            "and mushroom monitor check --live)"
        )
    from evidently.ui.workspace import Workspace

    try:
        workspace = Workspace(str(folder))
        if workspace.get_project(PROJECT_ID) is None:
            return []
        models = [workspace.get_run(PROJECT_ID, i) for i in workspace.list_runs(PROJECT_ID)]
    except (OSError, ValueError) as exc:  # pydantic's errors are ValueErrors
        raise HistoryError(f"{folder}: not a workspace of drift runs: {exc}") from exc
    kept = []
    for model in models:
        figures = {
            result.metric_value_location.metric.params.get("column"): float(result.value)
            for result in model.metric_results.values()
        }
        kept.append({"when": model.timestamp, **model.metadata, **figures})
    return sorted(kept, key=lambda run: (run["when"], run["run_key"]))


def table(kept: list[dict]) -> list[str]:
    """``kept`` runs as aligned lines under a heading; ``-`` where a run has no such figure
    (drift not judged, no labels)."""
    cells = [[heading for heading, _ in COLUMNS.values()]]
    for run in kept:
        cells.append(
            [
                shape.format(run[name]) if name in run else "-"
                for name, (_, shape) in COLUMNS.items()
            ]
        )
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
