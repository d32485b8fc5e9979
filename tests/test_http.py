"""The service's HTTP edge on a real `bentoml serve`: size limits however a body is sent,
one error shape on every endpoint matching the OpenAPI document, client errors logged as
one line, and the paths and redirects it answers."""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import threading
import time

import httpx
import pytest

from mushroom.core.catalogue import UCI
from servefixtures import Server

LIMIT = 1000 * 2048  # serve.max_mushrooms x BYTES_PER_MUSHROOM
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def server(uci_server):
    return uci_server


@pytest.fixture(scope="module")
def spec(server) -> dict:
    return httpx.get(f"{server.url}/docs.json").json()


def chunks(size: int, piece: int = 1 << 16):
    """A body of ``size`` bytes sent chunked: httpx gives no Content-Length for a generator."""
    for start in range(0, size, piece):
        yield b" " * min(piece, size - start)


def client_error_lines(server: Server) -> list[str]:
    return [
        line for line in server.output_path.read_text().splitlines() if "from 127.0.0.1:" in line
    ]


def wait_for_lines(server: Server, count: int) -> list[str]:
    """The server's client-error log lines once there are ``count`` (its output is written
    by another process)."""
    deadline = time.monotonic() + 30
    while len(lines := client_error_lines(server)) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    return lines


@pytest.mark.parametrize("route", ["/classify", "/feedback"])
@pytest.mark.parametrize(
    ("size", "chunked"),
    [(LIMIT + 1, True), (20_000_000, True), (LIMIT + 1, False)],
    ids=["chunked just over", "chunked 20 MB", "Content-Length"],
)
def test_an_oversized_body_is_413_however_it_is_sent(server, route, size, chunked):
    body = chunks(size) if chunked else b" " * size
    response = httpx.post(f"{server.url}{route}", content=body, headers=JSON, timeout=60)
    assert response.status_code == 413
    assert response.json() == {"error": response.json()["error"]}
    assert f"exceeds the limit of {LIMIT} bytes" in response.json()["error"]
    assert httpx.post(f"{server.url}/classify", json={"mushrooms": [{}]}).status_code == 200


def bad_requests() -> dict[str, tuple[str, dict, int]]:
    """Route, request and status of one bad request per kind."""
    gzipped = gzip.compress(b'{"mushrooms": [{}]}')
    return {
        "unknown value": ("/classify", {"json": {"mushrooms": [{"odor": "rotten"}]}}, 400),
        "number for a value": ("/classify", {"json": {"mushrooms": [{"odor": 3}]}}, 400),
        "string for the list": ("/classify", {"json": {"mushrooms": "odor"}}, 400),
        "number for an id": (
            "/feedback",
            {"json": {"request_id": 5, "true_class": "edible"}},
            400,
        ),
        "unknown top-level field": ("/classify", {"json": {"mushrooms": [{}], "x": 1}}, 400),
        "key twice in a mushroom": (
            "/classify",
            {"content": b'{"mushrooms": [{}, {"odor": "foul", "odor": "none"}]}'},
            400,
        ),
        "key twice, first null": (
            "/classify",
            {"content": b'{"mushrooms": [{"odor": null, "odor": "n"}]}'},
            400,
        ),
        "list twice": ("/classify", {"content": b'{"mushrooms": [{}], "mushrooms": [{}]}'}, 400),
        "empty body": ("/feedback", {"content": b""}, 400),
        "invalid JSON": ("/classify", {"content": b'{"mushrooms": [{"odor": "foul"}'}, 400),
        "unknown request id": (
            "/feedback",
            {"json": {"request_id": "a:b", "true_class": "edible"}},
            404,
        ),
        "oversized body": ("/classify", {"content": b" " * (LIMIT + 1)}, 413),
        "text content type": (
            "/feedback",
            {"content": b"{}", "headers": {"content-type": "text/plain"}},
            415,
        ),
        "gzip body": (
            "/classify",
            {"content": gzipped, "headers": JSON | {"content-encoding": "gzip"}},
            415,
        ),
    }


