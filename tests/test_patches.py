"""The service's patches of BentoML and circus (mushroom.serving.patches): each refuses a
library version it was not written for, each has its intended effect, and no other module of
the package reaches into a library's internals. Fast: no model, no server process (the real
`bentoml serve` is in test_service.py, test_http.py and test_serving_security.py)."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import importlib.metadata
import logging
import os
import re
import stat
import warnings
from pathlib import Path
from typing import Annotated

import httpx
import numpy as np
import pytest
from pydantic import AfterValidator, Field
from starlette.responses import Response

from mushroom.core.versions import UnsupportedVersion
from mushroom.serving import patches

# BentoML warns of its own dependencies' deprecations (pydantic, pathspec) as it loads and
# as a service is defined: not this project's to act on.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import bentoml

    from mushroom.serving.http_guard import guard, guarded_input
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SRC = Path(__file__).resolve().parents[1] / "src"
PATCH_MODULES = {
    "mushroom/serving/patches.py",
    "mushroom/monitoring/evidently_compat.py",
    "mushroom/model/sklearn_compat.py",
}


def faked_versions(monkeypatch, **found: str) -> None:
    """``importlib.metadata.version`` answers ``found`` for those distributions."""
    real = importlib.metadata.version
    monkeypatch.setattr(
        importlib.metadata,
        "version",
        lambda name: found.get(name) or real(name),
    )


@pytest.fixture
def restored(monkeypatch):
    """The process-wide patches are undone after the test."""
    from bentoml._internal.marshal.dispatcher import Optimizer
    from circus.arbiter import Arbiter

    monkeypatch.setattr(Optimizer, "trigger_refresh", Optimizer.trigger_refresh)
    monkeypatch.setattr(Arbiter, "__init__", Arbiter.__init__)
    return Optimizer, Arbiter


def a_service():
    """A small batched service, as the real one is built: its input model made by
    ``guarded_input``; the number of times each body was validated is counted."""
    validated = []

    def count(numbers: list[int]) -> list[int]:
        validated.append(numbers)
        return numbers

    numbers = Annotated[list[int], Field(min_length=1), AfterValidator(count)]
    spec = guarded_input(numbers=(numbers, ...))

    @bentoml.service
    class Doubler:
        @bentoml.api(route="/double", input_spec=spec, batchable=True)
        def double(self, numbers: list[int]) -> list[int]:
            return [2 * n for n in numbers]

    return Doubler, spec, validated


async def answered(output: type, answer: list[int], _serde: object) -> Response:
    return Response(f"answered {answer}".encode(), media_type="text/plain")


@pytest.mark.parametrize(
    ("apply", "distribution"),
    [
        ("dispatch_when_free", "bentoml"),
        ("private_control_sockets", "kantoku"),
        ("private_control_sockets", "bentoml"),
        ("private_metrics_folder", "bentoml"),
        ("take_validated_input", "bentoml"),
        ("respond_with", "bentoml"),
    ],
)
def test_each_patch_refuses_a_version_it_was_not_written_for(
    restored, monkeypatch, apply, distribution
):
    optimizer, arbiter = restored
    service, spec, _ = a_service()
    arguments = {
        "take_validated_input": (spec, "key"),
        "respond_with": (service, "double", answered),
    }.get(apply, ())
    from bentoml._internal.configuration.containers import BentoMLContainer

    def state() -> tuple:
        return (
            optimizer.trigger_refresh,
            arbiter.__init__,
            spec.from_http_request,
            service.apis["double"].output_spec.to_http_response,
            BentoMLContainer.prometheus_multiproc_dir.get(),
        )

    untouched = state()
    faked_versions(monkeypatch, **{distribution: "99.0"})
    with pytest.raises(UnsupportedVersion) as refused:
        getattr(patches, apply)(*arguments)
    wanted = patches.WRITTEN_FOR[distribution]
    assert str(refused.value).startswith(
        f"the patch {apply} (mushroom.serving.patches) is written for {distribution} "
        f"{wanted}, but {distribution} 99.0 is installed"
    )
    assert untouched == state()


def test_the_patches_are_written_for_the_installed_versions():
    """The pins in pyproject.toml and the patches move together."""
    assert {d: importlib.metadata.version(d) for d in patches.WRITTEN_FOR} == patches.WRITTEN_FOR


def learned(optimizer_type) -> tuple[float, float, float]:
    """What a dispatcher's optimizer learns from batches that each waited ~70 ms."""
    optimizer = optimizer_type(max_latency=5.0)
    for n in (1, 2, 4, 8, 16):
        optimizer.o_stat.append((n, 0.001 * n + 0.002, 0.07))
    optimizer.trigger_refresh()
    return optimizer.o_a, optimizer.o_b, optimizer.wait


def test_the_dispatcher_keeps_its_latency_model_but_never_corks_for_its_learned_wait(restored):
    optimizer = restored[0]
    o_a, o_b, wait = learned(optimizer)
    assert wait == pytest.approx(0.07)  # BentoML's own: lone requests held ~70 ms
    patches.dispatch_when_free()
    patched = optimizer.trigger_refresh
    patches.dispatch_when_free()  # applied again: wraps BentoML's once
    assert optimizer.trigger_refresh is patched
    assert learned(optimizer) == (pytest.approx(o_a), pytest.approx(o_b), 0)


