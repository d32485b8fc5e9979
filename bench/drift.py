"""Drift stage wall time on the secondary data: 61,069 logged predictions (every raw row)
against the 48,580-row training split of a species split, including I/O and imports.

Trains a model on a throw-away workdir (logreg + onehot, 2-fold CV), writes the prediction
log with the service's own logging code, then times ``python -m mushroom.stages.drift``
(median of --repeats); the baseline, measured in the same run, is starting Python and
importing the stage's module.

    python bench/drift.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))
from mushroom.core.catalogue import SECONDARY  # noqa: E402
from mushroom.data.prediction_log import PredictionLog  # noqa: E402
from mushroom.data.raw import read_raw  # noqa: E402
from mushroom.model.bundle import load_bundle  # noqa: E402
from repocopy import REPO  # noqa: E402
from servefixtures import trained_workdir  # noqa: E402


def write_log(workdir: Path, log: Path) -> int:
    frame = read_raw("secondary", REPO / "data" / "raw")
    models = workdir / "models"
    judge = load_bundle(models / "model.joblib", models / "policy.json").judge()
    judgement = judge.judge(*judge.scorer.index_frame(frame), reasons=False)
    features = [t.name for t in SECONDARY.traits]
    answered = zip(
        judgement.probability.tolist(),
        judgement.verdict.tolist(),
        (~judgement.familiar).tolist(),
        frame[features].itertuples(index=False),
        strict=True,
    )
    rows = [
        (f"{i:032x}", "2026-11-26T00:00:00Z", "mushroom-classifier:1", "secondary", *answer, "")
        + tuple(values)
        for i, (*answer, values) in enumerate(answered)
    ]
    PredictionLog(log).append(features, rows)
    return len(rows)


def timed(cmd: list[str], env: dict) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mushroom-drift-bench-") as tmp:
        workdir = Path(tmp) / "work"
        env = trained_workdir(
            workdir,
            REPO / "data" / "raw",
            data__dataset="secondary",
            prepare__split="species",
            train__cv_folds=2,
        )
        n_logged = write_log(workdir, Path(tmp) / "predictions.db")
        stage = [
            sys.executable,
            "-m",
            "mushroom.stages.drift",
            "--params",
            str(workdir / "params.yaml"),
            "--prepared",
            str(workdir / "prepared"),
            "--model",
            str(workdir / "models" / "model.joblib"),
            "--policy",
            str(workdir / "models" / "policy.json"),
            "--log",
            str(Path(tmp) / "predictions.db"),
            "--json",
            str(Path(tmp) / "drift.json"),
            "--html",
            str(Path(tmp) / "drift.html"),
            "--history",
            str(Path(tmp) / "history"),
        ]
        baseline = statistics.median(
            timed([sys.executable, "-c", "import mushroom.stages.drift"], env)
            for _ in range(args.repeats)
        )
        took = statistics.median(timed(stage, env) for _ in range(args.repeats))
        report = (Path(tmp) / "drift.json").read_text()
    print(
        f"# {platform.node()}: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; median of {args.repeats}"
    )
    print(
        f"drift stage, {n_logged:,} logged rows vs the training split: {took:.2f} s "
        f"(import only {baseline:.2f} s, {took / baseline:.1f}x)"
    )
    print(f"report: {report[:160]}...")


if __name__ == "__main__":
    main()
