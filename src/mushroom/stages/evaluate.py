"""evaluate: what the answering system's verdicts are worth, on the test split, pooled
over cross-validation folds, and on labelled answers when prepare joined them (``live``:
the live split; ``labelled``: all, for the gate); the behavioural safety suite; the
promotion gate; plots; and one MLflow run. Every figure names its split (``test``, ``cv``,
``live``, ``labelled``, ``safety``)."""

from __future__ import annotations

import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from dvclive import Live

from mushroom.core import paths
from mushroom.core.atomic import atomic_dir, read_json, write_json
from mushroom.core.params import Params, ParamsError, flatten, load_params
from mushroom.core.paths import mlflow_uri
from mushroom.data import prepared
from mushroom.lifecycle import tracking
from mushroom.model import plots, safety
from mushroom.model.bundle import load_bundle
from mushroom.model.estimators import build_featurizer
from mushroom.model.evaluation import (
    as_sent_metrics,
    check_gate,
    compared,
    cross_validated,
    importance_table,
    judge_frame,
    labelled_metrics,
    outcome,
    verdict_metrics,
)
from mushroom.model.fitting import SingleClass
from mushroom.stages import StageFailed, fail, files_of, stage_parser


@dataclass(frozen=True)
class Files:
    prepared: Path = paths.PREPARED
    model: Path = paths.MODEL
    policy: Path = paths.POLICY
    held_out: Path = paths.HELD_OUT
    metrics: Path = paths.METRICS
    safety: Path = paths.SAFETY
    gate: Path = paths.GATE
    summary: Path = paths.SUMMARY
    plots: Path = paths.PLOTS


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser(__doc__.splitlines()[0], Files)
    parser.add_argument(
        "--skip-if-logged",
        action="store_true",
        help="do nothing if MLflow already has a run of exactly these inputs "
        "(make run uses it: DVC skips evaluate on a fresh clone whose "
        "committed reports already match)",
    )
    args = parser.parse_args(argv)
    try:
        files = files_of(args, Files)
        run(load_params(args.params), files, args.skip_if_logged)
    except (ParamsError, StageFailed) as exc:
        return fail("evaluate", exc)
    return 0


def run(params: Params, files: Files, skip_if_logged: bool = False) -> None:
    digest = tracking.inputs_digest([files.prepared, files.model, files.policy], params)
    if skip_if_logged and (run_id := tracking.find_run(digest)):
        print(f"evaluate: these inputs are already logged as MLflow run {run_id}")
        return
    test, schema = prepared.load_split(files.prepared, prepared.TEST_FILE)
    bundle = load_bundle(files.model, files.policy)
    judge, y = bundle.judge(), prepared.label(test)
    judgement = judge_frame(judge, test)
    try:
        metrics, report, gate = judged(params, files, schema, judge, judgement, test)
    except SingleClass as exc:
        raise StageFailed(f"{files.prepared / prepared.TRAIN_FILE}: {exc}") from None
    x = test[schema.features]
    repeats, seed = params.evaluate.importance_repeats, params.prepare.seed
    table = importance_table(bundle.pipeline, x, y, repeats, seed)
    with tempfile.TemporaryDirectory(dir=files.metrics.parent) as tmp:
        with Live(dir=tmp, dvcyaml=False, save_dvc_exp=False, report=None) as live:
            plots.log_evaluation(live, y, judgement.probability, judgement.verdict, table)
        with atomic_dir(files.plots) as plots_tmp:
            shutil.copytree(Path(tmp) / "plots", plots_tmp, dirs_exist_ok=True)
    metrics |= {"dataset": schema.dataset, "gate_passed": gate["passed"]}
    write_json(files.metrics, metrics)
    write_json(files.safety, report)
    write_json(files.gate, gate)
    write_json(files.summary, compared(metrics, safety.edible_counts(report), gate))
    run_id = tracking.log_evaluation(
        run_name=f"{params.train.model}-{params.featurize.encoder}-{schema.dataset}-{schema.split}",
        tags={"dataset": schema.dataset, "split": schema.split, "inputs_sha256": digest},
        params=flatten(params.as_dict()),
        metrics=flatten(metrics | {"safety": report, "held_out": read_json(files.held_out)}),
        model=bundle.pipeline,
        x_example=x.head(100),
        p_example=judgement.probability[:100],
        artifacts={
            "reports": [
                *(files.summary, files.metrics, files.safety, files.gate, files.held_out),
                files.plots,
            ],
            "policy": [files.policy],
        },
    )
    print(f"evaluate: MLflow run {run_id} in {mlflow_uri()}")
    print(f"evaluate: {outcome(metrics, gate)}")


def judged(params: Params, files: Files, schema, judge, judgement, test: pd.DataFrame):
    """The figures of every split, the safety suite's report and the gate."""
    train = pd.read_parquet(files.prepared / prepared.TRAIN_FILE)
    labelled = pd.read_parquet(files.prepared / prepared.LABELLED_FILE)
    featurizer = build_featurizer(params, schema.categorical)
    cv = cross_validated(train, schema, params, featurizer, prepared.read_species(files.prepared))
    test_figures = verdict_metrics(prepared.label(test), judgement)
    test_figures |= {"as_sent": as_sent_metrics(judge, test)}
    metrics = {"test": {"split": schema.split} | test_figures, "cv": cv}
    metrics |= labelled_metrics(judge, labelled)
    report = safety.suite(judge, schema.catalogue, train, test, params.prepare.seed)
    return metrics, report, check_gate(metrics, safety.edible_counts(report), params)


if __name__ == "__main__":
    sys.exit(main())
