"""`bentoml build` of the promoted model: what a user with Docker would containerize."""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

import repocopy
from servefixtures import Server

REPO = repocopy.REPO


def pins(text: str) -> list[str]:
    """``name==version`` of each requirement line, environment markers dropped."""
    lines = (line.split(";")[0].strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith(("#", "-"))]


@pytest.fixture(scope="module")
def built(uci_model, tmp_path_factory) -> tuple[str, Path, Path]:
    """The built bento's tag, the bento unpacked, and the archive it was exported to."""
    bentoml = str(Path(sys.executable).parent / "bentoml")
    env = uci_model.env | {"MUSHROOM_MODEL": uci_model.tag}
    built = subprocess.run(
        [bentoml, "build", "-f", "bentofile.yaml", "src", "--output", "tag"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr
    tag = built.stdout.strip().splitlines()[-1].removeprefix("__tag__:")
    archive = tmp_path_factory.mktemp("bento") / "mushroom.bento"
    exported = subprocess.run(
        [bentoml, "export", tag, str(archive)], env=env, capture_output=True, text=True, timeout=600
    )
    assert exported.returncode == 0, exported.stderr
    unpacked = archive.with_suffix("")
    with tarfile.open(archive) as tar:
        tar.extractall(unpacked, filter="data")
    return tag, unpacked, archive


@pytest.fixture(scope="module")
def bento(built) -> Path:
    return built[1]


def test_the_built_bento_serves_the_promoted_model(built, uci_model, tmp_path):
    """What a container runs: `bentoml serve <bento>` from the bento's own code and models."""
    tag = built[0]
    # Python's verbose mode names the file behind each import, in the server and its worker.
    server = Server(
        uci_model, tmp_path / "predictions.db", target=tag, extra_env={"PYTHONVERBOSE": "1"}
    )
    try:
        import httpx

        answer = httpx.post(
            f"{server.url}/classify", json={"mushrooms": [{"odor": "f"}]}, timeout=30
        ).json()[0]
        info = httpx.get(f"{server.url}/model", timeout=30).json()
    finally:
        server.stop()
    assert answer["verdict"] == "poisonous" and answer["model_version"].endswith(":1")
    assert answer["reasons"][0] == "unfamiliar" and "odor=foul" in answer["reasons"]
    assert info["bento_model"] == uci_model.tag
    name, version = tag.split(":")
    bento_code = Path(uci_model.env["BENTOML_HOME"], "bentos", name, version, "src")
    imported = re.findall(r"[^\s'\"]+/mushroom/serving/service\.py", server.output_path.read_text())
    assert imported, "no import of mushroom.serving.service in the server's verbose output"
    assert {Path(path).resolve() for path in imported} == {
        (bento_code / "mushroom" / "serving" / "service.py").resolve()
    }


def test_a_bento_in_the_projects_store_logs_where_the_cli_looks(built, uci_model, tmp_path):
    """`make bento` builds into the project's .bentoml/; a bento served from there logs into
    the project's data/live, so `mushroom monitor check --live` and `feedback export` find
    its answers without --log."""
    tag, _, archive = built
    project = tmp_path / "project"
    (project / "data" / "live").mkdir(parents=True)
    (project / "dvc.yaml").write_text("stages: {}\n")
    store = {"BENTOML_HOME": str(project / ".bentoml")}
    bentoml = str(Path(sys.executable).parent / "bentoml")
    imported = subprocess.run(
        [bentoml, "import", str(archive)],
        env=uci_model.env | store,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert imported.returncode == 0, imported.stderr
    expected_log = project / "data" / "live" / "predictions.db"
    unset = {"MUSHROOM_PREDICTION_LOG": ""}
    server = Server(uci_model, expected_log, target=tag, extra_env=store | unset)
    try:
        import httpx

        answer = httpx.post(
            f"{server.url}/classify", json={"mushrooms": [{"odor": "f"}]}, timeout=30
        ).json()[0]
        labelled = httpx.post(
            f"{server.url}/feedback",
            json={"request_id": answer["request_id"], "true_class": "poisonous"},
            timeout=30,
        )
        said = server.output_path.read_text()
    finally:
        server.stop()
    assert labelled.status_code == 200, labelled.text
    assert f"prediction log {expected_log}" in said
    exported = subprocess.run(
        [sys.executable, "-m", "mushroom.cli", "feedback", "export", "--no-dvc"],
        cwd=project,
        env=uci_model.env | unset,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert exported.returncode == 0, exported.stderr
    assert "1 new labelled answers" in exported.stdout, exported.stdout


def test_dockerfile_uses_python_311_and_installs_the_pinned_requirements(bento):
    dockerfile = (bento / "env" / "docker" / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in dockerfile
    assert "pip install -r $BENTO_PATH/env/python/requirements.txt" in dockerfile
    pinned = pins((bento / "env" / "python" / "requirements.txt").read_text())
    # BentoML appends its own pin (the same bentoml==1.4.40) to the file it was given.
    assert set(pinned) == set(pins((REPO / "src" / "requirements-serve.txt").read_text()))
    for pin in (
        "bentoml==1.4.40",
        "scikit-learn==1.9.1",
        "category-encoders==2.11.2",
        "pandas==2.3.3",
    ):
        assert pin in pinned
    assert not [p for p in pinned if p.startswith(("dvc", "mlflow", "evidently"))]
    assert "ENV BENTOML_DO_NOT_TRACK=$BENTOML_DO_NOT_TRACK" in dockerfile


def test_the_container_runs_as_its_own_user_not_root(bento):
    dockerfile = (bento / "env" / "docker" / "Dockerfile").read_text()
    user = re.search(r"^ARG BENTO_USER=(\w+)$", dockerfile, re.M).group(1)
    uid = int(re.search(r"^ARG BENTO_USER_UID=(\d+)$", dockerfile, re.M).group(1))
    assert "useradd -m -u $BENTO_USER_UID" in dockerfile
    assert re.findall(r"^USER (\S+)$", dockerfile, re.M)[-1] == user != "root" and uid != 0
    # The prediction log is in that user's home, which it owns.
    assert "ENV MUSHROOM_PREDICTION_LOG=$MUSHROOM_PREDICTION_LOG" in dockerfile
    assert f"ARG MUSHROOM_PREDICTION_LOG=/home/{user}/" in dockerfile


def test_the_serving_docs_give_the_container_user_its_log_folder(bento):
    """docs/serving.md's `docker run` mounts a folder the container's user can write."""
    dockerfile = (bento / "env" / "docker" / "Dockerfile").read_text()
    uid = re.search(r"^ARG BENTO_USER_UID=(\d+)$", dockerfile, re.M).group(1)
    gid = re.search(r"^ARG BENTO_USER_GID=(\d+)$", dockerfile, re.M).group(1)
    log = re.search(r"^ARG MUSHROOM_PREDICTION_LOG=(\S+)$", dockerfile, re.M).group(1)
    serving = (REPO / "docs" / "serving.md").read_text()
    folder, owner = re.search(r"mkdir -p (\S+) && sudo chown (\d+:\d+) \1", serving).groups()
    assert owner == f"{uid}:{gid}"
    assert f'-v {folder[:-1]}:{Path(log).parent}"' in serving


def test_serving_requirements_match_the_lock():
    exported = subprocess.run(
        [
            str(Path(sys.executable).parent / "uv"),
            "export",
            "--frozen",
            "--only-group",
            "serve",
            "--no-hashes",
            "--no-emit-project",
            "--no-annotate",
            "--no-header",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert exported.split() == (REPO / "src" / "requirements-serve.txt").read_text().split(), (
        "src/requirements-serve.txt is stale: run `make requirements`"
    )


def test_bento_holds_the_model_and_only_the_serving_code(bento, uci_model):
    version = uci_model.tag.split(":")[1]
    model_dir = bento / "models" / "mushroom-classifier" / version
    assert (model_dir / "model.joblib").stat().st_size > 0
    assert (model_dir / "model_card.json").is_file()
    shipped = {
        p.relative_to(bento / "src").as_posix()
        for p in (bento / "src" / "mushroom").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert shipped == set(yaml.safe_load((REPO / "bentofile.yaml").read_text())["include"])
    assert not (bento / "src" / "mushroom" / "stages").exists()


def test_service_imports_from_the_bento_code_alone(bento, uci_model):
    """The include list is complete: the service loads with only the bento's src on the path."""
    probe = (
        "import sys; sys.path = [p for p in sys.path if not p.endswith('/src')];"
        f"sys.path.insert(0, {str(bento / 'src')!r});"
        "import mushroom.serving.service as s; print(s.__file__); print(s.MushroomClassifier.name)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env=uci_model.env | {"MUSHROOM_MODEL": uci_model.tag},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        str(bento / "src" / "mushroom" / "serving" / "service.py"),
        "mushroom-classifier",
    ]
