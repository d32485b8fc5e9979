"""A promoted model from a small real pipeline run, and real `bentoml serve` processes."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

import rawfixtures
import repocopy


@dataclass
class Promoted:
    workdir: Path
    env: dict[str, str]
    tag: str  # BentoML store tag
    version: str  # MLflow registry version


def stage_args(workdir: Path) -> dict[str, list[str]]:
    w = str(workdir)
    return {
        "prepare": [
            "--raw-dir",
            f"{w}/raw",
            "--out-dir",
            f"{w}/prepared",
            "--summary",
            f"{w}/reports/data_summary.json",
            "--feedback",
            f"{w}/feedback/labelled.parquet",
        ],
        "featurize": [
            "--prepared",
            f"{w}/prepared",
            "--out-dir",
            f"{w}/features",
            "--featurizer",
            f"{w}/models/featurizer.joblib",
        ],
        "train": [
            "--prepared",
            f"{w}/prepared",
            "--features",
            f"{w}/features",
            "--featurizer",
            f"{w}/models/featurizer.joblib",
            "--model",
            f"{w}/models/model.joblib",
            "--policy",
            f"{w}/models/policy.json",
            "--train-info",
            f"{w}/models/train_info.json",
            "--metrics",
            f"{w}/reports/held_out.json",
        ],
        "evaluate": [
            "--prepared",
            f"{w}/prepared",
            "--model",
            f"{w}/models/model.joblib",
            "--policy",
            f"{w}/models/policy.json",
            "--held-out",
            f"{w}/reports/held_out.json",
            "--metrics",
            f"{w}/reports/metrics.json",
            "--safety",
            f"{w}/reports/safety.json",
            "--gate",
            f"{w}/reports/gate.json",
            "--summary",
            f"{w}/reports/summary.json",
            "--plots",
            f"{w}/reports/plots",
        ],
    }


def run_module(module: str, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args], env=env, capture_output=True, text=True, timeout=600
    )


@contextlib.contextmanager
def environment(env: dict[str, str]):
    """This process's environment is exactly ``env`` inside, and as it was after."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run_pipeline(workdir: Path, env: dict[str, str]) -> None:
    """prepare → featurize → train → evaluate on ``workdir/raw`` with ``workdir/params.yaml``,
    in this process under ``env``: a process per stage spent ~7 s per pipeline importing."""
    import importlib

    for stage, args in stage_args(workdir).items():
        main = importlib.import_module(f"mushroom.stages.{stage}").main
        with environment(env):
            code = main(["--params", str(workdir / "params.yaml"), *args])
        assert code == 0, f"{stage} failed (its output is in the captured output)"


