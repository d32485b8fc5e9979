"""The service's HTTP edge: requests are checked here before BentoML sees them, and every
client error leaves here in one shape, ``{"error": "..."}``, logged as one WARNING line.

- A POST to an API route must be JSON (415; a compressed body too: Content-Encoding is
  refused) and its body stay under a size limit, counted as it streams in whatever
  Content-Length said (413). The body is then validated against the route's input model
  (400 naming each invalid value, at most ``MAX_SHOWN_ERRORS``), with unknown top-level
  fields and keys repeated in one JSON object refused too, and BentoML takes the validated
  input from the ASGI scope instead of parsing the body again (a patch, see
  ``mushroom.serving.patches.take_validated_input``). BentoML's own handling would answer
  in another shape and log a client's mistake as an ERROR with a traceback.
- A route with a token (``/feedback`` when ``MUSHROOM_FEEDBACK_TOKEN`` is set) answers
  401 without ``Authorization: Bearer <token>``, before its body is read.
- Any other 4xx (BentoML's unknown routes and 405s, the service's 404) is rewritten
  into the one shape and logged as one line.
- A redirect's Location is made relative: Starlette builds it from the Host header.
"""

from __future__ import annotations

import hmac
import json
import logging
from http import HTTPStatus
from itertools import chain
from typing import Any
from urllib.parse import urlsplit

import bentoml
import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError, create_model
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mushroom.core.text import MAX_SHOWN_ERRORS, cut, printable
from mushroom.serving import patches

LOG = logging.getLogger("mushroom.http")
VALIDATED_INPUT = "mushroom.validated_input"
"""The ASGI scope key the validated input travels under, from the guard to BentoML."""
"""Longer input values and paths are cut in messages."""
MAX_LOGGED_CHARACTERS = 500
MAX_DRAINED_BYTES = 64 * 2**20
"""How much of an oversized body is read and dropped before the 413 is sent: answering
while the client is still sending makes the server close a connection with unread data,
which the client sees as a reset rather than as the answer. Beyond this, it may."""
_REWRITTEN_HEADERS = (b"content-type", b"content-length")


class ClientError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class Disconnected(Exception):
    """The client went away before its body was read: there is no one to answer."""


def error_response(status: int, message: str) -> JSONResponse:
    """An error answer in the shape every endpoint uses. An API method returns it rather
    than raising, which BentoML would log as an ERROR with a traceback."""
    return JSONResponse({"error": message}, status_code=status)


def log_client_error(scope: Scope, status: int, message: str) -> None:
    client = scope.get("client") or ("?", 0)
    line = printable(cut(message, MAX_LOGGED_CHARACTERS))
    path = printable(cut(scope["path"]))
    LOG.warning("%s %s from %s: %d %s", scope["method"], path, client[0], status, line)


async def send_whole(send: Send, status: int, headers, body: bytes) -> None:
    """A whole answer at once, its Content-Length added (``headers`` must not hold one)."""
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _reply(scope: Scope, send: Send, status: int, message: str, headers=()) -> None:
    log_client_error(scope, status, message)
    body = json.dumps({"error": message}).encode()
    await send_whole(send, status, [*headers, (b"content-type", b"application/json")], body)


