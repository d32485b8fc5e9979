"""The ``mushroom`` command: batch scoring, promotion, monitoring.

mushroom predict INPUT.csv -o OUTPUT.csv [--model TAG] [--passthrough COLUMN ...]
mushroom promote [--reason TEXT] [--log PATH]   (replays the prediction log first)
mushroom rollback [--to VERSION] --reason TEXT
mushroom history [--json]
mushroom monitor snapshot [--log PATH] [--out data/monitoring/window.parquet] [--no-dvc]
mushroom monitor check [--report reports/drift.json] [--live [--log PATH]] [--history PATH]
mushroom monitor history [--history data/live/history]
mushroom feedback export [--log PATH] [--out data/feedback/labelled.parquet] [--no-dvc]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from mushroom import feedback, history
from mushroom.batch import predict
from mushroom.feedback import FEEDBACK_PATH
from mushroom.history import HISTORY_PATH
from mushroom.monitoring import SNAPSHOT_PATH, write_snapshot
from mushroom.predlog import LIVE_DIR, LogUnavailable, log_path

HEALTHY, DATASET_DRIFT, PREDICTION_DRIFT, LABELLED_FALSE_EDIBLE = 0, 3, 4, 5
"""``mushroom monitor check`` exit codes; with several findings, the most severe (highest)."""
LIVE_REPORT = LIVE_DIR / "drift.json"
"""Where ``mushroom monitor check --live`` reports, beside the live log, outside DVC."""


def monitor_snapshot(args: argparse.Namespace) -> int:
    """The live log's answers and labels into the snapshot the drift stage judges, then
    ``dvc add``-ed, so committing its .dvc file and ``dvc push`` version the window."""
    try:
        rows = write_snapshot(args.log or log_path(), args.out)
    except LogUnavailable as exc:
        print(f"mushroom monitor snapshot: {exc}", file=sys.stderr)
        return 2
    print(f"mushroom monitor snapshot: {rows} answers into {args.out}")
    return 0 if args.no_dvc else dvc_add("mushroom monitor snapshot", args.out, "dvc repro drift")


def dvc_add(command: str, path: Path, then: str) -> int:
    """``dvc add path``, and what to do next, for a dataset a command just wrote."""
    done = subprocess.run(
        [sys.executable, "-m", "dvc", "add", "--quiet", str(path)],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        error = (done.stderr or done.stdout).strip().splitlines()
        print(f"{command}: dvc add {path}: {error[-1]}", file=sys.stderr)
        return 2
    print(f"next: git add {path}.dvc && git commit && dvc push && {then}")
    return 0


def feedback_export(args: argparse.Namespace) -> int:
    """The live log's labelled answers into the feedback dataset, then ``dvc add``-ed."""
    try:
        added, total = feedback.export(args.log or log_path(), args.out)
    except (LogUnavailable, feedback.FeedbackError) as exc:
        print(f"mushroom feedback export: {exc}", file=sys.stderr)
        return 2
    print(f"mushroom feedback export: {added} new labelled answers, {total} in all, in {args.out}")
    if args.no_dvc:
        return 0
    then = "dvc exp run -S prepare.feedback.use=true (or set it in params.yaml)"
    return dvc_add("mushroom feedback export", args.out, then)


def monitor_live(args: argparse.Namespace) -> int:
    """The drift stage's computation on the live log, into a report outside DVC."""
    from mushroom.stages import drift

    log = str(args.log or log_path())
    html = args.report.with_suffix(".html")
    outputs = ["--json", str(args.report), "--html", str(html), "--history", str(args.history)]
    return drift.main(["--log", log, *outputs])


def monitor_check(args: argparse.Namespace) -> int:
    """One line per finding of the drift stage's report; the exit code says the worst."""
    if args.log and not args.live:
        print("mushroom monitor check: --log names the live log of --live", file=sys.stderr)
        return 2
    if args.live:
        args.report = args.report or LIVE_REPORT
        if monitor_live(args):
            return 2
    args.report = args.report or Path("reports/drift.json")
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
        findings.append(
            (PREDICTION_DRIFT, f"prediction drift: score {report['prediction_drift_score']:.3g}")
        )
    if report.get("unfamiliar_alarm"):
        findings.append(
            (
                DATASET_DRIFT,
                f"{report['unfamiliar_share']:.1%} of descriptions are unlike the training "
                f"mushrooms (training split: {report['reference_unfamiliar_share']:.1%})",
            )
        )
    if report.get("dataset_drift"):
        scores = report.get("column_scores", {})
        drifted = [f"{c} {scores[c]:.3g}" if c in scores else c for c in report["drifted_columns"]]
        findings.append(
            (
                DATASET_DRIFT,
                f"dataset drift: {report['drift_share']:.0%} of traits "
                f"drifted ({', '.join(drifted)})",
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
    command.add_argument("--log", type=Path, help=f"the live log (default {log_path()})")
    command.add_argument("--out", type=Path, default=default_out)
    command.add_argument("--no-dvc", action="store_true", help="do not dvc add what is written")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mushroom", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    scoring = commands.add_parser("predict", help="score a CSV file of mushrooms")
    scoring.add_argument("input", type=Path, help="CSV: one mushroom per row, trait columns")
    scoring.add_argument("-o", "--output", type=Path, required=True)
    scoring.add_argument(
        "--model", help="BentoML model store tag (default: what the service serves, the champion)"
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
        "--report", type=Path, help=f"default reports/drift.json; with --live {LIVE_REPORT}"
    )
    check.add_argument(
        "--live", action="store_true", help="judge the live log first (the drift stage's way)"
    )
    check.add_argument("--log", type=Path, help=f"the live log (default {log_path()})")
    kept_in = f"the Evidently workspace every drift run is kept in (default {HISTORY_PATH})"
    check.add_argument("--history", type=Path, default=HISTORY_PATH, help=f"with --live: {kept_in}")
    trend = monitor.add_parser("history", help="every drift run kept, oldest first")
    trend.add_argument("--history", type=Path, default=HISTORY_PATH, help=kept_in)
    log_to_dataset(
        monitor.add_parser(
            "snapshot",
            help="copy the live log into the window the drift stage judges, and dvc add it",
        ),
        SNAPSHOT_PATH,
    )
    labels = commands.add_parser("feedback", help="labelled answers").add_subparsers(
        dest="action", required=True
    )
    log_to_dataset(
        labels.add_parser(
            "export",
            help="add the live log's labelled answers to the feedback dataset, and dvc add it",
        ),
        FEEDBACK_PATH,
    )
    args, rest = parser.parse_known_args(argv)
    if args.command == "promote":
        from mushroom import promote

        return promote.main(rest)
    if args.command in ("rollback", "history"):
        from mushroom import registry

        return (registry.rollback_main if args.command == "rollback" else registry.history_main)(
            rest
        )
    if rest:
        parser.error(f"unrecognised arguments: {' '.join(rest)}")
    if args.command == "monitor":
        actions = {"snapshot": monitor_snapshot, "check": monitor_check, "history": monitor_history}
        return actions[args.action](args)
    if args.command == "feedback":
        return feedback_export(args)
    return predict(args)


if __name__ == "__main__":
    sys.exit(main())
