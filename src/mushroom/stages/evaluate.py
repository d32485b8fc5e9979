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
from mushroom.modeling import check_gate, classification_metrics
from mushroom.params import ParamsError, flatten, get, load_params, number

IMPORTANCE_ROWS = 2000  # permutation importance on a sample keeps the stage fast on 12k rows


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml", type=Path)
    parser.add_argument("--prepared", default="data/prepared", type=Path)
    parser.add_argument("--model", default="models/model.joblib", type=Path)
    parser.add_argument("--cv-metrics", default="reports/cv_metrics.json", type=Path)
    parser.add_argument("--metrics", default="reports/metrics.json", type=Path)
    parser.add_argument("--gate", default="reports/gate.json", type=Path)
    parser.add_argument("--plots", default="reports/plots", type=Path)
    parser.add_argument(
        "--skip-if-logged",
        action="store_true",
        help="do nothing if MLflow already has a run of exactly these inputs "
        "(make run uses it: DVC skips evaluate on a fresh clone whose "
        "committed reports already match)",
    )
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params)
        threshold = number(params, "evaluate.threshold", 0.0, 1.0)
        repeats = int(number(params, "evaluate.importance_repeats", 1, 50))
    except ParamsError as exc:
        print(f"evaluate: {exc}", file=sys.stderr)
        return 2
    digest = tracking.inputs_digest([args.prepared, args.model], params)
    if args.skip_if_logged and (run_id := tracking.find_run(digest)):
        print(f"evaluate: these inputs are already logged as MLflow run {run_id}")
        return 0
    test, schema = dataset.load_split(args.prepared, dataset.TEST_FILE)
    model = joblib.load(args.model)
    x, y = test[schema.features], dataset.label(test)
    p = model.predict_proba(x)[:, 1]
    y_pred = (p >= threshold).astype(int)
    metrics = classification_metrics(y, p, threshold)
    verdict = check_gate(metrics, params)
    metrics |= {"n_test": len(test), "threshold": threshold, "gate_passed": verdict["passed"]}
    table = importance_table(model, x, y, repeats, int(get(params, "prepare.seed")))

    with tempfile.TemporaryDirectory(dir=args.metrics.parent) as tmp:
        with Live(dir=tmp, dvcyaml=False, save_dvc_exp=False, report=None) as live:
            plots.log_evaluation(live, y, p, y_pred, table, metrics, threshold)
            live.summary |= {"dataset": schema.dataset, "split": schema.split}
        with atomic_dir(args.plots) as plots_tmp:
            shutil.copytree(Path(tmp) / "plots", plots_tmp, dirs_exist_ok=True)
        with atomic_path(args.metrics) as metrics_tmp:
            shutil.copyfile(Path(tmp) / "metrics.json", metrics_tmp)
    write_json(args.gate, verdict)
    cv_metrics = read_json(args.cv_metrics)
    run_id = tracking.log_evaluation(
        run_name=f"{params['train']['model']}-{params['featurize']['encoder']}-"
        f"{schema.dataset}-{schema.split}",
        tags={
            "dataset": schema.dataset,
            "split": schema.split,
            "inputs_sha256": digest,
        },
        params=flatten(params),
        metrics=metrics | flatten(cv_metrics),
        model=model,
        x_example=x.head(100),
        p_example=p[:100],
        artifacts={"reports": [args.metrics, args.gate, args.cv_metrics, args.plots]},
    )
    print(f"evaluate: MLflow run {run_id} in {tracking.tracking_uri()}")
    failed = [
        f"{c['metric']} {c['value']} > {c['limit']}" for c in verdict["checks"] if not c["passed"]
    ]
    outcome = "PASSED" if verdict["passed"] else "FAILED: " + "; ".join(failed)
    print(
        f"evaluate: accuracy {metrics['accuracy']:.4f}, false_edible {metrics['false_edible']} "
        f"of {int(y.sum())} poisonous; gate {outcome}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
