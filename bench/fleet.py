"""The fleet: what the PostgreSQL log costs and what a second replica gives, at concurrency
64, in one run (``python bench/serve.py --only fleet``: serve.py's model).

Three fleets answer 64 keep-alive connections of wrk (a closed loop: each connection sends
its next single-mushroom request when the answer came), --seconds per run, in rounds (a, b,
c, a, b, c, ...: the VM's drift falls on all three), the median of --repeats rounds
reported:

- (a) one replica logging to SQLite (a file in WAL mode, the default), pinned to CPU 0;
- (b) one replica logging to PostgreSQL 15 (a throw-away cluster, tests/pgcluster.py, at
  its default settings: ``synchronous_commit`` on, a WAL flush per commit), on CPU 0;
- (c) two replicas on that one PostgreSQL log, pinned to CPU 0 and CPU 1, the connections
  split evenly: 32 each, from a wrk process of its own (a faster replica is not sent more).

The load generator is wrk (C, event-driven; Debian's package, ``make wrk``), not serve.py's
Python client: two replicas need both cores, and that client took 0.31 of them at 2,250
requests/s (c/b was 1.52 with it; 0.93 of b's throughput per server core). wrk times every
request itself (no coordinated-omission correction); with two wrk processes, p50 and p99
are the worse of the two.

Placement: two replicas need both cores, so nothing else can have a core of its own. The
client and PostgreSQL's processes are unpinned in all three runs, and (a) and (b) pin their
replica as (c) pins its first. In (a) and (b), CPU 1 holds only the client and PostgreSQL;
in (c) they take their CPU from the servers. So the output says where the CPU went, from
/proc, in cores (CPU seconds per second): the replicas' processes, PostgreSQL's, the
client's (wrk and this process), the rest of the machine (others' work) and the time the
hypervisor stole. Goals (issue 18, item 9): b/a >= 0.85, c/b >= 1.6.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from pgcluster import Cluster
from servefixtures import Promoted, Server, process_tree

CONCURRENCY = 64
WARM_SECONDS = 2
TICK = os.sysconf("SC_CLK_TCK")
FLEETS = {  # name: (what, the log, the replicas' CPUs)
    "a": ("1 replica, SQLite", "sqlite", (0,)),
    "b": ("1 replica, PostgreSQL", "postgres", (0,)),
    "c": ("2 replicas, PostgreSQL", "postgres", (0, 1)),
}
GROUPS = ("servers", "postgres", "client", "others", "steal")


def replica(promoted: Promoted, folder: Path, name: str, log: str, cpu: int) -> Server:
    """`bentoml serve` logging to ``log``, it and its workers on ``cpu`` (the affinity of
    this thread is what its children inherit)."""
    everywhere = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        return Server(promoted, folder / f"{name}.db", extra_env={"MUSHROOM_PREDICTION_LOG": log})
    finally:
        os.sched_setaffinity(0, everywhere)


def ticks(pids) -> dict[int, int]:
    """utime + stime of each process of ``pids``, all its threads."""
    found = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            found[pid] = int(fields[11]) + int(fields[12])
    return found


def snapshot(roots: dict[str, list[int]]) -> dict[str, dict]:
    """CPU ticks per process of each group (the process trees of its ``roots``), of the
    client (this process, and the wrk processes it waited for), and the machine's busy and
    stolen ticks."""
    user, nice, system, _, _, irq, softirq, steal = map(
        int, Path("/proc/stat").read_text().split()[1:9]
    )
    taken = {name: ticks(p for r in pids for p in process_tree(r)) for name, pids in roots.items()}
    return taken | {
        "client": ticks([os.getpid()]) | {"wrk": children_ticks()},
        "machine": {0: user + nice + system + irq + softirq},
        "steal": {0: steal},
    }


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def milliseconds(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * UNITS[unit]


def wrk_figures(output: str) -> dict:
    """Requests/s, p50 and p99 (ms) and errors (socket errors and statuses not 2xx/3xx)
    from wrk's report."""
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", output, re.MULTILINE))
    errors = sum(map(int, re.findall(r"(?:connect|read|write|timeout) (\d+)", output)))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50": milliseconds(percentiles["50"]),
        "p99": milliseconds(percentiles["99"]),
        "errors": errors + (int(bad.group(1)) if bad else 0),
    }


def load(ports: list[int], script: Path, seconds: float) -> dict:
    """CONCURRENCY connections split evenly among ``ports``, a wrk process (one thread) per
    port, all at once."""
    command = ["wrk", "-t1", f"-c{CONCURRENCY // len(ports)}", f"-d{seconds:g}s", "--latency"]
    command += ["--timeout", "30s", "-s", str(script)]
    runs = [
        subprocess.Popen(
            [*command, f"http://127.0.0.1:{port}/classify"], stdout=subprocess.PIPE, text=True
        )
        for port in ports
    ]
    figures = [wrk_figures(run.communicate()[0]) for run in runs]
    return {
        "rps": sum(f["rps"] for f in figures),
        "p50": max(f["p50"] for f in figures),
        "p99": max(f["p99"] for f in figures),
        "errors": sum(f["errors"] for f in figures),
    }


