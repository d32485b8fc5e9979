"""Serving benchmark: the BentoML service against the starting design, in the same run.

Promotes a UCI model (default logreg + onehot; --model) from a fresh small pipeline run into a
throw-away BentoML store, then loads each server in turn, pinned to CPU 0, from a
closed-loop load generator pinned to CPU 1 (threads with keep-alive connections, each
request timed by the client: no coordinated-omission correction, no synthetic samples):

- single-mushroom requests at concurrency 1, 8 and 64 (--seconds each): req/s, p50, p99,
  errors;
- one request of 1,000 mushrooms (median of --repeats);
- in-process single-row judgement: the service's fast path (probability, familiarity,
  lookalike margin, worst case over unknown traits, verdict, reasons and guidance) vs
  ``pipeline.predict_proba``.

Baseline: bench/baseline_server.py, FastAPI + pydantic -> DataFrame -> the same fitted
pipeline per request. Ratios are service / baseline.

Then the fleet (bench/fleet.py, same model, same run): c=64 with the SQLite log vs the
PostgreSQL log, one replica vs two, median of --repeats runs of --seconds each, with its
own CPU placement (both cores for the servers: see there). ``--only`` runs one part.

    python bench/serve.py [--seconds 10] [--repeats 20] [--model logreg] [--only fleet]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import joblib

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))
from mushroom.core.catalogue import UCI  # noqa: E402
from mushroom.data.raw import read_raw  # noqa: E402
from repocopy import REPO  # noqa: E402
from servefixtures import Promoted, build_and_promote, free_port, kill_tree  # noqa: E402

SERVER_CPU, CLIENT_CPU = 0, 1
LEVELS = (1, 8, 64)


def start(command: list[str], env: dict, port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        ["taskset", "-c", str(SERVER_CPU), *command],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    body = json.dumps({"mushrooms": [{}]}).encode()
    for _ in range(300):
        try:
            status, _ = post(http.client.HTTPConnection("127.0.0.1", port, timeout=5), body)
            if status == 200:
                return process
        except OSError:
            time.sleep(0.1)
    kill_tree(process.pid)
    raise RuntimeError(f"{command} did not come up on port {port}")


def post(connection: http.client.HTTPConnection, body: bytes) -> tuple[int, bytes]:
    connection.request("POST", "/classify", body, {"content-type": "application/json"})
    response = connection.getresponse()
    return response.status, response.read()


def load(port: int, body: bytes, concurrency: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors = [0]
    deadline = time.perf_counter() + seconds

    def worker() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        while (started := time.perf_counter()) < deadline:
            try:
                status, _ = post(connection, body)
                ok = status == 200
            except OSError:
                ok = False
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            if ok:
                mine.append(time.perf_counter() - started)
            else:
                errors[0] += 1
        latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    return {
        "rps": len(latencies) / elapsed,
        "p50": pick(0.5),
        "p99": pick(0.99),
        "errors": errors[0],
    }


def big_request(port: int, body: bytes, repeats: int) -> float:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    post(connection, body)  # warm
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        status, _ = post(connection, body)
        assert status == 200, status
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def in_process(model_dir: Path, row: dict, repeats: int = 2000) -> tuple[float, float]:
    """Median µs of one single-row judgement (verdict, reasons and guidance, as the service
    asks for), then the pipeline's predict_proba alone."""
    import pandas as pd

    from mushroom.serving.classifier import Classifier

    classifier = Classifier(model_dir)
    mushroom = [classifier.mushroom(row)]
    judge = classifier.judge
    index, numbers = judge.scorer.index_frame(pd.DataFrame([row])[classifier.features])
    pipeline = joblib.load(model_dir / "model.joblib")
    frame = pd.DataFrame([row])[classifier.features]

    def median_us(call, n: int) -> float:
        call()
        times = []
        for _ in range(n):
            started = time.perf_counter()
            call()
            times.append(time.perf_counter() - started)
        return statistics.median(times) * 1e6

    fast = median_us(lambda: judge.judge(index, numbers, guidance=True), repeats)
    assert classifier.classify(mushroom)[0]  # the same model answers through the full path
    return fast, median_us(lambda: pipeline.predict_proba(frame), 50)


