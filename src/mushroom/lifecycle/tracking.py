"""MLflow tracking: one store per project, shared by the workspace and DVC's temp copies."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

from mushroom.core.params import Params
from mushroom.core.paths import mlflow_uri, project_root
from mushroom.lifecycle.registry import for_mlflow

EXPERIMENT = "mushroom"


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


PIPELINE_SECTIONS = ("data", "prepare", "featurize", "train", "evaluate")


def inputs_digest(paths: list[Path], params: Params) -> str:
    """sha256 identifying a trained and evaluated model: the files' names and contents (a
    directory: its files, sorted) and the params of the pipeline stages. Sections that do
    not shape the model (serve, drift) are left out, so changing them keeps the identity."""
    digest = hashlib.sha256()
    pipeline_params = {k: v for k, v in params.as_dict().items() if k in PIPELINE_SECTIONS}
    digest.update(json.dumps(pipeline_params, sort_keys=True, default=str).encode())
    for root in paths:
        root = Path(root)
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for file in files:
            name = file.relative_to(root.parent)  # the same wherever the checkout lives
            digest.update(str(name).encode() + b"\0")
            digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()


def artifact_root(uri: str) -> str | None:
    """Where a new experiment keeps its artifacts: ``mlruns/<experiment>/`` beside a local
    SQLite store, or in the project for a database store (PostgreSQL); an ``mlflow server``
    (``http://``) decides itself (its ``--artifacts-destination``). MLflow's default is
    ``./mlruns`` of whatever directory first creates the experiment: a ``dvc exp run
    --temp`` copy that is deleted afterwards, or the checkout a test happened to run from."""
    prefix = "sqlite:///"
    if uri.startswith(prefix):
        return str(Path(uri.removeprefix(prefix)).parent / "mlruns" / EXPERIMENT)
    if uri.startswith(("http://", "https://")):
        return None
    return str(project_root() / "mlruns" / EXPERIMENT)


def configure():
    """Import MLflow pointed at the project store; returns the module."""
    import mlflow

    uri = mlflow_uri()
    mlflow.set_tracking_uri(for_mlflow(uri))
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        mlflow.create_experiment(EXPERIMENT, artifact_location=artifact_root(uri))
    mlflow.set_experiment(EXPERIMENT)
    return mlflow


def find_run(inputs_sha256: str) -> str | None:
    """The id of a finished run logged from exactly these inputs, if any."""
    mlflow = configure()
    runs = mlflow.search_runs(
        filter_string=f"tags.inputs_sha256 = '{inputs_sha256}' and attributes.status = 'FINISHED'",
        output_format="list",
        max_results=1,
    )
    return runs[0].info.run_id if runs else None


def log_evaluation(
    *,
    run_name: str,
    tags: dict[str, str],
    params: dict,
    metrics: dict,
    model,
    x_example,
    p_example,
    artifacts: dict[str, list[Path]],
) -> str:
    """One MLflow run per train+evaluate: params, metrics, artifacts and the model."""
    mlflow = configure()
    from mlflow.models import infer_signature

    with mlflow.start_run(run_name=run_name) as run:
        mlflow.set_tags(tags | {"git_commit": git_commit()})
        mlflow.log_params(params)
        mlflow.log_metrics(
            {
                k: v
                for k, v in metrics.items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            }
        )
        for artifact_path, paths in artifacts.items():
            for path in paths:
                if path.is_dir():
                    mlflow.log_artifacts(str(path), artifact_path=f"{artifact_path}/{path.name}")
                else:
                    mlflow.log_artifact(str(path), artifact_path=artifact_path)
        # skops, MLflow's default format, refuses category_encoders' classes.
        mlflow.sklearn.log_model(
            model,
            name="model",
            serialization_format="cloudpickle",
            input_example=x_example.head(3),
            signature=infer_signature(x_example, p_example),
        )
        return run.info.run_id