def promote(workdir: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess:
    w = str(workdir)
    return run_module(
        "mushroom.cli",
        [
            "promote",
            "--params",
            f"{w}/params.yaml",
            "--prepared",
            f"{w}/prepared",
            "--model",
            f"{w}/models/model.joblib",
            "--policy",
            f"{w}/models/policy.json",
            "--reports",
            f"{w}/reports",
            "--train-info",
            f"{w}/models/train_info.json",
            # The workdir's own log and labels (none unless a test writes them), never the
            # checkout's.
            "--log",
            f"{w}/live/predictions.db",
            "--feedback",
            f"{w}/feedback/labelled.parquet",
            *extra,
        ],
        env,
    )


def trained_workdir(
    workdir: Path, raw: Path, extra_env: dict | None = None, **params
) -> dict[str, str]:
    """Run the pipeline in ``workdir``: raw data linked from ``raw``, the repository's
    params with ``params`` overrides (and few folds, for speed), its own MLflow store.
    Returns the environment used."""
    workdir.mkdir(parents=True)
    (workdir / "raw").symlink_to(raw)
    fast = {"train__cv_folds": 2, "evaluate__cv__folds": 2, "evaluate__cv__repeats": 1}
    rawfixtures.write_params(workdir / "params.yaml", **(fast | params))
    env = repocopy.tool_env() | {"MLFLOW_TRACKING_URI": f"sqlite:///{workdir / 'mlflow.db'}"}
    env |= extra_env or {}
    run_pipeline(workdir, env)
    return env


def train_alone(source: Path, workdir: Path, params: dict) -> Path:
    """The train stage alone, in-process, in ``workdir``: on the prepared data, features and
    encoder of ``source`` (a trained workdir), with its params changed by ``params``
    (dotted keys). Returns ``workdir``."""
    from mushroom.stages import train

    (workdir / "models").mkdir(parents=True)
    (workdir / "reports").mkdir()
    (workdir / "prepared").symlink_to(source / "prepared")
    changed = rawfixtures.set_params(workdir / "params.yaml", params, source=source / "params.yaml")
    args = stage_args(workdir)["train"]
    args[args.index("--features") + 1] = str(source / "features")
    args[args.index("--featurizer") + 1] = str(source / "models" / "featurizer.joblib")
    assert train.main(["--params", str(changed), *args]) == 0
    return workdir


def build_and_promote(workdir: Path, raw: Path, bentoml_home: Path, **params) -> Promoted:
    """A trained workdir, promoted into the shared ``bentoml_home``."""
    env = trained_workdir(workdir, raw, {"BENTOML_HOME": str(bentoml_home)}, **params)
    done = promote(workdir, env)
    assert done.returncode == 0, f"promote failed:\n{done.stdout}\n{done.stderr}"
    found = re.search(r"version (\d+) is 'champion'.*BentoML model (\S+)", done.stdout)
    assert found, done.stdout
    return Promoted(workdir, env, tag=found.group(2), version=found.group(1))


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants. BentoML starts its workers in sessions of their
    own, so a process group does not hold them: signal each of these instead."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def kill_tree(root: int) -> None:
    for pid in process_tree(root):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


SOURCE_SERVICE = "mushroom.serving.service:MushroomClassifier"


@contextlib.contextmanager
def serving(promoted: Promoted, folder: Path):
    """A server of ``promoted`` logging into ``folder``, stopped on leaving."""
    server = Server(promoted, folder / "predictions.db")
    try:
        yield server
    finally:
        server.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`bentoml serve` of one promoted model on a free loopback port.

    ``target`` is what `bentoml serve` is given: the service in the source tree, or the tag
    of a bento built into the promoted store. Each server has a BentoML home of its own
    whose ``models`` and ``bentos`` are the promoted store's: at start-up BentoML empties
    ``$BENTOML_HOME/prometheus_multiproc_dir``, so on a shared home a second server wiped the
    first one's metrics. It runs from that home, outside the repository."""

    def __init__(
        self,
        promoted: Promoted,
        log_path: Path,
        target: str = SOURCE_SERVICE,
        extra_env: dict[str, str] | None = None,
        port: int | None = None,
    ):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.output_path = log_path.with_suffix(".server.log")
        self.home = Path(tempfile.mkdtemp(prefix="bentoml-home-", dir=log_path.parent))
        store = Path(promoted.env["BENTOML_HOME"])
        for shared in ("models", "bentos"):
            (store / shared).mkdir(exist_ok=True)
            (self.home / shared).symlink_to(store / shared)
        env = promoted.env | {
            "BENTOML_HOME": str(self.home),
            "MUSHROOM_MODEL": promoted.tag,
            "MUSHROOM_PREDICTION_LOG": str(log_path),
        }
        self.output = open(self.output_path, "w")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "bentoml"),
                "serve",
                target,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            cwd=self.home,
            env=env | (extra_env or {}),
            stdout=self.output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_ready()

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.server_log()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"server not ready in {timeout} s: {self.server_log()}")

    def server_log(self) -> str:
        self.output.flush()
        return self.output_path.read_text()[-3000:]

    def kill(self) -> None:
        """SIGKILL the server and its workers at once: no shutdown hooks, no flushing."""
        kill_tree(self.process.pid)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        workers = process_tree(self.process.pid)
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        for pid in workers:  # whatever did not shut down with the server
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.output.close()
