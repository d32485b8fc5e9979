"""docs/results.md's table: every dataset × split × model, through the real stages.

For each combination, prepare → featurize → train → evaluate run in a throw-away workdir
with the repository's params.yaml (only data.dataset, prepare.split and train.model
changed), then one row per split that evaluate reports (``test`` and the pooled ``cv``)
is printed as Markdown, with the safety suite's edible counts and the gate.

    python bench/sweep.py [--models logreg hist_gb] [--only uci/random]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from repocopy import REPO  # noqa: E402
from servefixtures import trained_workdir  # noqa: E402

MODELS = ["logreg", "random_forest", "hist_gb", "naive_bayes"]
SETUPS = ["uci/random", "secondary/random", "secondary/species"]
HEADER = (
    "dataset",
    "test split",
    "evaluated on",
    "model",
    "rows",
    "false edible (n/poisonous; 95 % high)",
    "coverage [95 % bounds]",
    "as sent",
    "largest P(poisonous) answered edible",
    "abstention",
    "unfamiliar",
    "safety: edible answers",
    "margin; poisonous tested; 95 % high",
    "gate",
)


def row(setup: str, model: str, split: str, figures: dict, reports: dict) -> str:
    test = split == "test"
    evidence = reports["held_out"]["edible_evidence"]
    largest = figures["edible_probability_max"]
    cells = [
        *setup.split("/"),
        split if not test else "test",
        model,
        f"{figures['rows']:,}",
        f"{figures['false_edible']}/{figures['poisonous']:,}; "
        f"{figures['false_edible_rate_high_95']:.2g}",
        f"{figures['coverage']:.4f} [{figures['coverage_low_95']:.4f}, "
        f"{figures['coverage_high_95']:.4f}]",
        f"{figures['as_sent']['coverage']:.4f}" if test else "",
        f"{largest:.4f}" if largest is not None else "–",
        f"{figures['abstention_rate']:.4f}",
        f"{figures['unfamiliar_rate']:.4f}",
        safety_counts(reports["safety"]) if test else "",
        f"{reports['held_out']['lookalike_traits']}; {evidence['poisonous_tested']:,}; "
        f"{evidence['false_edible_rate_high_95']:.2g}"
        if test
        else "",
        gate_cell(reports["gate"]) if test else "",
    ]
    if not test:
        cells[2] = figures["scheme"]
    return "| " + " | ".join(cells) + " |"


def safety_counts(safety: dict) -> str:
    """single trait / random / monotonicity / poison odors (UCI) / misread / not known /
    unseen: every count of edible answers (violations) of the safety suite."""
    counts = [
        safety["single_trait"]["edible"],
        safety["random"]["edible"],
        safety["monotonicity"]["violations"],
        *([safety["poison_markers"]["edible"]] if safety["poison_markers"] else []),
        safety["misread"]["edible"],
        safety["not_known"]["violations"],
        safety["unseen"]["edible"],
    ]
    return "/".join(str(n) for n in counts)


def gate_cell(gate: dict) -> str:
    failed = [c["metric"] for c in gate["checks"] if not c["passed"]]
    return "passed" if not failed else "failed: " + ", ".join(failed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=MODELS, choices=MODELS)
    parser.add_argument("--only", nargs="+", default=SETUPS, choices=SETUPS)
    args = parser.parse_args()
    print("| " + " | ".join(HEADER) + " |")
    print("|" + "---|" * len(HEADER))
    for setup in args.only:
        dataset, split = setup.split("/")
        for model in args.models:
            with tempfile.TemporaryDirectory(prefix="mushroom-sweep-") as tmp:
                workdir = Path(tmp) / "work"
                started = time.perf_counter()
                trained_workdir(
                    workdir,
                    REPO / "data" / "raw",
                    train__model=model,
                    data__dataset=dataset,
                    prepare__split=split,
                    # the repository's folds, not the tests' quick ones
                    train__cv_folds=5,
                    evaluate__cv__folds=5,
                    evaluate__cv__repeats=2,
                )
                seconds = time.perf_counter() - started
                reports = {
                    name: json.loads((workdir / "reports" / f"{name}.json").read_text())
                    for name in ("metrics", "safety", "gate", "held_out")
                }
                for name in ("test", "cv"):
                    print(row(setup, model, name, reports["metrics"][name], reports))
                print(f"<!-- {setup} {model}: {seconds:.0f} s -->", file=sys.stderr, flush=True)
            sys.stdout.flush()


if __name__ == "__main__":
    main()
