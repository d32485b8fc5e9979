"""evaluate: what the answering system's verdicts are worth, on the test split, pooled
over cross-validation folds, and on labelled answers when prepare joined them (``live``:
the live split; ``labelled``: all, for the gate); the behavioural safety suite; the
promotion gate; plots; and one MLflow run. Every figure names its split (``test``, ``cv``,
``live``, ``labelled``, ``safety``)."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from dvclive import Live
from sklearn.inspection import permutation_importance

from mushroom import dataset, plots, safety, tracking
from mushroom.bundle import load_bundle
from mushroom.evaluation import (
    as_sent_metrics,
    check_gate,
    cross_validated,
    failed_checks,
    judge_frame,
    labelled_metrics,
    verdict_metrics,
)
from mushroom.fitting import SingleClass
from mushroom.fsutil import atomic_dir, read_json, write_json
from mushroom.modeling import build_featurizer
from mushroom.params import ParamsError, flatten, load_params
from mushroom.stages import fail

IMPORTANCE_ROWS = 2000  # permutation importance on a sample keeps the stage fast on 12k rows


def importance_table(model, x: pd.DataFrame, y: np.ndarray, repeats: int, seed: int):
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", type=Path)
    parser.add_argument("--prepared", default="data/prepared", type=Path)
    parser.add_argument("--model", default="models/model.joblib", type=Path)
    parser.add_argument("--policy", default="models/policy.json", type=Path)
    parser.add_argument("--held-out", default="reports/held_out.json", type=Path)
    parser.add_argument("--metrics", default="reports/metrics.json", type=Path)
    parser.add_argument("--safety", default="reports/safety.json", type=Path)
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
    except ParamsError as exc:
        return fail("evaluate", exc)
    repeats, seed = params.evaluate.importance_repeats, params.prepare.seed
    digest = tracking.inputs_digest([args.prepared, args.model, args.policy], params)
    if args.skip_if_logged and (run_id := tracking.find_run(digest)):
        print(f"evaluate: these inputs are already logged as MLflow run {run_id}")
        return 0
    test, schema = dataset.load_split(args.prepared, dataset.TEST_FILE)
    train = pd.read_parquet(args.prepared / dataset.TRAIN_FILE)
    labelled = pd.read_parquet(args.prepared / dataset.LABELLED_FILE)
    bundle = load_bundle(args.model, args.policy)
    judge = bundle.judge()
    y = dataset.label(test)
    judgement = judge_frame(judge, test)
    try:
        featurizer = build_featurizer(params, schema.categorical)
        cv = cross_validated(train, schema, params, featurizer, dataset.read_species(args.prepared))
        test_figures = verdict_metrics(y, judgement) | {"as_sent": as_sent_metrics(judge, test)}
        metrics = {"test": {"split": schema.split} | test_figures, "cv": cv}
        metrics |= labelled_metrics(judge, labelled)
        report = safety.suite(judge, schema.catalogue, train, test, seed)
        gate = check_gate(metrics, safety.edible_counts(report), params)
    except SingleClass as exc:
        return fail("evaluate", f"{args.prepared / dataset.TRAIN_FILE}: {exc}")
    x = test[schema.features]
    table = importance_table(bundle.pipeline, x, y, repeats, seed)
    with tempfile.TemporaryDirectory(dir=args.metrics.parent) as tmp:
        with Live(dir=tmp, dvcyaml=False, save_dvc_exp=False, report=None) as live:
            plots.log_evaluation(live, y, judgement.probability, judgement.verdict, table)
        with atomic_dir(args.plots) as plots_tmp:
            shutil.copytree(Path(tmp) / "plots", plots_tmp, dirs_exist_ok=True)
    metrics |= {"dataset": schema.dataset, "gate_passed": gate["passed"]}
    write_json(args.metrics, metrics)
    write_json(args.safety, report)
    write_json(args.gate, gate)
    run_id = tracking.log_evaluation(
        run_name=f"{params.train.model}-{params.featurize.encoder}-{schema.dataset}-{schema.split}",
        tags={"dataset": schema.dataset, "split": schema.split, "inputs_sha256": digest},
        params=flatten(params.as_dict()),
        metrics=flatten(metrics | {"safety": report, "held_out": read_json(args.held_out)}),
        model=bundle.pipeline,
        x_example=x.head(100),
        p_example=judgement.probability[:100],
        artifacts={
            "reports": [args.metrics, args.safety, args.gate, args.held_out, args.plots],
            "policy": [args.policy],
        },
    )
    print(f"evaluate: MLflow run {run_id} in {tracking.tracking_uri()}")
    failed = failed_checks(gate)
    test_figures, labelled_figures = metrics["test"], metrics["labelled"]
    labelled_line = (
        f"labelled answers: {labelled_figures['false_edible']} of "
        f"{labelled_figures['poisonous']} poisonous answered edible; "
        if labelled_figures["rows"]
        else ""
    )
    print(
        f"evaluate: test: {test_figures['false_edible']} of {test_figures['poisonous']} poisonous "
        f"answered edible, coverage {test_figures['coverage']:.4f}; cv ({cv['scheme']}): false "
        f"edible rate {cv['false_edible_rate']:.4f}, coverage {cv['coverage']:.4f}; {labelled_line}"
        "gate " + ("PASSED" if gate["passed"] else "FAILED: " + "; ".join(failed))
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