def _path(loc: tuple) -> str:
    """A pydantic error location as the client wrote it: ``mushrooms[0].odor``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def _json_type(value: str | float | bool) -> str:
    if isinstance(value, bool):
        return "a boolean"
    return "a string" if isinstance(value, str) else "a number"


def _error_line(error: dict, model: type[BaseModel]) -> str:
    where, message, value = _path(error["loc"]), error["msg"], error.get("input")
    kind = error["type"]
    if not where:
        where = "request body"
        if kind in ("model_type", "dict_type"):
            message = f"should be a JSON object with the field(s) {', '.join(model.model_fields)}"
    if kind == "unknown_value" and not isinstance(value, str):
        message = "Input should be a string: a value's name or code letter"
    elif kind == "extra_forbidden":
        message = "unknown field (or a trait already given by its other name)"
    if value is None and kind != "missing":
        message += " (got null)"
    elif isinstance(value, str | int | float | bool):
        message += f" (got {cut(json.dumps(value))}, {_json_type(value)})"
    return f"{cut(where)}: {message}"


def validation_message(exc: ValidationError, model: type[BaseModel]) -> str:
    """Every invalid value of a request in one line: the first ``MAX_SHOWN_ERRORS``, then
    how many more (a request of 1,000 mushrooms may hold 20,000)."""
    errors = exc.errors(include_url=False)
    lines = [_error_line(error, model) for error in errors[:MAX_SHOWN_ERRORS]]
    more = f"; and {len(errors) - len(lines)} more" if len(errors) > len(lines) else ""
    return f"{len(errors)} invalid value(s) in the request: " + "; ".join(lines) + more


def _keys_shown(validated: BaseModel) -> int:
    """Keys the validated input shows the body gave, at least: its fields, and the keys of
    each object in its lists (the mushrooms) whose value is not null."""
    count = len(validated.model_fields_set)
    for name in validated.model_fields_set:
        value = getattr(validated, name)
        if isinstance(value, list):
            values = list(chain.from_iterable(v.values() for v in value if isinstance(v, dict)))
            count += len(values) - values.count(None)
    return count


def _repeated_keys(body: bytes) -> list[str]:
    """Paths of the keys given more than once in one JSON object (``mushrooms[0].odor``)."""
    repeats: dict[int, list[str]] = {}

    def collect(pairs: list[tuple[str, object]]) -> dict:
        found = dict(pairs)
        if len(found) < len(pairs):
            keys = [key for key, _ in pairs]
            repeats[id(found)] = sorted({key for key in keys if keys.count(key) > 1})
        return found

    document = json.loads(body, object_pairs_hook=collect)
    paths: list[str] = []

    def walk(value: object, path: tuple) -> None:
        if isinstance(value, dict):
            paths.extend(_path((*path, key)) for key in repeats.get(id(value), []))
            for key, item in value.items():
                walk(item, (*path, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, (*path, index))

    if repeats:
        walk(document, ())
    return paths


def validated_input(model: type[BaseModel], body: bytes) -> BaseModel:
    """``body`` as ``model``, or a ``ClientError`` naming what is wrong. JSON parsers, and
    pydantic's, keep the last of repeated keys: they are looked for here. Every key is
    followed by a colon, so a body with no more colons than the keys its validated form
    shows repeats none; only other bodies (with a repeat, a null, or a colon in a string)
    are parsed again, in Python, to find them."""
    if not body.strip():
        fields = ", ".join(model.model_fields)
        raise ClientError(400, f"the request body is empty: send a JSON object with {fields}")
    try:
        validated = model.model_validate_json(body)
    except ValidationError as exc:
        raise ClientError(400, validation_message(exc, model)) from None
    colons = int(np.count_nonzero(np.frombuffer(body, np.uint8) == ord(":")))
    repeated = _repeated_keys(body) if colons > _keys_shown(validated) else []
    if repeated:
        keys = "; ".join(cut(path) for path in repeated[:MAX_SHOWN_ERRORS])
        raise ClientError(400, f"key(s) given more than once in one JSON object: {keys}")
    return validated


async def _drain(receive: Receive, budget: int) -> None:
    while budget > 0:
        message = await receive()
        budget -= len(message.get("body", b""))
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


def _error_text(status: int, body: bytes, scope: Scope, headers: dict) -> str:
    """The message of an error answer the application gave, whatever its shape."""
    try:
        found = json.loads(body)
    except ValueError:
        found = None
    if isinstance(found, list) and len(found) == 1:  # BentoML answers a 4xx as [{"error": ...}]
        found = found[0]
    if isinstance(found, dict) and isinstance(found.get("error"), str):
        return found["error"]
    where = f"{scope['method']} {cut(scope['path'])}"
    if status == 404:
        return f"no such endpoint: {where}"
    if status == 405:
        allowed = headers.get(b"allow", b"").decode(errors="replace")
        return f"method not allowed: {where}; allowed: {allowed or 'none'}"
    return body.decode(errors="replace").strip() or HTTPStatus(status).phrase


def _relative_location(message: Message) -> Message:
    headers = []
    for name, value in message["headers"]:
        if name.lower() == b"location":
            url = urlsplit(value.decode("latin-1"))
            value = (url.path + (f"?{url.query}" if url.query else "")).encode("latin-1")
        headers.append((name, value))
    return message | {"headers": headers}


class RequestGuard:
    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        inputs: dict[str, type[BaseModel]],
        tokens: dict[str, str],
    ):
        self.app, self.max_body_bytes, self.inputs = app, max_body_bytes, inputs
        self.tokens = {route: f"Bearer {token}".encode() for route, token in tokens.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        model = self.inputs.get(scope["path"]) if scope["method"] == "POST" else None
        answering = self._answering(scope, send)
        if model is None:
            await self.app(scope, receive, answering)
            return
        expected = self.tokens.get(scope["path"])
        # compare_digest: the time taken tells nothing about how much of a guess was right.
        given = dict(scope["headers"]).get(b"authorization", b"")
        if expected is not None and not hmac.compare_digest(given, expected):
            challenge = [(b"www-authenticate", b"Bearer")]
            why = "a wrong bearer token" if given else "no Authorization: Bearer header"
            message = f"{scope['path']} needs the bearer token: {why}"
            await _reply(scope, send, 401, message, challenge)
            return
        try:
            body = await self._body(scope, receive)
            scope[VALIDATED_INPUT] = validated_input(model, body)
        except Disconnected:
            return
        except ClientError as exc:
            await _reply(scope, send, exc.status, exc.message)
            return
        await self.app(scope, _replay(body, receive), answering)

    async def _body(self, scope: Scope, receive: Receive) -> bytes:
        headers = dict(scope["headers"])
        media_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if media_type != b"application/json":
            got = media_type.decode(errors="replace") or "none"
            raise ClientError(415, f"content-type must be application/json, got {cut(got)}")
        encoding = headers.get(b"content-encoding", b"identity").strip().lower()
        if encoding not in (b"", b"identity"):
            got = cut(encoding.decode(errors="replace"))
            raise ClientError(
                415, f"content-encoding {got} is not accepted: send the JSON body uncompressed"
            )
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            # A client that waits for "100 Continue" has not sent the body: do not ask for it.
            if b"100-continue" not in headers.get(b"expect", b"").lower():
                await _drain(receive, min(int(declared), MAX_DRAINED_BYTES))
            raise ClientError(
                413,
                f"request body of {int(declared)} bytes exceeds the limit "
                f"of {self.max_body_bytes} bytes",
            )
        chunks, received, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise Disconnected
            chunks.append(message.get("body", b""))
            received += len(chunks[-1])
            more = message.get("more_body", False)
            if received > self.max_body_bytes:
                if more:
                    await _drain(receive, MAX_DRAINED_BYTES - received)
                raise ClientError(
                    413, f"request body exceeds the limit of {self.max_body_bytes} bytes"
                )
        return b"".join(chunks)

    def _answering(self, scope: Scope, send: Send) -> Send:
        """``send`` for the application's answer: a 4xx rewritten into the one error shape and
        logged, a redirect made relative."""
        held: Message | None = None
        parts: list[bytes] = []

        async def answering_send(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                status = message["status"]
                if 300 <= status < 400:
                    message = _relative_location(message)
                elif 400 <= status < 500:
                    held = message
                    return
            elif held is not None and message["type"] == "http.response.body":
                parts.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                await self._rewritten(scope, send, held, b"".join(parts))
                return
            await send(message)

        return answering_send

    async def _rewritten(self, scope: Scope, send: Send, start: Message, body: bytes) -> None:
        status = start["status"]
        kept = [(k, v) for k, v in start["headers"] if k.lower() not in _REWRITTEN_HEADERS]
        message = _error_text(status, body, scope, dict(start["headers"]))
        await _reply(scope, send, status, message, kept)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, then the client's own messages (a disconnect)."""
    replayed = False

    async def replaying_receive() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replaying_receive


