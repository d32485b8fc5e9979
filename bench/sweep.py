"""The README's results table: every dataset × split × model, through the real stages.

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
COLUMNS = (
    "accuracy",
    "roc_auc",
    "false_edible_rate",
    "unsafe_edible_share",
    "coverage",
    "abstention_rate",
    "unfamiliar_rate",
)


def count(figures: dict, key: str, of: str) -> str:
    return f"{figures[key]:.4f} ({figures[of.split('/')[0]]}/{figures[of.split('/')[1]]})"


def row(setup: str, model: str, split: str, figures: dict, safety: dict, gate: bool) -> str:
    cells = [
        *setup.split("/"),
        split if split != "cv" else figures["scheme"],
        model,
        f"{figures['rows']:,}",
        f"{figures['accuracy']:.4f}",
        f"{figures['roc_auc']:.4f}" if figures["roc_auc"] is not None else "–",
        count(figures, "false_edible_rate", "false_edible/poisonous"),
        count(figures, "unsafe_edible_share", "false_edible/edible_answers"),
        f"{figures['coverage']:.4f}",
        f"{figures['abstention_rate']:.4f}",
        f"{figures['unfamiliar_rate']:.4f}",
        safety if split == "test" else "",
        ("passed" if gate else "FAILED") if split == "test" else "",
    ]
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=MODELS, choices=MODELS)
    parser.add_argument("--only", nargs="+", default=SETUPS, choices=SETUPS)
    args = parser.parse_args()
    print(
        "| dataset | test split | evaluated on | model | rows | accuracy | roc_auc | "
        "false_edible_rate (n/poisonous) | unsafe_edible_share (n/edible answers) | coverage "
        "| abstention_rate | unfamiliar_rate | safety: edible answers | gate |"
    )
    print("|" + "---|" * 14)
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
                reports = workdir / "reports"
                metrics = json.loads((reports / "metrics.json").read_text())
                safety = json.loads((reports / "safety.json").read_text())
                edible = [
                    safety["single_trait"]["edible"],
                    safety["random"]["edible"],
                    safety["monotonicity"]["violations"],
                ]
                if safety["poison_markers"]:
                    edible.append(safety["poison_markers"]["edible"])
                summary = "/".join(str(n) for n in edible)
                for name in ("test", "cv"):
                    print(row(setup, model, name, metrics[name], summary, metrics["gate_passed"]))
                print(f"<!-- {setup} {model}: {seconds:.0f} s -->", file=sys.stderr, flush=True)
            sys.stdout.flush()


if __name__ == "__main__":
    main()
