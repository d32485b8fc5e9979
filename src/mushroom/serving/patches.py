"""Every use the service makes of BentoML's, circus's and uvicorn's internals, behind one
guarded door.

Each patch here is a function that applies it, and each is applied only on the exact versions
it was written for (``WRITTEN_FOR``): on any other it raises ``UnsupportedVersion`` naming the
library, the version found and the version the patch was written for, before touching
anything. The service applies them all when it is imported (``bentoml serve`` imports it in
its main process and in every worker), and stops there with that message. Upgrading BentoML
or circus (the ``kantoku`` distribution) means reading each patch's reason below, checking it
against the new version's source and, if it still holds, updating ``WRITTEN_FOR``.

Everything else the service does with BentoML goes through its supported routes: API input
models given as ``input_spec``, ASGI middleware (``add_asgi_middleware``), ``asgi_app``,
``on_deployment``, ``__is_ready__``, and responses returned as Starlette ``Response``.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from typing import Any

from mushroom.core.versions import require as guard

WRITTEN_FOR = {"bentoml": "1.4.40", "kantoku": "0.18.3", "uvicorn": "0.54.0", "httptools": "0.9.0"}
"""The distributions the patches reach into, at the version the patches were written for."""
PATCHED = "mushroom_patch"
"""Set on a replacement function: a patch applied twice wraps the library's original once."""


def require(patch: str, *distributions: str) -> None:
    guard(patch, __name__, WRITTEN_FOR, *distributions)


def dispatch_when_free() -> None:
    """Adaptive batching without BentoML's learned cork wait.

    BentoML's ``CorkDispatcher`` holds a request back ("corks") for up to the average wait
    of the last 50 batches, hoping for company. That average includes time spent queued
    behind a batch that was still running, so after a burst it is large, and lone requests
    corked for it log the same wait again: it sustains itself. Measured here, a
    1,000-mushroom request took 28 ms on a fresh server and 98 ms after 5 s at concurrency
    64 (lone requests ~70 ms instead of 16-20 ms).

    With the learned wait pinned to zero a batch is dispatched as soon as the model is free,
    holding every request that arrived while the previous batch ran: concurrent requests
    still share one model call, and a lone request never waits for company.

    No supported route: BentoML 1.4.40 has no setting for the wait (``max_latency_ms`` and
    ``max_batch_size`` are the only knobs), so ``Optimizer.trigger_refresh``
    (``bentoml._internal.marshal.dispatcher``) is wrapped: it still refits the latency model
    BentoML uses to shed overload, then sets ``wait`` to 0. Takes effect for dispatchers
    that refresh after it: a worker builds its dispatchers after importing the service.
    """
    require("dispatch_when_free", "bentoml")
    from bentoml._internal.marshal.dispatcher import Optimizer

    learned_refresh = Optimizer.trigger_refresh
    if getattr(learned_refresh, PATCHED, False):
        return

    def refresh_without_cork_wait(self: Optimizer) -> None:
        learned_refresh(self)
        self.wait = 0

    setattr(refresh_without_cork_wait, PATCHED, True)
    Optimizer.trigger_refresh = refresh_without_cork_wait


