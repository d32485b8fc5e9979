"""The ``mushroom`` command: batch scoring, promotion, monitoring.

mushroom predict INPUT.csv -o OUTPUT.csv [--model TAG] [--passthrough COLUMN ...]
mushroom predict INPUT.csv|INPUT.parquet -o OUTPUT.csv --engine spark [--model-uri URI] [...]
mushroom promote [--reason TEXT] [--log PATH|URL]   (replays the prediction log first)
mushroom rollback [--to VERSION] --reason TEXT
mushroom history [--json]
mushroom monitor snapshot [--log PATH|URL] [--out data/monitoring/window.parquet] [--no-dvc]
mushroom monitor check [--report reports/drift.json] [--live [--log PATH|URL]] [--history PATH]
mushroom monitor history [--history data/live/history]
mushroom feedback export [--log PATH|URL] [--out data/feedback/labelled.parquet] [--no-dvc]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from mushroom.core import paths
from mushroom.core.atomic import OutputRefused, check_replaceable
from mushroom.data import feedback
from mushroom.data.log_reading import write_snapshot
from mushroom.data.prediction_log import (
    LOG_HELP,
    LogUnavailable,
    location,
    log_location,
)
from mushroom.monitoring import history
from mushroom.serving.csv_scoring import predict

HEALTHY, DATASET_DRIFT, PREDICTION_DRIFT, LABELLED_FALSE_EDIBLE = 0, 3, 4, 5
"""``mushroom monitor check`` exit codes; with several findings, the most severe (highest)."""


def monitor_snapshot(args: argparse.Namespace) -> int:
    """The live log's answers and labels into the snapshot the drift stage judges, then
    ``dvc add``-ed, so committing its .dvc file and ``dvc push`` version the window."""
    try:
        check_replaceable(args.out)
        rows = write_snapshot(args.log or log_location(), args.out)
    except (LogUnavailable, OutputRefused) as exc:
        print(f"mushroom monitor snapshot: {exc}", file=sys.stderr)
        return 2
    print(f"mushroom monitor snapshot: {rows} answers into {args.out}")
    return 0 if args.no_dvc else dvc_add("mushroom monitor snapshot", args.out, "dvc repro drift")


def dvc_add(command: str, path: Path, then: str) -> int:
    """``dvc add path``, and what to do next, for a dataset a command just wrote. A path
    outside the project is written and left alone: DVC versions files of its project only."""
    project = paths.project_root()
    if not (project / ".dvc").is_dir():
        print(f"{command}: {path}: written, not dvc add-ed: {project} is no DVC project")
        return 0
    if not path.absolute().is_relative_to(project):
        print(f"{command}: {path}: written, not dvc add-ed: outside the DVC project {project}")
        return 0
    done = subprocess.run(
        [sys.executable, "-m", "dvc", "add", str(path)], capture_output=True, text=True
    )
    if done.returncode:
        error = (done.stderr or done.stdout).strip().splitlines() or [f"exit {done.returncode}"]
        print(f"{command}: dvc add {path}: {error[-1]}", file=sys.stderr)
        return 2
    print(f"next: git add {path}.dvc && git commit && dvc push && {then}")
    return 0


def feedback_export(args: argparse.Namespace) -> int:
    """The live log's labelled answers into the feedback dataset, then ``dvc add``-ed."""
    try:
        check_replaceable(args.out)
        done = feedback.export(args.log or log_location(), args.out)
    except (LogUnavailable, feedback.FeedbackError, OutputRefused) as exc:
        print(f"mushroom feedback export: {exc}", file=sys.stderr)
        return 2
    relabelled = (
        f", {done.made_poisonous} made poisonous by a later label" if done.made_poisonous else ""
    )
    print(
        f"mushroom feedback export: {done.added} new labelled answers{relabelled}, "
        f"{done.total} in all, in {args.out}"
    )
    if args.no_dvc:
        return 0
    then = "dvc exp run -S prepare.feedback.use=true (or set it in params.yaml)"
    return dvc_add("mushroom feedback export", args.out, then)