class _ClosedInput(bentoml.IODescriptor):
    model_config = ConfigDict(extra="forbid")


def guarded_input(**fields: Any) -> type[BaseModel]:
    """An API's input model, given to ``@bentoml.api`` as ``input_spec``: ``fields`` as
    ``pydantic.create_model`` takes them, unknown fields refused. Named ``Input``, as the
    models BentoML derives from a method's parameters, so the OpenAPI document names it
    ``<api>__Input``."""
    return create_model("Input", __base__=_ClosedInput, **fields)


def guard(service, max_body_bytes: int, tokens: dict[str, str] | None = None) -> None:
    """Put ``RequestGuard`` in front of a BentoML ``service``, each of whose APIs takes an
    input model made by ``guarded_input`` (its ``input_spec``): the guard validates each
    body, and BentoML takes the validated input from the scope instead of parsing the body
    itself (a patch: ``mushroom.serving.patches.take_validated_input``). A route in
    ``tokens`` answers 401, before its body is read, without ``Authorization: Bearer
    <its token>``."""
    inputs = {}
    for api in service.apis.values():
        if not issubclass(api.input_spec, _ClosedInput):
            raise TypeError(f"API {api.name}: give it input_spec=guarded_input(...)")
        patches.take_validated_input(api.input_spec, VALIDATED_INPUT)
        inputs[api.route] = api.input_spec
    service.add_asgi_middleware(
        RequestGuard, max_body_bytes=max_body_bytes, inputs=inputs, tokens=tokens or {}
    )
