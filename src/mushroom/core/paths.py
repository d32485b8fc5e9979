"""Where the project's files are, defined once: the defaults every argument parser, stage,
the service and the tests use, and which project a command works on.

The relative paths are the project's layout, resolved against the directory a command runs
in: DVC runs stages at the project root (or in its temp copies), and the Makefile runs
everything there. The stores are found from ``project_root()``, never from where this code
is installed: a copy of a checkout may run code installed in another one.
"""

from __future__ import annotations

import os
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[3]
"""The checkout this code runs from (``src/mushroom/core/`` inside it), or a built bento,
whose ``bento.yaml`` is beside ``src/``. Which code serves, not which project."""

PARAMS = Path("params.yaml")
RAW = Path("data/raw")
PREPARED = Path("data/prepared")
FEATURES = Path("data/features")
FEEDBACK = Path("data/feedback/labelled.parquet")
"""The labelled answers ``mushroom feedback export`` took (dvc add-ed)."""
SNAPSHOT = Path("data/monitoring/window.parquet")
"""The drift window ``mushroom monitor snapshot`` froze for the drift stage (dvc add-ed)."""
LIVE = Path("data/live")
"""What the service writes while serving, and what judging it writes (drift reports, their
history): outside every DVC dependency and git, so answers logged while serving leave
`dvc status` clean."""
PREDICTION_LOG = LIVE / "predictions.db"
LIVE_DRIFT = LIVE / "drift.json"
HISTORY = LIVE / "history"
"""The Evidently workspace every drift run is kept in."""

MODELS = Path("models")
FEATURIZER = MODELS / "featurizer.joblib"
MODEL = MODELS / "model.joblib"
POLICY = MODELS / "policy.json"
TRAIN_INFO = MODELS / "train_info.json"

REPORTS = Path("reports")
DATA_SUMMARY = REPORTS / "data_summary.json"
HELD_OUT = REPORTS / "held_out.json"
METRICS = REPORTS / "metrics.json"
SAFETY = REPORTS / "safety.json"
GATE = REPORTS / "gate.json"
SUMMARY = REPORTS / "summary.json"
"""The figures people compare across runs: DVC's one metrics file."""
PLOTS = REPORTS / "plots"
DRIFT_JSON = REPORTS / "drift.json"
DRIFT_HTML = REPORTS / "drift.html"

MLFLOW_STORE = "mlflow.db"
BENTOML_HOME = ".bentoml"


def project_root(start: Path | None = None) -> Path:
    """The project a command works on: the nearest directory at or above ``start`` (the
    working directory) holding ``dvc.yaml``, or ``start`` itself when none does.
    ``dvc exp run --temp`` and queued runs execute in copies under
    ``<repo>/.dvc/tmp/exps/``: theirs is the ``<repo>`` above that ``.dvc``."""
    here = (start or Path.cwd()).resolve()
    parts = here.parts
    for index in range(len(parts) - 2):
        if parts[index : index + 3] == (".dvc", "tmp", "exps"):
            return Path(*parts[:index])
    for folder in (here, *here.parents):
        if (folder / "dvc.yaml").is_file():
            return folder
    return here


def mlflow_uri() -> str:
    """The MLflow store: ``MLFLOW_TRACKING_URI`` when set, else the project's SQLite file.
    Tracking, promotion, rollback and the service's champion all read it here."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{project_root() / MLFLOW_STORE}"


def bentoml_home() -> Path:
    """The BentoML store: ``BENTOML_HOME`` when set, else the project's own. BentoML's
    default, ~/bentoml, is shared by every clone: one served another clone's model, whose
    run is not in its mlflow.db."""
    return Path(os.environ.get("BENTOML_HOME") or project_root() / BENTOML_HOME)


def read_only_uri(path: str | Path) -> str:
    """SQLite's URI for reading ``path``: percent-encoded, so a ``#`` or ``?`` in a file
    name stays part of the path instead of starting a fragment or a query."""
    return f"{Path(path).absolute().as_uri()}?mode=ro"