def monitor_live(args: argparse.Namespace) -> int:
    """The drift stage's computation on the live log, judged by the model that answered it
    (the served champion), into a report outside DVC."""
    # here, not at the top: every other command starts without sklearn, pydantic, Evidently
    from mushroom.core.params import ParamsError, load_params
    from mushroom.data.prepared import read_schema
    from mushroom.model.bundle import read_policy
    from mushroom.stages import StageFailed, drift

    model, policy, which = judging_model()
    print(f"mushroom monitor check: judged with {which}")
    files = drift.Files(
        model=model,
        policy=policy,
        log=args.log or log_location(),
        json=args.report,
        html=args.report.with_suffix(".html"),
        history=args.history,
    )
    try:
        try:
            dataset = read_policy(policy)["dataset"]
        except (OSError, ValueError, KeyError) as exc:  # OutdatedBundle is a ValueError too
            raise StageFailed(f"{policy}: no policy this code can judge with: {exc}") from None
        prepared_for = read_schema(files.prepared).dataset
        if dataset != prepared_for:
            raise StageFailed(
                f"{which} was trained on the {dataset} data, {files.prepared} holds the "
                f"{prepared_for} data: prepare the champion's dataset (dvc repro prepare)"
            )
        drift.run(load_params(paths.PARAMS).drift, files)
    except (ParamsError, LogUnavailable, StageFailed) as exc:
        print(f"mushroom monitor check: {exc}", file=sys.stderr)
        return 2
    return 0


def judging_model() -> tuple[Path, Path, str]:
    """The served champion's model and policy, as the service judged the logged answers;
    the workspace's, said so, when no champion is found."""
    import bentoml

    from mushroom.lifecycle.champion import NoChampion, select
    from mushroom.lifecycle.store_names import MODEL_FILE, POLICY_FILE

    try:
        tag = select().tag
        folder = Path(bentoml.models.get(tag).path)
    except (NoChampion, bentoml.exceptions.NotFound) as exc:
        return paths.MODEL, paths.POLICY, f"the workspace model {paths.MODEL} (no champion: {exc})"
    return folder / MODEL_FILE, folder / POLICY_FILE, f"the champion {tag}"


def monitor_check(args: argparse.Namespace) -> int:
    """One line per finding of the drift stage's report; the exit code says the worst."""
    if args.log and not args.live:
        print("mushroom monitor check: --log names the live log of --live", file=sys.stderr)
        return 2
    if args.live:
        args.report = args.report or paths.LIVE_DRIFT
        if monitor_live(args):
            return 2
    args.report = args.report or paths.DRIFT_JSON
    try:
        report = json.loads(args.report.read_text())
    except (OSError, ValueError) as exc:
        print(f"mushroom monitor check: cannot read {args.report}: {exc}", file=sys.stderr)
        return 2
    findings = []
    if report.get("live_false_edible"):
        findings.append(
            (
                LABELLED_FALSE_EDIBLE,
                f"{report['live_false_edible']} labelled "
                f"poisonous mushroom(s) were answered edible",
            )
        )
    if report.get("prediction_drift"):
        findings.append((PREDICTION_DRIFT, f"prediction drift: {prediction_drift(report)}"))
    if report.get("unfamiliar_alarm"):
        findings.append(
            (
                DATASET_DRIFT,
                f"{report['unfamiliar_share']:.1%} of descriptions are unlike the training "
                f"mushrooms, above drift.max_unfamiliar_share "
                f"{report['thresholds']['unfamiliar']:.1%} (training split: "
                f"{report['reference_unfamiliar_share']:.1%})",
            )
        )
    if report.get("dataset_drift"):
        scores = report.get("column_scores", {})
        drifted = [f"{c} {scores[c]:.3g}" if c in scores else c for c in report["drifted_columns"]]
        findings.append(
            (
                DATASET_DRIFT,
                f"dataset drift: {report['drift_share']:.0%} of traits drifted, more than "
                f"drift.share_threshold {report['thresholds']['share']:.0%} "
                f"({', '.join(drifted)})",
            )
        )
    source = f"source {report['source']} ({report.get('current', report['n_current'])})"
    for _, line in findings:
        print(f"ALERT {line} [{source}]")
    if not report.get("drift_judged", True):
        print(f"NOTE drift not judged: {report['reason']} [{source}]")
    if not findings:
        print(f"OK no alarm [{source}]")
    return max((code for code, _ in findings), default=HEALTHY)


def prediction_drift(report: dict) -> str:
    """Which of the answers' figures moved, each with its score and the threshold it met."""
    threshold, scores = report["thresholds"]["prediction"], report["column_scores"]
    named = {"probability": "P(poisonous)", "verdict": "verdicts"}
    return "; ".join(
        f"{named[column]} score {scores[column]:.3g} "
        + (">=" if scores[column] >= threshold else "<")
        + f" drift.prediction_threshold {threshold:.3g}"
        for column in named
    )


def monitor_history(args: argparse.Namespace) -> int:
    """Every kept drift run, oldest first: the trend without the UI."""
    try:
        kept = history.runs(args.history)
    except history.HistoryError as exc:
        print(f"mushroom monitor history: {exc}", file=sys.stderr)
        return 2
    if not kept:
        print(f"mushroom monitor history: no drift run kept in {args.history} yet")
        return 0
    print("\n".join(history.table(kept)))
    print(f"plotted by: DO_NOT_TRACK=true evidently ui --workspace {args.history}")
    return 0