def private_control_sockets() -> None:
    """Keep BentoML's process manager deaf to other users.

    ``bentoml serve`` runs its workers under circus, whose controller takes commands on a
    ZeroMQ endpoint: list, signal, stop, and ``add``, which starts any program. BentoML
    1.4.40 binds it (and circus's event feed) to a random TCP port on 127.0.0.1 with no
    authentication, and has no setting to change that: any local user or process that finds
    the port can run programs as the server's user. Here both become unix sockets in a
    directory only that user may enter (mode 0700), removed when the server exits.

    No supported route: the endpoints are hard-coded in BentoML's
    ``create_standalone_arbiter`` (``bentoml._internal.utils.circus``), a narrower patch
    point, but ``bentoml.serving.serve_http`` imports it before it imports the service, so
    a replacement made at the service's import is never called. circus's
    ``Arbiter.__init__`` (kantoku 0.18.3), which BentoML's arbiters call with the
    endpoints, is replaced instead: it takes effect for arbiters made after it, and
    ``bentoml serve`` imports the service, and so applies this, before it makes its arbiter.
    """
    require("private_control_sockets", "kantoku", "bentoml")
    from circus.arbiter import Arbiter

    circus_init = Arbiter.__init__
    if getattr(circus_init, PATCHED, False):
        return

    def init_with_private_sockets(self, watchers, endpoint, pubsub_endpoint, *args, **kwargs):
        folder = tempfile.mkdtemp(prefix="bentoml-control-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        control, events = f"ipc://{folder}/control", f"ipc://{folder}/events"
        circus_init(self, watchers, control, events, *args, **kwargs)

    setattr(init_with_private_sockets, PATCHED, True)
    Arbiter.__init__ = init_with_private_sockets


def private_metrics_folder() -> None:
    """Each server counts into a Prometheus folder of its own.

    BentoML 1.4.40 keeps the multiprocess files behind ``/metrics`` in
    ``$BENTOML_HOME/prometheus_multiproc_dir``, one folder for every server of a BentoML
    home, and empties it when a server starts: a second server of the same checkout wiped
    the first one's counters for good (its labelled-false-edible count went from 1 to 0, so
    the critical alert was lost). Here ``bentoml serve``'s main process points BentoML's
    configuration at a fresh folder only its user may enter (mode 0700, removed at exit),
    before ``serve_http`` prepares the folder and hands it to the workers as
    ``PROMETHEUS_MULTIPROC_DIR``; a worker, which has that variable, changes nothing.

    No supported route: the folder is not a setting, only a provider of BentoML's
    dependency container (``BentoMLContainer.prometheus_multiproc_dir``, in
    ``bentoml._internal.configuration.containers``), overridden with its ``set``. It takes
    effect because ``bentoml serve`` imports the service before it calls ``serve_http``.
    """
    require("private_metrics_folder", "bentoml")
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        return
    from bentoml._internal.configuration.containers import BentoMLContainer

    folder = tempfile.mkdtemp(prefix="bentoml-metrics-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    BentoMLContainer.prometheus_multiproc_dir.set(folder)


def take_validated_input(spec: type, scope_key: str) -> None:
    """BentoML takes an API's input, already validated, from the ASGI scope.

    ``spec`` is one of the service's own input models (a ``bentoml.IODescriptor`` subclass
    given as ``input_spec``); the request guard (``mushroom.serving.http_guard``) has read
    and validated the body and put the result in the scope under ``scope_key``. BentoML's
    ``IODescriptor.from_http_request``, which would parse and validate the body again, is
    overridden on ``spec`` only, to return it.

    The supported route, BentoML validating the body itself against ``input_spec``, costs
    behaviour: it answers ``{"error": "1 validation error for Input", "detail": [...]}``
    without the values at fault (the service names each, ``mushrooms[0].odor: ... (got 3,
    a number)``), logs every client mistake as an ERROR with a traceback
    (``api_endpoint_wrapper``), and keeps the last of keys repeated in one JSON object
    without a word. Checking in the guard and letting BentoML validate too would parse and
    validate every body twice: pydantic validation of 1,000 records costs ~2.5 ms, of the
    ~28 ms a 1,000-mushroom request takes.
    """
    require("take_validated_input", "bentoml")

    async def validated_input(cls: type, request: Any, _serde: object) -> Any:
        return request.scope[scope_key]

    spec.from_http_request = classmethod(validated_input)


def respond_with(
    service: Any, api: str, respond: Callable[[type, Any, object], Awaitable[Any]]
) -> None:
    """BentoML answers the batched API ``api`` of ``service`` with ``respond(spec, output,
    serde)``, a coroutine returning a Starlette ``Response``.

    For an API that is not batched the supported route is to return a ``Response`` from the
    method (BentoML then skips its own serialisation). A batched API's method returns the
    outputs of a whole batch, which BentoML slices per request (``AutoContainer``
    ``batch_to_batches``), so each request's output is a list, never a ``Response``: its
    answer is made by the API's output spec, whose ``to_http_response`` is overridden here,
    on that API's own output spec only.

    Why: BentoML's own path re-validates the list, dumps it to Python twice and encodes
    with ``json``: 2 ms of a 1,000-mushroom request; it also derives the media type by
    rebuilding the answer's JSON schema on every response, which was a quarter of the
    server's CPU at concurrency 8 (returning a pydantic model instead gave +25-70 % req/s).
    And a batch whose prediction log failed must answer each of its requests 503 with the
    service's error body and ``Retry-After``: raising instead would answer BentoML's
    "An unexpected error has occurred, please check the server log" and log a traceback.
    """
    require("respond_with", "bentoml")
    service.apis[api].output_spec.to_http_response = classmethod(respond)


def bounded_request_heads(max_bytes: int, max_fields: int) -> None:
    """Refuse a request head (request line and header fields) larger than ``max_bytes`` or
    with more than ``max_fields`` fields: 431, and the connection closed.

    uvicorn's httptools protocol buffers a request head of any size: two 50 MB header
    fields held a worker for seconds, and a valid request waiting behind them got 504.
    uvicorn 0.54.0 has no setting for it (``h11_max_incomplete_event_size`` is the h11
    protocol's, and h11 answers 400). Here ``HttpToolsProtocol.data_received`` counts the
    bytes that arrive before the head is complete (``on_headers_complete``) and refuses once
    they pass ``max_bytes`` with no end of the head within them, before parsing them (a
    request that follows another on a kept-alive connection is counted from its second
    read, ``on_message_begin``: one read more); ``on_header`` counts fields and, past
    ``max_fields``, raises out of the parser, which uvicorn answers with
    ``send_400_response``: that answer becomes the 431.
    """
    require("bounded_request_heads", "uvicorn", "httptools")
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as Protocol

    if getattr(Protocol.data_received, PATCHED, False):
        return
    received, begun, header = Protocol.data_received, Protocol.on_message_begin, Protocol.on_header
    completed, bad_request = Protocol.on_headers_complete, Protocol.send_400_response
    problem = (
        f"request header fields too large: at most {max_fields} fields and {max_bytes} bytes "
        "before the body"
    ).encode()
    answer = (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
        b'connection: close\r\ncontent-length: %d\r\n\r\n{"error": "%s"}'
        % (len(problem) + 13, problem)
    )
    # Of the head being read: bytes received, fields, and its last 3 bytes (the blank line
    # ending a head may straddle two reads). None: the head was read.
    Protocol.mushroom_head = (0, 0, b"")

    def refuse(self: Protocol) -> None:
        self.transport.write(answer)
        self.transport.close()

    def head_ends_in_bounds(size: int, tail: bytes, data: bytes) -> bool:
        """Whether the blank line ending the head is within the first ``max_bytes``: the
        same read may carry the body after it."""
        end = (tail + data).find(b"\r\n\r\n")
        return end != -1 and size - len(tail) + end + 4 <= max_bytes

    def data_received(self: Protocol, data: bytes) -> None:
        if self.mushroom_head is not None:
            size, fields, tail = self.mushroom_head
            self.mushroom_head = (size + len(data), fields, (tail + data[-3:])[-3:])
            if size + len(data) > max_bytes and not head_ends_in_bounds(size, tail, data):
                return refuse(self)
        received(self, data)

    def on_message_begin(self: Protocol) -> None:
        if self.mushroom_head is None:  # a request after another: counted from its next read
            self.mushroom_head = (0, 0, b"")
        begun(self)

    def on_header(self: Protocol, name: bytes, value: bytes) -> None:
        size, fields, tail = self.mushroom_head or (0, 0, b"")
        self.mushroom_head = (size, fields + 1, tail)
        if fields + 1 > max_fields:
            raise ValueError("too many header fields")  # httptools: an HttpParserError
        header(self, name, value)

    def on_headers_complete(self: Protocol) -> None:
        self.mushroom_head = None
        completed(self)

    def send_400_response(self: Protocol, msg: str) -> None:
        head = self.mushroom_head
        if head is not None and head[1] > max_fields:
            return refuse(self)
        bad_request(self, msg)

    for replacement in (data_received, on_message_begin, on_header, on_headers_complete):
        setattr(replacement, PATCHED, True)
        setattr(Protocol, replacement.__name__, replacement)
    Protocol.send_400_response = send_400_response
