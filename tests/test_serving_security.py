"""What a real `bentoml serve` exposes besides the API: its page at `/`, its process
manager's control socket, and metrics that stay its own next to another server."""

from __future__ import annotations

import contextlib
import os
import re
import stat
from pathlib import Path

import httpx
import pytest
from circus.client import CircusClient

from servefixtures import Server


@pytest.fixture(scope="module")
def server(uci_server):
    return uci_server


def test_the_api_page_is_the_projects_and_loads_nothing_from_elsewhere(server, uci_model):
    page = httpx.get(f"{server.url}/docs", timeout=30)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    title = re.search(r"<title>(.*)</title>", page.text).group(1)
    assert title == f"Mushroom classifier: is it edible? (mushroom-classifier:{uci_model.version})"
    for boilerplate in ("googletagmanager", "slack", "twitter", "github", "bentoml"):
        assert boilerplate not in page.text.lower()
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "http" not in policy
    assets = re.findall(r'(?:src|href)="([^"]*)"', page.text)
    assert assets and all(asset.startswith("./static_content/") for asset in assets)
    for asset in assets:  # BentoML serves Swagger UI's files itself: the page works offline
        assert httpx.get(f"{server.url}/{asset}", timeout=30).status_code == 200

    document = httpx.get(f"{server.url}/docs.json", timeout=30).json()
    assert document["info"]["title"] == "Mushroom classifier: is it edible?"
    assert document["info"]["version"] == f"mushroom-classifier:{uci_model.version}"
    assert uci_model.tag in document["info"]["description"]
    assert not re.search(r"slack|twitter|https?://", str(document["info"]), re.IGNORECASE)


def socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(FileNotFoundError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target.removeprefix("socket:[").removesuffix("]"))
    return inodes


def listening_tcp_ports(pid: int) -> set[int]:
    inodes, ports = socket_inodes(pid), set()
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        for row in table.read_text().splitlines()[1:] if table.exists() else []:
            fields = row.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def listening_unix_sockets(pid: int) -> set[Path]:
    inodes, paths = socket_inodes(pid), set()
    for row in Path("/proc/net/unix").read_text().splitlines()[1:]:
        fields = row.split()
        accepting = int(fields[3], 16) & 0x10000  # __SO_ACCEPTCON
        if len(fields) == 8 and fields[6] in inodes and accepting:
            paths.add(Path(fields[7]))
    return paths


def test_the_process_manager_takes_commands_only_from_the_servers_user(server):
    """circus's controller runs any command it is sent; BentoML put it on a loopback TCP
    port that every local user could reach."""
    manager = server.process.pid
    assert listening_tcp_ports(manager) == {server.port}
    control = {p.name: p for p in listening_unix_sockets(manager)}["control"]
    folder = control.parent.stat()
    assert stat.S_IMODE(folder.st_mode) == 0o700 and folder.st_uid == os.getuid()
    # Its owner still manages it there.
    listed = CircusClient(endpoint=f"ipc://{control}", timeout=10).call(
        {"command": "list", "properties": {}}
    )
    assert listed["status"] == "ok" and listed["watchers"] == ["service"]


def classified(server: Server) -> float:
    """Answered classify requests, as the server's /metrics counts them."""
    metrics = httpx.get(f"{server.url}/metrics", timeout=30)
    assert metrics.status_code == 200
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.text.splitlines()
        if line.startswith("bentoml_service_request_total{")
        and 'endpoint="/classify"' in line
        and 'http_response_code="200"' in line
    )


def classify(server: Server) -> None:
    answer = httpx.post(f"{server.url}/classify", json={"mushrooms": [{"odor": "f"}]}, timeout=30)
    assert answer.status_code == 200


def test_a_second_server_of_the_same_model_leaves_the_first_ones_metrics(
    server, uci_model, tmp_path
):
    """BentoML emptied its home's Prometheus folder at start-up, so a second server of the
    same checkout wiped the first one's counters: now each server has a folder of its own,
    even on a shared BentoML home."""
    classify(server)
    before = classified(server)
    shared_home = {"BENTOML_HOME": str(server.home)}
    second = Server(uci_model, tmp_path / "predictions.db", extra_env=shared_home)
    try:
        classify(server)
        classify(second)
        counts = classified(server), classified(second)
    finally:
        second.stop()
    assert before >= 1 and counts == (before + 1, 1)