def log_to_dataset(command: argparse.ArgumentParser, default_out: Path) -> None:
    """The options of a command that writes what the live log holds into a DVC dataset."""
    command.add_argument("--log", type=location, help=LOG_HELP)
    command.add_argument(
        "--out", type=Path, default=default_out, help="the file written (default %(default)s)"
    )
    command.add_argument("--no-dvc", action="store_true", help="do not dvc add what is written")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mushroom", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    scoring = commands.add_parser("predict", help="score a CSV (or Parquet) file of mushrooms")
    scoring.add_argument(
        "input",
        type=Path,
        help="CSV: one mushroom per row, trait columns; with --engine spark also .parquet",
    )
    scoring.add_argument(
        "-o", "--output", type=Path, required=True, help="the CSV file the answers are written to"
    )
    scoring.add_argument(
        "--engine",
        choices=("in-process", "spark"),
        default="in-process",
        help="in-process (default), or spark: the registered MLflow model on a local Spark",
    )
    scoring.add_argument(
        "--model", help="BentoML model store tag (default: what the service serves, the champion)"
    )
    scoring.add_argument(
        "--model-uri",
        help="with --engine spark: an MLflow model URI (default: the registry's champion, "
        "models:/mushroom-classifier@champion)",
    )
    scoring.add_argument(
        "--passthrough",
        nargs="*",
        default=[],
        metavar="COLUMN",
        help="columns copied to the output unvalidated, e.g. a known class",
    )
    commands.add_parser(
        "promote", help="promote the model dvc repro produced (see --help)", add_help=False
    )
    commands.add_parser(
        "rollback", help="move the champion alias back (see --help)", add_help=False
    )
    commands.add_parser("history", help="every move of the champion alias", add_help=False)
    monitor = commands.add_parser("monitor", help="monitoring").add_subparsers(
        dest="action", required=True
    )
    exits = (
        f"exit {HEALTHY}: healthy, {DATASET_DRIFT}: dataset drift or unfamiliar "
        f"descriptions, {PREDICTION_DRIFT}: "
        f"prediction drift, {LABELLED_FALSE_EDIBLE}: a labelled false edible"
    )
    check = monitor.add_parser(
        "check",
        help="alert on the drift stage's findings",
        description=f"One line per finding; {exits}.",
    )
    check.add_argument(
        "--report", type=Path, help=f"default {paths.DRIFT_JSON}; with --live {paths.LIVE_DRIFT}"
    )
    check.add_argument(
        "--live", action="store_true", help="judge the live log first (the drift stage's way)"
    )
    check.add_argument("--log", type=location, help=LOG_HELP)
    kept_in = f"the Evidently workspace of every drift run (default {paths.HISTORY})"
    check.add_argument(
        "--history", type=Path, default=paths.HISTORY, help=f"with --live: {kept_in}"
    )
    trend = monitor.add_parser("history", help="every drift run kept, oldest first")
    trend.add_argument("--history", type=Path, default=paths.HISTORY, help=kept_in)
    log_to_dataset(
        monitor.add_parser(
            "snapshot",
            help="copy the live log into the window the drift stage judges, and dvc add it",
        ),
        paths.SNAPSHOT,
    )
    labels = commands.add_parser("feedback", help="labelled answers").add_subparsers(
        dest="action", required=True
    )
    log_to_dataset(
        labels.add_parser(
            "export",
            help="add the live log's labelled answers to the feedback dataset, and dvc add it",
        ),
        paths.FEEDBACK,
    )
    args, rest = parser.parse_known_args(argv)
    if args.command == "promote":
        from mushroom.lifecycle import promotion
        from mushroom.serving.mlflow_model import log_judgement

        return promotion.main(rest, log_judgement)
    if args.command in ("rollback", "history"):
        from mushroom.lifecycle import alias_moves

        return (
            alias_moves.rollback_main if args.command == "rollback" else alias_moves.history_main
        )(rest)
    if rest:
        parser.error(f"unrecognised arguments: {' '.join(rest)}")
    if args.command == "monitor":
        actions = {"snapshot": monitor_snapshot, "check": monitor_check, "history": monitor_history}
        return actions[args.action](args)
    if args.command == "feedback":
        return feedback_export(args)
    if args.model_uri if args.engine == "in-process" else args.model:
        parser.error(
            "--model is a BentoML store tag, for the in-process engine; "
            "--model-uri an MLflow model URI, for --engine spark"
        )
    if args.engine == "spark":
        from mushroom.serving.spark_scoring import predict_on_spark

        return predict_on_spark(args)
    return predict(args)


if __name__ == "__main__":
    sys.exit(main())