def test_bentomls_process_manager_listens_on_unix_sockets_only_its_user_may_reach(restored):
    from bentoml._internal.utils.circus import create_standalone_arbiter

    patches.private_control_sockets()
    patches.private_control_sockets()  # applied again: one folder per arbiter still
    arbiter = create_standalone_arbiter([])  # as `bentoml serve` makes it
    assert arbiter.endpoint.startswith("ipc://") and arbiter.pubsub_endpoint.startswith("ipc://")
    control = Path(arbiter.endpoint.removeprefix("ipc://"))
    events = Path(arbiter.pubsub_endpoint.removeprefix("ipc://"))
    assert (control.name, events.name) == ("control", "events")
    folder = control.parent
    assert events.parent == folder and folder.name.startswith("bentoml-control-")
    mode = folder.stat()
    assert stat.S_IMODE(mode.st_mode) == 0o700 and mode.st_uid == os.getuid()
    folder.rmdir()


@contextlib.asynccontextmanager
async def serving(app):
    """``app`` started (its lifespan: BentoML makes the service instance there), as a client."""
    inbox: asyncio.Queue = asyncio.Queue()
    outbox: asyncio.Queue = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    running = asyncio.create_task(app(scope, inbox.get, outbox.put))
    await inbox.put({"type": "lifespan.startup"})
    assert (await outbox.get())["type"] == "lifespan.startup.complete"
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await running


def test_bentoml_takes_the_guards_input_and_answers_with_the_services_response(caplog):
    """Each body is validated once, by the guard, and a client's mistake is answered in
    the service's shape without an ERROR from BentoML; the answer is ``respond``'s."""
    service, spec, validated = a_service()
    guard(service, max_body_bytes=1000)
    patches.respond_with(service, "double", answered)

    async def requests() -> tuple[httpx.Response, httpx.Response]:
        async with serving(service.to_asgi()) as client:
            good = await client.post("/double", json={"numbers": [1, 2]})
            bad = await client.post("/double", json={"numbers": ["x"], "more": 1})
            return good, bad

    with caplog.at_level(logging.INFO):
        good, bad = asyncio.run(requests())
    assert (good.status_code, good.text) == (200, "answered [2, 4]")
    assert validated == [[1, 2]]
    assert bad.status_code == 400
    assert bad.json() == {
        "error": "2 invalid value(s) in the request: numbers[0]: Input should be a valid "
        'integer, unable to parse string as an integer (got "x", a string); more: unknown '
        "field (or a trait already given by its other name) (got 1, a number)"
    }
    from_bentoml = [r for r in caplog.records if r.name.startswith(("bentoml", "_bentoml"))]
    assert [r.getMessage() for r in from_bentoml if r.levelno >= logging.WARNING] == []


def test_the_guard_refuses_an_api_whose_input_it_would_not_validate():
    @bentoml.service
    class Unguarded:
        @bentoml.api
        def echo(self, text: str) -> str:
            return text

    with pytest.raises(TypeError, match=r"API echo: give it input_spec=guarded_input"):
        guard(Unguarded, max_body_bytes=1000)


def library_internals(path: Path, root: Path = SRC) -> list[str]:
    """Imports in ``path`` of a library's private modules (a dotted name with a part that
    starts with ``_``), of circus, and of Evidently's legacy and storage modules; and reads
    of a private attribute (``x._name``) of anything but the code's own ``self`` or ``cls``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Attribute) and re.fullmatch(r"_[a-z]\w*", node.attr):
            owner = node.value.id if isinstance(node.value, ast.Name) else None
            if owner not in {"self", "cls"}:
                found.append(f"{path.relative_to(root).as_posix()}:{node.lineno}: .{node.attr}")
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            parts = name.split(".")
            private = any(p.startswith("_") for p in parts) and parts[0] != "__future__"
            if (
                private
                or parts[0] == "circus"
                or name.startswith(("evidently.legacy", "evidently.ui.storage"))
            ):
                found.append(f"{path.relative_to(root).as_posix()}:{node.lineno}: {name}")
    return found


def test_only_the_patch_modules_import_library_internals():
    found = [
        line
        for path in sorted((SRC / "mushroom").rglob("*.py"))
        if path.relative_to(SRC).as_posix() not in PATCH_MODULES
        for line in library_internals(path)
    ]
    assert found == []
    assert library_internals(SRC / "mushroom" / "serving" / "patches.py")  # the scan sees them


def test_the_scan_sees_each_kind_of_internal_import(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from __future__ import annotations\nimport bentoml._internal.utils\n"
        "from _bentoml_sdk import IODescriptor\nfrom circus.arbiter import Arbiter\n"
        "from evidently.legacy.core import new_id\nimport evidently.ui.storage.local.base\n"
        "from evidently.ui.workspace import Workspace\nfrom pydantic import BaseModel\n"
        "trees = model._predictors\nmine = self._cache\n"
    )
    assert [line.split(": ", 1)[1] for line in library_internals(probe, tmp_path)] == [
        "bentoml._internal.utils",
        "_bentoml_sdk",
        "circus.arbiter",
        "evidently.legacy.core",
        "evidently.ui.storage.local.base",
        "._predictors",
    ]


def test_the_scikit_learn_door_reads_the_trees_only_on_its_version(monkeypatch):
    from sklearn.ensemble import HistGradientBoostingClassifier

    from mushroom.model import sklearn_compat

    assert sklearn_compat.WRITTEN_FOR == {
        "scikit-learn": importlib.metadata.version("scikit-learn")
    }
    x = np.array([[0.0], [1.0], [0.0], [1.0]] * 10)
    model = HistGradientBoostingClassifier(max_iter=3, min_samples_leaf=2).fit(x, x[:, 0] > 0.5)
    trees, baseline = sklearn_compat.boosted_trees(model)
    assert len(trees) == 3 and baseline == pytest.approx(0.0)  # balanced classes: log-odds 0
    faked_versions(monkeypatch, **{"scikit-learn": "9.9"})
    with pytest.raises(UnsupportedVersion, match="written for scikit-learn 1.9.1, but .* 9.9"):
        sklearn_compat.boosted_trees(model)
