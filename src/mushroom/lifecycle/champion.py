"""Which promoted model serves: the MLflow registry decides, read at start-up.

A `bentoml serve` chooses once, in its main process, and its workers serve that for the
server's life (``pin``). In order: ``MUSHROOM_MODEL`` (a BentoML store tag) when set; a
built bento serves the model it was built with (recorded in its ``bento.yaml``: a container
has no MLflow store); otherwise the version the ``champion`` alias of
``mushroom-classifier`` points to in this project's MLflow store, served from the BentoML
store entry promotion saved for it.

The registry is read with ``sqlite3``, not MLflow: a client lookup took ~3 s, a direct read
15 ms, in each of the server's processes, and MLflow is not a serving requirement. The price
is knowing three of MLflow's tables; tests/test_lifecycle.py reads what MLflow wrote.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path

from mushroom.core.paths import CHECKOUT, bentoml_home, mlflow_uri, read_only_uri
from mushroom.lifecycle.store_names import ALIAS, MOVE_TAG_PREFIX, NAME, find_entry

BENTO_MANIFEST = CHECKOUT / "bento.yaml"
FIX = "run `make promote` (or set MUSHROOM_MODEL to a store tag)"


class NoChampion(RuntimeError):
    """Nothing to serve: the message says what to run."""


@dataclass
class Selection:
    tag: str
    chosen_by: str  # "MUSHROOM_MODEL", "bento" or "champion"
    history: list[dict]


def registry_file(uri: str) -> Path | None:
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def query(db: Path, sql: str, *args: str) -> list[tuple]:
    try:
        with sqlite3.connect(read_only_uri(db), uri=True) as connection:
            return connection.execute(sql, args).fetchall()
    except sqlite3.Error as exc:
        raise NoChampion(f"{db}: cannot read the MLflow registry ({exc}); {FIX}") from None


def read_history(db: Path) -> list[dict]:
    """Every move of the alias, oldest first (see mushroom.lifecycle.alias_moves)."""
    rows = query(
        db,
        "SELECT key, value FROM registered_model_tags WHERE name = ? AND key LIKE ?",
        NAME,
        f"{MOVE_TAG_PREFIX}%",
    )
    moves = sorted(rows, key=lambda row: int(row[0].removeprefix(MOVE_TAG_PREFIX)))
    return [json.loads(value) for _, value in moves]


def champion_tag(db: Path) -> str:
    found = query(
        db,
        "SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?",
        NAME,
        ALIAS,
    )
    if not found:
        raise NoChampion(f"{db}: registered model {NAME} has no '{ALIAS}' alias; {FIX}")
    version = str(found[0][0])
    digest = query(
        db,
        "SELECT value FROM model_version_tags WHERE name = ? AND version = ? AND key = ?",
        NAME,
        version,
        "inputs_sha256",
    )
    entry = find_entry(version, digest[0][0] if digest else None)
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
    db = registry_file(uri)
    history = read_history(db) if db and db.exists() else []
    if os.environ.get(PINNED):
        tag, chosen_by = os.environ[PINNED].split(" ", 1)
        if chosen_by == "champion" and db is not None and db.exists():
            with contextlib.suppress(NoChampion):
                now = champion_tag(db)
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
    if db is None:
        raise NoChampion(f"MLFLOW_TRACKING_URI={uri} is not a SQLite file the service reads; {FIX}")
    if not db.exists():
        raise NoChampion(f"no MLflow store at {db}; {FIX}")
    return Selection(champion_tag(db), "champion", history)
