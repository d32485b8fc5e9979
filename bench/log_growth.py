"""Log growth: what the prediction log costs as it grows, on SQLite and on PostgreSQL.

For each backend the log grows to each of --sizes answers (10^5, 10^6, 5 x 10^6 by
default); at each size: bytes per answer, and the wall time and peak memory (RSS) of each
reader of the log, each in a fresh process: ``snapshot`` (``mushroom monitor snapshot``),
``check_live`` (the drift stage's computation, which ``mushroom monitor check --live``
runs), ``replay`` (promotion's) and ``export`` (``mushroom feedback export``).

The answers are copies of real ones: every UCI raw row judged by a model trained on a
throw-away workdir (logreg + onehot, 2-fold CV), a third of them with 3 to 15 traits left
out; each copy has its own request id, times spread over 30 days, and 1 % are labelled.
SQLite is filled with the service's own logging code, PostgreSQL with COPY (filling is
set-up, not measured). Figures are medians of --repeats runs (--largest-repeats at the
largest size); ``per_row`` is the time per answer against the smallest size measured in
the same run: 1.0 is linear.

    python bench/log_growth.py [--sizes 100000 1000000 5000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mushroom.core.catalogue import UCI
from mushroom.data.log_schema import META_COLUMNS, Database, location

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))
# Each reader runs in a process of this script: only what every reader needs is imported
# here, so its peak memory is the reader's own. The rest is imported where it is used.

READERS = ("snapshot", "check_live", "replay", "export")
IDLE = "idle"
"""The baseline: a process of this script that reads nothing."""
BATCH = 100_000
LABELLED_SHARE = 0.01


def base_answers(models: Path) -> list[tuple]:
    """Every UCI raw row judged, a third with traits left out: (answer..., traits...)."""
    from mushroom.data.raw import read_raw
    from mushroom.model.bundle import load_bundle
    from repocopy import REPO

    frame = read_raw("uci", REPO / "data" / "raw")
    rng = np.random.default_rng(7)
    traits = UCI.trait_names
    for position in range(0, len(frame), 3):
        left_out = rng.choice(traits, rng.integers(3, 16), replace=False)
        frame.loc[frame.index[position], left_out] = None
    judge = load_bundle(models / "model.joblib", models / "policy.json").judge()
    judgement = judge.judge(*judge.scorer.index_frame(frame), reasons=False)
    return [
        (probability, verdict, unfamiliar, *values)
        for probability, verdict, unfamiliar, values in zip(
            judgement.probability.tolist(),
            judgement.verdict.tolist(),
            (~judgement.familiar).tolist(),
            frame[traits].itertuples(index=False),
            strict=True,
        )
    ]


def answers(base: list[tuple], first: int, count: int) -> list[tuple]:
    """Rows ``first`` to ``first + count`` of the log, in META_COLUMNS + UCI traits."""
    rows = []
    for i in range(first, first + count):
        probability, verdict, unfamiliar, *traits = base[i % len(base)]
        day, second = divmod(i * 7, 86_400)
        logged_at = f"2026-11-{1 + day % 30:02d}T{second // 3600:02d}:{second // 60 % 60:02d}:00Z"
        reasons = "unfamiliar" if unfamiliar else ""
        rows.append(
            (f"{i:032x}", logged_at, "mushroom-classifier:1", "uci", probability, verdict)
            + (unfamiliar, reasons, *traits)
        )
    return rows


def labels(first: int, count: int) -> list[tuple]:
    step = round(1 / LABELLED_SHARE)
    start = -(-first // step) * step
    return [
        (f"{i:032x}", ("edible", "poisonous")[i // step % 2], "2026-12-01T00:00:00Z", "bench")
        for i in range(start, first + count, step)
    ]


def grow(where, base: list[tuple], have: int, want: int) -> None:
    """Answers ``have`` to ``want`` and their labels into the log at ``where``."""
    from mushroom.data.prediction_log import PredictionLog

    log = PredictionLog(where)
    traits = UCI.trait_names
    for first in range(have, want, BATCH):
        count = min(BATCH, want - first)
        if isinstance(where, Path):
            log.append(traits, answers(base, first, count))
            with contextlib.closing(sqlite3.connect(where)) as db, db:
                db.executemany("insert into feedback values (?, ?, ?, ?)", labels(first, count))
        else:
            copy_rows(where.url, answers(base, first, count), labels(first, count))
    log.close()


def copy_rows(url: str, rows: list[tuple], labelled: list[tuple]) -> None:
    import psycopg

    columns = ", ".join(META_COLUMNS + tuple(UCI.trait_names))
    with psycopg.connect(url) as db, db.cursor() as cursor:
        with cursor.copy(f"copy predictions ({columns}) from stdin") as copy:
            for row in rows:
                copy.write_row(row)
        with cursor.copy("copy feedback from stdin") as copy:
            for row in labelled:
                copy.write_row(row)


def log_bytes(where) -> int:
    if isinstance(where, Path):
        with contextlib.closing(sqlite3.connect(where)) as db:
            db.execute("pragma wal_checkpoint(truncate)")
        return where.stat().st_size
    import psycopg

    with psycopg.connect(where.url) as db:
        return db.execute(
            "select pg_total_relation_size('predictions') + pg_total_relation_size('feedback')"
        ).fetchone()[0]


def measure(reader: str, where: str, workdir: Path, out: Path) -> dict:
    """One reader, in this process: its wall time, and this process's peak RSS."""
    from mushroom.core.params import load_params

    models = workdir / "models"
    started = time.perf_counter()
    if reader == "snapshot":
        from mushroom.data.log_reading import write_snapshot

        write_snapshot(location(where), out / "window.parquet")
    elif reader == "check_live":
        from mushroom.stages import drift

        files = drift.Files(
            prepared=workdir / "prepared",
            model=models / "model.joblib",
            policy=models / "policy.json",
            log=location(where),
            json=out / "drift.json",
            html=out / "drift.html",
            history=out / "history",
        )
        drift.run(load_params(workdir / "params.yaml").drift, files)
    elif reader == "replay":
        from mushroom.lifecycle.replay import replay

        replay(location(where), models / "model.joblib", models / "policy.json", out / "none")
    elif reader == "export":
        from mushroom.data import feedback

        feedback.export(location(where), out / "labelled.parquet")
    seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 3), "peak_mb": round(peak_kib() / 1024, 1)}