def compare(promoted: Promoted, tmp: Path, row: dict, bodies: dict[str, bytes], args) -> None:
    """The service against the baseline, each pinned to SERVER_CPU; prints the table."""
    model_dir = tmp / "bentoml" / "models" / "mushroom-classifier" / promoted.tag.split(":")[1]
    bin_dir = Path(sys.executable).parent
    env = promoted.env | {
        "MUSHROOM_MODEL": promoted.tag,
        "MUSHROOM_PREDICTION_LOG": str(tmp / "predictions.db"),
    }
    servers = {
        "bentoml": lambda port: [
            str(bin_dir / "bentoml"),
            "serve",
            "mushroom.serving.service:MushroomClassifier",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        "baseline": lambda port: [
            sys.executable,
            str(BENCH / "baseline_server.py"),
            str(model_dir / "model.joblib"),
            str(model_dir / "model_card.json"),
            "--port",
            str(port),
        ],
    }
    results: dict[str, dict] = {}
    for name, command in servers.items():
        port = free_port()
        process = start(command(port), env, port)
        try:
            results[name] = {c: load(port, bodies["single"], c, args.seconds) for c in LEVELS}
            results[name]["thousand_ms"] = big_request(port, bodies["thousand"], args.repeats)
        finally:
            kill_tree(process.pid)
            process.wait()
    fast_us, pipeline_us = in_process(model_dir, row)

    print(
        f"# {platform.node()}: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; server on CPU {SERVER_CPU}, client on CPU {CLIENT_CPU}, "
        f"{args.seconds:g} s per level; UCI {args.model}"
    )
    print(f"{'':<22}{'bentoml':>12}{'baseline':>12}{'ratio':>9}")
    for c in LEVELS:
        b, base = results["bentoml"][c], results["baseline"][c]
        print(
            f"c={c:<3} req/s{'':<12}{b['rps']:>12.0f}{base['rps']:>12.0f}"
            f"{b['rps'] / base['rps']:>8.1f}x"
        )
        for q in ("p50", "p99"):
            print(f"c={c:<3} {q} ms{'':<11}{b[q]:>12.1f}{base[q]:>12.1f}{b[q] / base[q]:>8.2f}x")
        print(f"c={c:<3} errors{'':<11}{b['errors']:>12}{base['errors']:>12}")
    b, base = results["bentoml"]["thousand_ms"], results["baseline"]["thousand_ms"]
    print(f"1,000 mushrooms ms{'':<4}{b:>12.1f}{base:>12.1f}{b / base:>8.2f}x")
    print(
        f"in-process 1 row µs{'':<3}{fast_us:>12.1f}{pipeline_us:>12.1f}"
        f"{fast_us / pipeline_us:>8.4f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--model", default="logreg", help="train.model of the served model")
    parser.add_argument(
        "--only", choices=("baseline", "fleet"), help="run one part (default: both)"
    )
    args = parser.parse_args()
    if args.only != "fleet":
        os.sched_setaffinity(0, {CLIENT_CPU})
    rows = read_raw("uci", REPO / "data" / "raw")
    single = {t.name: rows.iloc[0][t.name] for t in UCI.traits}
    thousand = [{t.name: r[t.name] for t in UCI.traits} for _, r in rows.head(1000).iterrows()]
    bodies = {
        "single": json.dumps({"mushrooms": [single]}).encode(),
        "thousand": json.dumps({"mushrooms": thousand}).encode(),
    }

    with tempfile.TemporaryDirectory(prefix="mushroom-serve-bench-") as tmp:
        promoted: Promoted = build_and_promote(
            Path(tmp) / "work",
            REPO / "data" / "raw",
            Path(tmp) / "bentoml",
            train__model=args.model,
        )
        if args.only != "fleet":
            compare(promoted, Path(tmp), single, bodies, args)
        if args.only != "baseline":
            import fleet  # its own placement: both cores for the servers

            fleet.run(promoted, Path(tmp), bodies["single"], args)


if __name__ == "__main__":
    main()