def children_ticks() -> int:
    """CPU ticks of this process's waited-for children: the wrk processes (the servers are
    waited for only when stopped)."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return round((used.ru_utime + used.ru_stime) * TICK)


def measure(ports: list[int], script: Path, seconds: float, roots: dict) -> dict:
    before, started = snapshot(roots), time.perf_counter()
    result = load(ports, script, seconds)
    after, elapsed = snapshot(roots), time.perf_counter() - started
    cores = {
        name: sum(t - before[name].get(pid, 0) for pid, t in after[name].items()) / TICK / elapsed
        for name in after
    }
    cores["others"] = cores.pop("machine") - cores["servers"] - cores["postgres"] - cores["client"]
    return result | cores


def run(promoted: Promoted, tmp: Path, body: bytes, args) -> None:
    os.sched_setaffinity(0, range(os.cpu_count()))  # the client: unpinned
    folder = tmp / "fleet"
    folder.mkdir()
    script = folder / "post.lua"
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(body.decode())}\n"
    )
    # PostgreSQL runs as its own user: a folder of its own, reachable from /tmp.
    cluster = Cluster(Path(tempfile.mkdtemp(prefix="mushroom-fleet-pg-")))
    runs: dict[str, list[dict]] = {name: [] for name in FLEETS}
    load_before = os.getloadavg()
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, cluster.folder, ignore_errors=True)
        stack.callback(cluster.stop)
        logs = {"sqlite": str(folder / "predictions.db"), "postgres": cluster.new_database()}
        servers = {}
        for _, log, cpus in FLEETS.values():
            for cpu in cpus:
                if (log, cpu) not in servers:
                    server = replica(promoted, folder, f"{log}-{cpu}", logs[log], cpu)
                    stack.callback(server.stop)
                    servers[log, cpu] = server
        postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
        for round_ in range(-1, args.repeats):  # round -1 warms every fleet up
            for name, (_, log, cpus) in FLEETS.items():
                fleet = [servers[log, cpu] for cpu in cpus]
                roots = {
                    "servers": [s.process.pid for s in fleet],
                    "postgres": [postmaster] if log == "postgres" else [],
                }
                seconds = WARM_SECONDS if round_ < 0 else args.seconds
                result = measure([s.port for s in fleet], script, seconds, roots)
                if round_ >= 0:
                    runs[name].append(result)
    report(runs, args, load_before)


def report(runs: dict[str, list[dict]], args, load_before: tuple[float, ...]) -> None:
    model = next(
        line.split(":", 1)[1].strip()
        for line in Path("/proc/cpuinfo").read_text().splitlines()
        if line.startswith("model name")
    )
    median = {
        name: {k: statistics.median(r[k] for r in results) for k in results[0]}
        for name, results in runs.items()
    }
    loads = " ".join(f"{x:.2f}" for x in load_before) + " -> "
    loads += " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"# fleet: {platform.node()}: {platform.machine()}, {os.cpu_count()} cores ({model}), "
        f"Python {platform.python_version()}; UCI {args.model}; c={CONCURRENCY} single "
        f"mushrooms, median of {args.repeats} runs of {args.seconds:g} s; load average {loads}"
    )
    print(
        "# replicas pinned: 1 replica on CPU 0, 2 on CPU 0 and CPU 1 (32 connections each); "
        "wrk and PostgreSQL unpinned"
    )
    print(
        f"{'':<28}{'req/s':>7}{'p50 ms':>8}{'p99 ms':>8}{'errors':>7}   cores: "
        + " ".join(f"{g:>8}" for g in GROUPS)
    )
    for name, (what, _, _) in FLEETS.items():
        m = median[name]
        errors = sum(r["errors"] for r in runs[name])
        print(
            f"{name} {what:<26}{m['rps']:>7.0f}{m['p50']:>8.1f}{m['p99']:>8.1f}{errors:>7}"
            f"{'':>10}" + " ".join(f"{m[g]:>8.2f}" for g in GROUPS)
        )
    for name, results in runs.items():
        print(f"{name} req/s per run: " + " ".join(f"{r['rps']:.0f}" for r in results))
    for label, ratio, goal in (
        ("PostgreSQL / SQLite log (b/a)", median["b"]["rps"] / median["a"]["rps"], 0.85),
        ("two / one replica (c/b)", median["c"]["rps"] / median["b"]["rps"], 1.6),
    ):
        verdict = "met" if ratio >= goal else "NOT met"
        print(f"{label:<32}{ratio:>6.2f}x   goal >= {goal}: {verdict}")
