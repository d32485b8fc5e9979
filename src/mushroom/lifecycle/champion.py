"""Which promoted model serves: the MLflow registry decides, read at start-up.

A `bentoml serve` chooses once, in its main process, and its workers serve that for the
server's life (``pin``). In order: ``MUSHROOM_MODEL`` (a BentoML store tag) when set; a
built bento serves the model it was built with (recorded in its ``bento.yaml``: a container
has no MLflow store); otherwise the version the ``champion`` alias of
``mushroom-classifier`` points to in this project's MLflow store, served from the BentoML
store entry promotion saved for it.

The registry is read without MLflow (mushroom.lifecycle.registry): an SQLite file, a
PostgreSQL database or an ``mlflow server``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from mushroom.core.paths import CHECKOUT, bentoml_home, mlflow_uri
from mushroom.lifecycle.registry import RegistryUnreadable, registry
from mushroom.lifecycle.store_names import ALIAS, NAME, find_entry

BENTO_MANIFEST = CHECKOUT / "bento.yaml"
FIX = "run `make promote` (or set MUSHROOM_MODEL to a store tag)"


class NoChampion(RuntimeError):
    """Nothing to serve: the message says what to run."""


@dataclass
class Selection:
    tag: str
    chosen_by: str  # "MUSHROOM_MODEL", "bento" or "champion"
    history: list[dict]


def read_history(store) -> list[dict]:
    """Every move of the alias, oldest first (see mushroom.lifecycle.alias_moves)."""
    try:
        return [json.loads(value) for value in store.moves()]
    except RegistryUnreadable as exc:
        raise NoChampion(f"{exc}; {FIX}") from None


def champion_tag(store) -> str:
    try:
        found = store.champion()
    except RegistryUnreadable as exc:
        raise NoChampion(f"{exc}; {FIX}") from None
    if found is None:
        raise NoChampion(f"{store.uri}: registered model {NAME} has no '{ALIAS}' alias; {FIX}")
    version, digest = found
    entry = find_entry(version, digest)
    if entry is None:
        raise NoChampion(
            f"'{ALIAS}' is {NAME} version {version}, which has no entry in the BentoML store "
            f"{bentoml_home() / 'models'}; {FIX}"
        )
    return str(entry.tag)


def bento_model() -> str:
    import yaml

    manifest = yaml.safe_load(BENTO_MANIFEST.read_text())
    models = [m for service in manifest.get("services") or [] for m in service.get("models") or []]
    tags = sorted({m["tag"] for m in models if m["tag"].split(":")[0] == NAME})
    if len(tags) != 1:
        raise NoChampion(f"{BENTO_MANIFEST}: expected one {NAME} model, found {tags}")
    return tags[0]


def use_project_store() -> None:
    """``bentoml serve`` from a project whose env.sh was not sourced: the project's BentoML
    store (mushroom.core.paths.bentoml_home), not BentoML's ~/bentoml, which other clones
    share. BentoML reads its home before it imports the service, so the ``bentoml``
    command is started again with it set (its workers inherit it). A built bento keeps
    the store it was served from."""
    if "BENTOML_HOME" in os.environ or BENTO_MANIFEST.exists():
        return
    os.environ["BENTOML_HOME"] = str(bentoml_home())
    if Path(sys.argv[0]).name == "bentoml":
        print(f"mushroom: BENTOML_HOME unset: using {bentoml_home()}", file=sys.stderr)
        os.execv(sys.argv[0], sys.argv)


PINNED = "MUSHROOM_SERVING"
"""``<tag> <chosen by>``: what `bentoml serve`'s main process chose at start, set for its
workers (see ``pin``)."""

logger = logging.getLogger(__name__)


def pin(selection: Selection) -> bool:
    """Hands ``selection`` to the processes this one starts: `bentoml serve`'s workers,
    restarted ones too, serve the version their server chose at start, never a champion
    moved since (a worker restarted after a promotion came back on the new champion,
    unrecorded). True when this process was handed one itself: it is such a worker."""
    inherited = PINNED in os.environ
    os.environ[PINNED] = f"{selection.tag} {selection.chosen_by}"
    return inherited


def select() -> Selection:
    uri = mlflow_uri()
    store = registry(uri)
    readable = store is not None and store.exists()
    history = read_history(store) if readable else []
    if os.environ.get(PINNED):
        tag, chosen_by = os.environ[PINNED].split(" ", 1)
        if chosen_by == "champion" and readable:
            with contextlib.suppress(NoChampion):
                now = champion_tag(store)
                if now != tag:
                    logger.warning(
                        "'%s' is %s now, but this server serves %s, the champion when it "
                        "started: restart the server to serve the new champion",
                        ALIAS,
                        now,
                        tag,
                    )
        return Selection(tag, chosen_by, history)
    if os.environ.get("MUSHROOM_MODEL"):
        return Selection(os.environ["MUSHROOM_MODEL"], "MUSHROOM_MODEL", history)
    if BENTO_MANIFEST.exists():
        return Selection(bento_model(), "bento", [])
    if store is None:
        raise NoChampion(
            f"MLFLOW_TRACKING_URI={uri} is no store the service reads (an sqlite:/// file, a "
            f"postgresql:// database or an http:// MLflow server); {FIX}"
        )
    if not readable:
        raise NoChampion(f"no MLflow store at {store.file}; {FIX}")
    return Selection(champion_tag(store), "champion", history)
