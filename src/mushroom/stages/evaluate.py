"""evaluate: test-split metrics, the false-edible gate, plots, and the MLflow run."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from dvclive import Live
from sklearn.inspection import permutation_importance

from mushroom import dataset, plots, tracking
from mushroom.fsutil import atomic_dir, atomic_path, read_json, write_json
from mushroom.modeling import classification_metrics
from mushroom.params import ParamsError, flatten, get, load_params, number

IMPORTANCE_ROWS = 2000  # permutation importance on a sample keeps the stage fast on 12k rows


def gate(metrics: dict, params: dict) -> dict:
    checks = []
    for metric, limit_key in (
        ("false_edible", "max_false_edible"),
        ("false_edible_rate", "max_false_edible_rate"),
    ):
        limit = get(params, f"evaluate.gate.{limit_key}")
        checks.append(
            {
                "metric": metric,
                "value": metrics[metric],
                "limit": limit,
                "passed": metrics[metric] <= limit,
                "excess": max(0, metrics[metric] - limit),
            }
        )
    return {
        "passed": all(c["passed"] for c in checks),
        "threshold": get(params, "evaluate.threshold"),
        "checks": checks,
    }


def importance_table(
    model, x: pd.DataFrame, y: np.ndarray, repeats: int, seed: int
) -> pd.DataFrame:
    if len(x) > IMPORTANCE_ROWS:
        keep = np.random.default_rng(seed).choice(len(x), IMPORTANCE_ROWS, replace=False)
        x, y = x.iloc[keep], y[keep]
    result = permutation_importance(
        model, x, y, scoring="neg_brier_score", n_repeats=repeats, random_state=seed, n_jobs=1
    )
    return pd.DataFrame(
        {
            "trait": x.columns,
            "importance": result.importances_mean.round(6),
            "std": result.importances_std.round(6),
        }
    ).sort_values("importance", ascending=False)


def log_dvclive(live: Live, y, p, y_pred, table: pd.DataFrame, metrics: dict, threshold: float):
    names = np.array(plots.CLASS_NAMES)
    live.log_sklearn_plot("confusion_matrix", names[y], names[y_pred], name="confusion_matrix.json")
    live.log_sklearn_plot("roc", y, p, name="roc.json")
    live.log_sklearn_plot("precision_recall", y, p, name="precision_recall.json")
    live.log_sklearn_plot("calibration", y, p, name="calibration.json")
    live.log_plot(
        "feature_importance",
        table[["trait", "importance"]],
        x="importance",
        y="trait",
        template="bar_horizontal",
        title="Permutation importance",
    )
    for name, figure in (
        ("confusion_matrix.png", plots.confusion(y, y_pred, threshold)),
        ("roc.png", plots.roc(y, p, metrics["roc_auc"])),
        ("precision_recall.png", plots.precision_recall(y, p, metrics["pr_auc"])),
        ("calibration.png", plots.calibration(y, p)),
        ("feature_importance.png", plots.importance(table)),
    ):
        live.log_image(name, figure)
    for name, value in metrics.items():
        live.log_metric(name, value, plot=False)


def log_mlflow(
    params,
    metrics,
    cv_metrics,
    model,
    x_test,
    p_test,
    plots_dir: Path,
    reports: list[Path],
    inputs: list[Path],
    schema,
) -> str:
    mlflow = tracking.configure()
    from mlflow.models import infer_signature

    name = "-".join(
        [params["train"]["model"], params["featurize"]["encoder"], schema.dataset, schema.split]
    )
    with mlflow.start_run(run_name=name) as run:
        mlflow.set_tags(
            {
                "git_commit": tracking.git_commit(),
                "dataset": schema.dataset,
                "split": schema.split,
                "inputs_sha256": tracking.inputs_digest(inputs),
            }
        )
        mlflow.log_params(flatten(params))
        mlflow.log_metrics({k: v for k, v in metrics.items() if isinstance(v, int | float)})
        mlflow.log_metrics(
            {
                k: v
                for k, v in flatten(cv_metrics).items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            }
        )
        mlflow.log_artifacts(str(plots_dir), artifact_path="plots")
        for report in reports:
            mlflow.log_artifact(str(report), artifact_path="reports")
        mlflow.sklearn.log_model(
            model,
            name="model",
            input_example=x_test.head(3),
            signature=infer_signature(x_test.head(100), p_test[:100]),
        )
        return run.info.run_id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--prepared", default="data/prepared", type=Path)
    parser.add_argument("--model", default="models/model.joblib", type=Path)
    parser.add_argument("--cv-metrics", default="reports/cv_metrics.json", type=Path)
    parser.add_argument("--metrics", default="reports/metrics.json", type=Path)
    parser.add_argument("--gate", default="reports/gate.json", type=Path)
    parser.add_argument("--plots", default="reports/plots", type=Path)
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params)
        threshold = number(params, "evaluate.threshold", 0.0, 1.0)
        repeats = int(number(params, "evaluate.importance_repeats", 1, 50))
    except ParamsError as exc:
        print(f"evaluate: {exc}", file=sys.stderr)
        return 2
    test, schema = dataset.load_split(args.prepared, dataset.TEST_FILE)
    model = joblib.load(args.model)
    x, y = test[schema.features], dataset.label(test)
    p = model.predict_proba(x)[:, 1]
    y_pred = (p >= threshold).astype(int)
    metrics = classification_metrics(y, p, threshold)
    verdict = gate(metrics, params)
    metrics |= {"n_test": len(test), "threshold": threshold, "gate_passed": verdict["passed"]}
    table = importance_table(model, x, y, repeats, int(get(params, "prepare.seed")))

    with tempfile.TemporaryDirectory(dir=args.metrics.parent) as tmp:
        with Live(dir=tmp, dvcyaml=False, save_dvc_exp=False, report=None) as live:
            log_dvclive(live, y, p, y_pred, table, metrics, threshold)
            live.summary |= {"dataset": schema.dataset, "split": schema.split}
        with atomic_dir(args.plots) as plots_tmp:
            shutil.copytree(Path(tmp) / "plots", plots_tmp, dirs_exist_ok=True)
        with atomic_path(args.metrics) as metrics_tmp:
            shutil.copyfile(Path(tmp) / "metrics.json", metrics_tmp)
    write_json(args.gate, verdict)
    run_id = log_mlflow(
        params,
        metrics,
        read_json(args.cv_metrics),
        model,
        x,
        p,
        args.plots,
        [args.metrics, args.gate, args.cv_metrics],
        [args.prepared, args.model, Path(args.params)],
        schema,
    )
    print(f"evaluate: MLflow run {run_id} in {tracking.tracking_uri()}")
    failed = [
        f"{c['metric']} {c['value']} > {c['limit']}" for c in verdict["checks"] if not c["passed"]
    ]
    print(
        f"evaluate: accuracy {metrics['accuracy']:.4f}, false_edible {metrics['false_edible']} "
        f"of {int(y.sum())} poisonous; gate {outcome}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
