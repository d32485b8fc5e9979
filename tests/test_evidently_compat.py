"""The drift history's one patch of Evidently (mushroom.monitoring.evidently_compat): runs
written straight into a local workspace's files, read back with Evidently's own API, only on
the Evidently version the patch was written for. Fast: no pipeline, no `evidently ui` (that
is test_history.py)."""

from __future__ import annotations

import importlib.metadata
import uuid

import pytest

from mushroom.core.versions import UnsupportedVersion
from mushroom.monitoring import evidently_compat, history

# Evidently warns of its own dependencies' deprecations (numpy, litestar) as it loads.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
SUMMARY = {
    "source": "log",
    "current": "predictions.db, 2026-11-01 to 2026-11-30",
    "n_current": 320,
    "drift_share": 0.25,
    "unfamiliar_share": 0.05,
    "dataset_drift": True,
    "drifted_columns": ["odor", "habitat"],
}
KEY = "ab" * 32


def kept_runs(folder) -> list:
    from evidently.ui.workspace import Workspace

    workspace = Workspace(str(folder))
    return [
        workspace.get_run(history.PROJECT_ID, i) for i in workspace.list_runs(history.PROJECT_ID)
    ]


def test_the_patch_refuses_an_evidently_it_was_not_written_for_and_writes_nothing(
    tmp_path, monkeypatch
):
    real = importlib.metadata.version
    monkeypatch.setattr(
        importlib.metadata, "version", lambda name: "0.7.99" if name == "evidently" else real(name)
    )
    with pytest.raises(UnsupportedVersion) as refused:
        history.record(tmp_path / "history", SUMMARY, KEY, "predictions.db")
    assert str(refused.value).startswith(
        "the patch run_file (mushroom.monitoring.evidently_compat) is written for evidently "
        "0.7.23, but evidently 0.7.99 is installed"
    )
    assert list(tmp_path.iterdir()) == []


def test_the_patch_is_written_for_the_installed_evidently():
    """The pin in pyproject.toml and the patch move together."""
    wanted = evidently_compat.WRITTEN_FOR
    assert {d: importlib.metadata.version(d) for d in wanted} == wanted


def test_a_run_is_kept_once_whole_and_read_back_with_evidentlys_workspace(tmp_path):
    folder = tmp_path / "history"
    assert history.record(folder, SUMMARY, KEY, "predictions.db")
    assert not history.record(folder, SUMMARY | {"n_current": 1}, KEY, "predictions.db")
    (run,) = kept_runs(folder)
    assert run.metadata["run_key"] == KEY and run.metadata["drifted"] == "odor,habitat"
    assert set(run.tags) == {"log", "dataset drift"}
    values = {
        r.metric_value_location.metric.params["column"]: r.value
        for r in run.metric_results.values()
    }
    assert values == {"n_current": 320, "drift_share": 0.25, "unfamiliar_share": 0.05}
    assert [w.type for w in run.widgets] == ["counter"]  # one small widget, no plots
    assert all(not r.widget for r in run.metric_results.values())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history"]  # nothing staged left


def test_a_run_cut_short_does_not_stop_the_next_from_being_kept(tmp_path):
    """Evidently's ``Workspace()`` refuses to open beside a damaged run: recording does not
    go through it, so one bad file (a full disk) does not stop the history."""
    folder = tmp_path / "history"
    assert history.record(folder, SUMMARY, KEY, "predictions.db")
    damaged = evidently_compat.run_file(folder, history.PROJECT_ID, uuid.UUID(KEY[:32]))
    damaged.write_text(damaged.read_text()[:100])
    with pytest.raises(ValueError):
        kept_runs(folder)
    assert history.record(folder, SUMMARY | {"n_current": 400}, "cd" * 32, "predictions.db")
    damaged.unlink()
    assert [run.metadata["run_key"] for run in kept_runs(folder)] == ["cd" * 32]