EXPECTED = {
    "unknown value": "mushrooms[0].odor: Input should be 'almond'",
    "number for a value": "mushrooms[0].odor: Input should be a string",
    "string for the list": "mushrooms: Input should be a valid array",
    "number for an id": "request_id: Input should be a valid string (got 5, a number)",
    "unknown top-level field": "x: unknown field",
    "key twice in a mushroom": "given more than once in one JSON object: mushrooms[1].odor",
    "key twice, first null": "given more than once in one JSON object: mushrooms[0].odor",
    "list twice": "given more than once in one JSON object: mushrooms",
    "empty body": "the request body is empty: send a JSON object with request_id, true_class",
    "invalid JSON": "request body: Invalid JSON",
    "unknown request id": "request_id 'a:b': no such prediction",
    "oversized body": f"exceeds the limit of {LIMIT} bytes",
    "text content type": "content-type must be application/json, got text/plain",
    "gzip body": "content-encoding gzip is not accepted",
}


def test_every_client_error_has_one_shape_documented_and_is_logged_as_one_line(server, spec):
    cases = bad_requests()
    logged_before = len(client_error_lines(server))
    for case, (route, request, status) in cases.items():
        response = httpx.post(f"{server.url}{route}", timeout=30, **({"headers": JSON} | request))
        assert response.status_code == status, (case, response.text)
        answer = response.json()
        assert list(answer) == ["error"] and EXPECTED[case] in answer["error"], (case, answer)
        documented = spec["paths"][route]["post"]["responses"][str(status)]
        schema = documented["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/Error"}, case
    lines = wait_for_lines(server, logged_before + len(cases))[logged_before:]
    assert len(lines) == len(cases)
    for line, (route, _, status) in zip(lines, cases.values(), strict=True):
        assert "[WARNING]" in line and f"POST {route} from 127.0.0.1: {status} " in line
    everything = server.output_path.read_text()
    assert "Traceback" not in everything and "[ERROR]" not in everything


def test_routes_and_methods_that_do_not_exist_answer_in_the_same_shape(server):
    unknown = httpx.post(f"{server.url}/nope", json={})
    assert unknown.status_code == 404
    assert unknown.json() == {"error": "no such endpoint: POST /nope"}
    wrong_method = httpx.get(f"{server.url}/classify")
    assert wrong_method.status_code == 405
    assert wrong_method.json() == {"error": "method not allowed: GET /classify; allowed: POST"}
    assert wrong_method.headers["allow"] == "POST"


def test_twenty_thousand_bad_values_get_a_short_answer(server):
    mushrooms = [{trait.name: "zzz" for trait in UCI.traits[:20]}] * 1000
    logged_before = len(client_error_lines(server))
    response = httpx.post(f"{server.url}/classify", json={"mushrooms": mushrooms}, timeout=60)
    assert response.status_code == 400 and len(response.content) < 10_000
    error = response.json()["error"]
    assert error.startswith("20000 invalid value(s) in the request: mushrooms[0].cap_shape: ")
    assert error.count('(got "zzz", a string)') == 20 and error.endswith("; and 19980 more")
    logged = wait_for_lines(server, logged_before + 1)[logged_before]
    assert "20000 invalid value(s)" in logged and len(logged) < 1000  # cut too


def test_openapi_documents_every_error_the_body_and_the_model_card(spec):
    assert spec["components"]["schemas"]["Error"]["required"] == ["error"]
    assert "InvalidArgument" not in spec["components"]["schemas"]
    documented = {}
    for route in ("/classify", "/feedback"):
        operation = spec["paths"][route]["post"]
        assert operation["requestBody"]["required"] is True
        documented[route] = set(operation["responses"])
    assert documented["/classify"] == {"200", "400", "413", "415", "431", "500", "503", "504"}
    assert documented["/feedback"] == documented["/classify"] | {"401", "404"}
    request = spec["components"]["schemas"]["classify__Input"]
    assert request["additionalProperties"] is False
    assert "200" in spec["paths"]["/model"]["get"]["responses"]