def peak_kib() -> int:
    """This process's peak RSS: VmHWM, its own address space's high-water mark. Not
    getrusage's ru_maxrss: Linux carries that across exec from the address space left,
    which for a child started by vfork (as subprocess does) is the parent's, so every
    reader showed this script's own peak."""
    status = Path("/proc/self/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1])


def spelled(where) -> str:
    """``where`` in full: a Database's ``str`` hides its password."""
    return where.url if isinstance(where, Database) else str(where)


def run_reader(reader: str, where, workdir: Path) -> dict:
    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run(
            [sys.executable, __file__, "--measure", reader, spelled(where), str(workdir), out],
            capture_output=True,
            text=True,
        )
    if done.returncode:
        sys.exit(f"{reader} on {where} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def backends(names: list[str], folder: Path):
    """(name, where) for each backend, and what to stop after."""
    made, cluster = [], None
    for name in names:
        if name == "sqlite":
            made.append((name, folder / "predictions.db"))
        else:
            from pgcluster import Cluster

            cluster = Cluster(Path(tempfile.mkdtemp(prefix="mushroom-bench-pg-")))
            made.append((name, location(cluster.new_database())))
    return made, cluster


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 5_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--largest-repeats", type=int, default=1)
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--measure", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        reader, where, workdir, out = args.measure
        print(json.dumps(measure(reader, where, Path(workdir), Path(out))))
        return
    from repocopy import REPO
    from servefixtures import trained_workdir

    folder = Path(tempfile.mkdtemp(prefix="mushroom-log-growth-"))
    made, cluster = backends(args.backends, folder)
    try:
        workdir = folder / "work"
        env = trained_workdir(workdir, REPO / "data" / "raw")
        os.environ.update({k: v for k, v in env.items() if k.startswith(("MLFLOW", "DVC"))})
        base = base_answers(workdir / "models")
        idle = run_reader(IDLE, made[0][1], workdir)
        results = []
        for name, where in made:
            have = 0
            for size in sorted(args.sizes):
                grow(where, base, have, size)
                have = size
                repeats = args.largest_repeats if size == max(args.sizes) else args.repeats
                row = {"backend": name, "rows": size, "bytes_per_answer": log_bytes(where) / size}
                for reader in READERS:
                    runs = [run_reader(reader, where, workdir) for _ in range(repeats)]
                    row[reader] = {
                        "seconds": statistics.median(r["seconds"] for r in runs),
                        "peak_mb": max(r["peak_mb"] for r in runs),
                    }
                results.append(row)
                print(json.dumps(row), flush=True)
        report(results, idle)
    finally:
        if cluster is not None:
            cluster.stop("immediate")
            shutil.rmtree(cluster.folder, ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)


def report(results: list[dict], idle: dict) -> None:
    print(
        f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end"
    )
    print(f"baseline: a process of this script reading nothing peaks at {idle['peak_mb']:.0f} MB")
    print(f"{'backend':<9} {'rows':>9} {'B/answer':>8}  " + "  ".join(f"{r:>24}" for r in READERS))
    smallest = {}
    for row in results:
        first = smallest.setdefault(row["backend"], row)
        cells = []
        for reader in READERS:
            figures = row[reader]
            per_row = (figures["seconds"] / row["rows"]) / (
                first[reader]["seconds"] / first["rows"]
            )
            cells.append(
                f"{figures['seconds']:7.1f} s {figures['peak_mb']:6.0f} MB x{per_row:4.2f}"
            )
        print(
            f"{row['backend']:<9} {row['rows']:>9} {row['bytes_per_answer']:8.0f}  "
            + "  ".join(f"{c:>24}" for c in cells)
        )
    print("(seconds, peak RSS, per_row: time per answer / at the smallest size; 1.0 = linear)")


if __name__ == "__main__":
    main()
