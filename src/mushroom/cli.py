"""The ``mushroom`` command: batch scoring, promotion, monitoring.

mushroom predict INPUT.csv -o OUTPUT.csv [--model TAG] [--passthrough COLUMN ...]
mushroom promote
mushroom monitor check [--report reports/drift.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd
from pydantic import ValidationError

from mushroom.fsutil import write_with
from mushroom.modelstore import DEFAULT_TAG

CHUNK = 1000
HEALTHY, DATASET_DRIFT, PREDICTION_DRIFT, LABELLED_FALSE_EDIBLE = 0, 3, 4, 5
"""``mushroom monitor check`` exit codes; with several findings, the most severe (highest)."""
MAX_REPORTED_ERRORS = 20


def validate_rows(frame: pd.DataFrame, validate, source: Path) -> list:
    """Validate every row like the API does; errors name the file line and the field."""
    mushrooms, errors = [], []
    for position, row in enumerate(frame.to_dict(orient="records")):
        given = {key: value for key, value in row.items() if value != ""}  # blank = missing
        try:
            mushrooms.append(validate(given))
        except ValidationError as exc:
            for error in exc.errors():
                field = "".join(f"{part}: " for part in error["loc"])
                errors.append(
                    f"{source}: line {position + 2}: {field}{error['input']!r}: {error['msg']}"
                )
    if errors:
        shown = errors[:MAX_REPORTED_ERRORS]
        more = len(errors) - len(shown)
        raise ValueError("\n".join(shown) + (f"\n... and {more} more" if more else ""))
    return mushrooms


def predict(args: argparse.Namespace) -> int:
    import bentoml

    from mushroom.classifier import Classifier

    classifier = Classifier(Path(bentoml.models.get(args.model).path))
    try:
        frame = pd.read_csv(args.input, dtype=str, keep_default_na=False)
        missing = [c for c in args.passthrough if c not in frame]
        if missing:
            raise ValueError(f"{args.input}: no column(s) {', '.join(missing)} to pass through")
        traits = frame.drop(columns=args.passthrough)
        mushrooms = validate_rows(traits, classifier.mushroom, args.input)
    except (OSError, pd.errors.ParserError, ValueError) as exc:
        print(f"mushroom predict: {exc}", file=sys.stderr)
        return 2
    answers = []
    for start in range(0, len(mushrooms), CHUNK):
        answers += classifier.classify(mushrooms[start : start + CHUNK])[0]
        print(f"\rscored {len(answers):,}/{len(mushrooms):,} mushrooms", end="", file=sys.stderr)
    print(file=sys.stderr)
    out = frame.assign(
        verdict=[a["verdict"] for a in answers],
        probability_poisonous=[a["probability_poisonous"] for a in answers],
        unknown_traits=[";".join(a["unknown_traits"]) for a in answers],
        reasons=["; ".join(a["reasons"]) for a in answers],
        model_version=classifier.version,
    )
    write_with(args.output, lambda path: out.to_csv(path, index=False))
    counts = out["verdict"].value_counts().to_dict()
    print(f"mushroom predict: wrote {args.output}: {counts}")
    return 0


def monitor_check(args: argparse.Namespace) -> int:
    """One line per finding of the drift stage's report; the exit code says the worst."""
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
    if report["prediction_drift"]:
        findings.append(
            (PREDICTION_DRIFT, f"prediction drift: score {report['prediction_drift_score']:.3f}")
        )
    if report.get("unfamiliar_alarm"):
        findings.append(
            (
                DATASET_DRIFT,
                f"{report['unfamiliar_share']:.1%} of descriptions are unlike the training "
                f"mushrooms (training split: {report['reference_unfamiliar_share']:.1%})",
            )
        )
    if report["dataset_drift"]:
        findings.append(
            (
                DATASET_DRIFT,
                f"dataset drift: {report['drift_share']:.0%} of traits "
                f"drifted ({', '.join(report['drifted_columns'])})",
            )
        )
    source = f"{report['n_current']} rows from {report['source']}"
    for _, line in findings:
        print(f"ALERT {line} [{source}]")
    if not findings:
        print(f"OK no drift [{source}]")
    return max((code for code, _ in findings), default=HEALTHY)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mushroom", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    scoring = commands.add_parser("predict", help="score a CSV file of mushrooms")
    scoring.add_argument("input", type=Path, help="CSV: one mushroom per row, trait columns")
    scoring.add_argument("-o", "--output", type=Path, required=True)
    scoring.add_argument("--model", default=DEFAULT_TAG, help="BentoML model store tag")
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
    check.add_argument("--report", type=Path, default=Path("reports/drift.json"))
    args, rest = parser.parse_known_args(argv)
    if args.command == "promote":
        from mushroom import promote

        return promote.main(rest)
    if rest:
        parser.error(f"unrecognised arguments: {' '.join(rest)}")
    return monitor_check(args) if args.command == "monitor" else predict(args)


if __name__ == "__main__":
    sys.exit(main())
