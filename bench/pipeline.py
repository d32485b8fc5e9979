"""Pipeline wall times: full `dvc repro` from pulled data, no-op `dvc repro`, each stage.

Runs in a throw-away copy of the repository (its own git history, DVC cache and MLflow
store), so the workspace is left alone. Each figure is the median of --repeats runs. The
baseline, measured in the same run, is the floor every stage pays before doing any work:
starting Python and importing the stage module; each stage's ratio is against it.

    python bench/pipeline.py [--repeats 3] [--datasets uci secondary]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from repocopy import copy_repository, run, tool_env  # noqa: E402

STAGES = ["prepare", "featurize", "train", "evaluate"]


def timed(cmd: list[str], cwd: Path, env: dict) -> float:
    started = time.perf_counter()
    run(cmd, cwd, env)
    return time.perf_counter() - started


def median_of(repeats: int, cmd: list[str], cwd: Path, env: dict) -> float:
    return statistics.median(timed(cmd, cwd, env) for _ in range(repeats))


def set_dataset(copy: Path, dataset: str) -> None:
    path = copy / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params["data"]["dataset"] = dataset
    params["prepare"]["split"] = "species" if dataset == "secondary" else "random"
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--datasets", nargs="+", default=["uci", "secondary"])
    args = parser.parse_args()
    python = sys.executable
    env = tool_env() | {"PYTHONPATH": "src"}
    with tempfile.TemporaryDirectory(prefix="mushroom-bench-") as tmp:
        copy = Path(tmp)
        env["MLFLOW_TRACKING_URI"] = f"sqlite:///{copy / 'bench-mlflow.db'}"
        copy_repository(copy, env)
        print(
            f"# {platform.node()}: {platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} cores, Python {platform.python_version()}; "
            f"median of {args.repeats}"
        )
        print(f"{'what':<34} {'median s':>9} {'x baseline':>11}")
        for dataset in args.datasets:
            set_dataset(copy, dataset)
            run(["dvc", "repro"], copy, env)  # warm: outputs exist for the per-stage runs
            full = median_of(args.repeats, ["dvc", "repro", "--force"], copy, env)
            noop = median_of(args.repeats, ["dvc", "repro"], copy, env)
            print(f"{dataset}: full dvc repro --force{'':<5} {full:>9.2f}")
            print(f"{dataset}: no-op dvc repro{'':<12} {noop:>9.2f}")
            for stage in STAGES:
                module = f"mushroom.stages.{stage}"
                base = median_of(args.repeats, [python, "-c", f"import {module}"], copy, env)
                took = median_of(args.repeats, [python, "-m", module], copy, env)
                print(
                    f"{dataset}: {stage:<12} (import only {base:4.2f}) {took:>9.2f} "
                    f"{took / base:>10.1f}x"
                )


if __name__ == "__main__":
    main()
