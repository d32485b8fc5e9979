"""Every use the project makes of Evidently's internals, behind one guarded door.

One patch: the drift history (``mushroom.monitoring.history``) writes the files of an
Evidently local workspace itself, in the layout ``evidently.ui.workspace.Workspace`` and
``evidently ui`` read, instead of recording through ``Workspace.add_run``. It is applied
only on the Evidently version it was written for (``WRITTEN_FOR``): on any other, each
function here raises ``UnsupportedVersion`` naming the library, the version found and the
version the patch was written for, before writing anything. Reading the history back goes
through Evidently's own ``Workspace`` API, and the runs are made with its public ``Report``,
``Snapshot.to_snapshot_model`` and ``evidently.widgets``: only the writing is patched.

Why not ``Workspace.add_run(project_id, run)`` with the run's key in its metadata, the
supported route (Evidently 0.7.23 source read):

- ``Workspace()`` parses every stored run when it opens (``create_local_project_manager``
  loads its state eagerly, ~0.5 ms a run): recording through it would cost more as the
  history grows.
- ``add_run`` draws a fresh id for every run, so telling a repeated judgement (the same
  window judged again: ``dvc repro -f``, a second ``check --live`` with no new answers)
  would mean reading every kept run's metadata too. Here a run's file name is its key.
- ``add_run`` writes the file in place. A run cut short (a full disk, a kill) stays, and
  ``Workspace()`` then refuses to open at all (it loads runs without skipping errors), so
  every later recording would fail too. Here each file is written whole or not at all.
  Written beside the folder and moved in: a running ``evidently ui`` watches the folder and
  takes a file renamed inside it for its old name, so a temporary sibling would hide the
  new run until a restart.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from mushroom.core.versions import require as guard

WRITTEN_FOR = {"evidently": "0.7.23"}
"""The distribution whose on-disk layout is written here, at the version it was read from."""


def require(patch: str) -> None:
    guard(patch, __name__, WRITTEN_FOR)


def run_file(folder: Path, project_id: uuid.UUID, run_id: uuid.UUID) -> Path:
    """Where the workspace ``folder`` keeps the run ``run_id`` of project ``project_id``."""
    require("run_file")
    from evidently.ui.storage.local.base import SNAPSHOTS_DIR_NAME

    return folder / str(project_id) / SNAPSHOTS_DIR_NAME / f"{run_id}.json"


def has_project(folder: Path, project_id: uuid.UUID) -> bool:
    require("has_project")
    from evidently.ui.storage.local.base import PROJECT_FILE_NAME

    return (folder / str(project_id) / PROJECT_FILE_NAME).exists()


def write_project(folder: Path, project: Any, dashboard: Any) -> None:
    """The ``ProjectModel`` ``project`` and its ``DashboardModel`` ``dashboard`` in the
    workspace ``folder``, each file whole."""
    require("write_project")
    from evidently.ui.storage.local.base import DASHBOARD_FILE_NAME, PROJECT_FILE_NAME

    where = folder / str(project.id)
    _write_whole(folder, where / PROJECT_FILE_NAME, project.json())
    _write_whole(folder, where / DASHBOARD_FILE_NAME, dashboard.json())


def write_run(folder: Path, project_id: uuid.UUID, run_id: uuid.UUID, model: Any) -> None:
    """The run ``model`` (a ``SnapshotModel``) as ``run_id`` of project ``project_id`` in the
    workspace ``folder``, whole or not at all."""
    require("write_run")
    _write_whole(folder, run_file(folder, project_id, run_id), model.json())


def _write_whole(folder: Path, path: Path, text: str) -> None:
    """``text`` at ``path`` in ``folder``: staged beside ``folder`` and renamed into place."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staged = folder.parent / f".{folder.name}-{uuid.uuid4().hex}.tmp"
    try:
        staged.write_text(text)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, path)
    finally:
        staged.unlink(missing_ok=True)