def test_model_is_served_at_its_path_and_redirects_never_name_the_host(server, uci_model, spec):
    forged = {"host": "evil.example"}
    card = httpx.get(f"{server.url}/model", headers=forged)
    assert card.status_code == 200 and card.json()["bento_model"] == uci_model.tag
    documented = spec["paths"]["/model"]["get"]["responses"]["200"]["content"]
    assert list(card.json()) == documented["application/json"]["schema"]["required"]
    assert "mlflow_run_id" not in card.json()
    slashed = httpx.get(f"{server.url}/model/", headers=forged)
    assert slashed.status_code == 307 and slashed.headers["location"] == "/model"
    posted = httpx.post(f"{server.url}/classify/", json={"mushrooms": [{}]}, headers=forged)
    assert posted.status_code == 307 and posted.headers["location"] == "/classify"


def test_control_characters_in_a_path_cannot_forge_a_log_line(server):
    forged = "2026-12-07T00:00:00+0000 [ERROR] [entry_service:mushroom-classifier:1] forged"
    before = len(client_error_lines(server))
    answer = httpx.post(f"{server.url}/nope%0A{forged.replace(' ', '%20')}%1B[31m", json={})
    assert answer.status_code == 404
    line = wait_for_lines(server, before + 1)[before]
    assert f"POST /nope\\x0a{forged[:20]}" in line
    assert not any(
        text.startswith(forged[:24]) for text in server.output_path.read_text().splitlines()
    )


def raw_request(server: Server, head: bytes, body: bytes = b"") -> bytes:
    """What the server sends back to ``head`` and ``body`` on a fresh connection, until it
    closes it or 5 s pass."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as connection:
        with contextlib.suppress(OSError):  # a refused head may be cut off as it is sent
            connection.sendall(head + body)
        received = b""
        with contextlib.suppress(TimeoutError):
            while chunk := connection.recv(65536):
                received += chunk
    return received


def head(fields: list[tuple[str, str]], body: bytes) -> bytes:
    lines = ["POST /classify HTTP/1.1", "host: 127.0.0.1", "content-type: application/json"]
    lines += [f"{name}: {value}" for name, value in fields]
    lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.mark.parametrize(
    "fields, refused",
    [
        ([("x-note", "a" * 60_000)], False),
        ([("x-note", "a" * 70_000)], True),
        ([(f"x-note-{i}", "a") for i in range(97)], False),  # 100 with the 3 always sent
        ([(f"x-note-{i}", "a") for i in range(98)], True),
    ],
    ids=["60 KB", "70 KB", "100 fields", "101 fields"],
)
def test_request_heads_are_bounded_in_bytes_and_fields(server, spec, fields, refused):
    body = b'{"mushrooms": [{"odor": "foul"}]}'
    answer = raw_request(server, head(fields, body), body)
    status_line, _, rest = answer.partition(b"\r\n")
    if not refused:
        assert status_line == b"HTTP/1.1 200 OK"
        return
    assert status_line == b"HTTP/1.1 431 Request Header Fields Too Large"
    headers, _, content = rest.partition(b"\r\n\r\n")
    assert b"connection: close" in headers and b"content-type: application/json" in headers
    assert json.loads(content) == {
        "error": "request header fields too large: at most 100 fields and 65536 bytes before "
        "the body"
    }
    documented = spec["paths"]["/classify"]["post"]["responses"]
    assert "431" in documented


def test_a_large_body_sent_with_its_head_in_one_write_is_no_large_head(server):
    """The bytes after the blank line are the body: 1,000 full descriptions right behind a
    small head in one write were once refused as a head over 64 KiB."""
    full = {t.name: next(iter(t.codes.values())) for t in UCI.traits}
    body = json.dumps({"mushrooms": [full] * 1000}).encode()
    assert len(body) > 4 * 64 * 1024
    answer = raw_request(server, head([("connection", "close")], body), body)
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 200 OK", rest[-300:]


def test_huge_headers_do_not_hold_the_server(server):
    """Two 50 MB header fields held a worker and a valid request behind them got 504."""
    huge = head([("x-note", "a" * 50_000_000)], b"")
    senders = [threading.Thread(target=raw_request, args=(server, huge)) for _ in range(2)]
    for sender in senders:
        sender.start()
    # Held behind them, it would get BentoML's 504 after 5 s: this client gives up first.
    answer = httpx.post(f"{server.url}/classify", json={"mushrooms": [{"odor": "foul"}]}, timeout=3)
    assert answer.status_code == 200
    for sender in senders:
        sender.join()
