"""Moves of the MLflow ``champion`` alias and their history: promotion, ``mushroom rollback``
and ``mushroom history``.

Every move is a tag ``champion_move_<n>`` of the registered model ``mushroom-classifier``
holding JSON: when, action, from, to, why, and the new champion's key test metrics. It lives
with the alias in the project's MLflow store: the MLflow UI shows it, and the service reads
it at start-up with the alias (mushroom.lifecycle.champion). A running server keeps serving
the model it loaded; restarting it serves the new champion.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from mushroom.core.paths import mlflow_uri
from mushroom.lifecycle.registry import for_mlflow, registry_file
from mushroom.lifecycle.store_names import (
    ALIAS,
    GATE_TAG,
    MOVE_TAG_PREFIX,
    NAME,
    POLICY_FILE,
    find_entry,
)
from mushroom.model.bundle import OutdatedBundle, read_policy

KEY_METRICS = ("test.accuracy", "test.false_edible", "test.coverage", "cv.accuracy")
"""Copied into each move from the new champion's version tags (set by promotion)."""


class RollbackRefused(RuntimeError):
    pass


class NoRegistry(RuntimeError):
    pass


def client():
    """The store the service reads (mushroom.lifecycle.champion), never created here."""
    import mlflow

    uri = mlflow_uri()
    db = registry_file(uri)
    if db is not None and not db.exists():
        raise NoRegistry(f"no MLflow store at {db}: run `make promote`")
    return mlflow.MlflowClient(for_mlflow(uri))


def current_champion(mlflow_client) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(mlflow_client.get_model_version_by_alias(NAME, ALIAS).version)
    except MlflowException as exc:
        # No registered model yet, or no alias on it.
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST" or f"alias {ALIAS} not found" in str(exc):
            return None
        raise


def history(mlflow_client) -> list[dict]:
    """Every move of the alias, oldest first."""
    from mlflow.exceptions import MlflowException

    try:
        tags = mlflow_client.get_registered_model(NAME).tags
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return []  # nothing registered yet
        raise
    numbered = {
        int(k.removeprefix(MOVE_TAG_PREFIX)): v
        for k, v in tags.items()
        if k.startswith(MOVE_TAG_PREFIX)
    }
    return [json.loads(numbered[n]) for n in sorted(numbered)]


def move_champion(mlflow_client, version: str, action: str, reason: str) -> dict | None:
    """Point the alias at ``version`` and record the move; None if it already pointed there."""
    previous = current_champion(mlflow_client)
    if previous == version:
        return None
    mlflow_client.set_registered_model_alias(NAME, ALIAS, version)
    tags = mlflow_client.get_model_version(NAME, version).tags
    move = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "action": action,
        "from": previous,
        "to": version,
        "reason": reason,
        "metrics": {k: float(tags[k]) for k in KEY_METRICS if k in tags},
    }
    tags = mlflow_client.get_registered_model(NAME).tags
    numbers = [int(k.removeprefix(MOVE_TAG_PREFIX)) for k in tags if k.startswith(MOVE_TAG_PREFIX)]
    key = f"{MOVE_TAG_PREFIX}{max(numbers, default=0) + 1:06d}"
    mlflow_client.set_registered_model_tag(NAME, key, json.dumps(move))
    return move


def previous_champion(moves: list[dict], current: str) -> str | None:
    """The latest earlier champion, skipping any a rollback already moved away from: a
    second rollback goes further back instead of returning to the model just rolled back."""
    rolled_back = {}
    for move in moves:
        if move["from"] is not None:
            rolled_back[move["from"]] = move["action"] == "rollback"
    champions = [moves[0]["from"], *(move["to"] for move in moves)] if moves else []
    for version in reversed(champions):
        if version not in (None, current) and not rolled_back.get(version):
            return version
    return None


def rollback(mlflow_client, to: str | None, reason: str) -> dict:
    current = current_champion(mlflow_client)
    if current is None:
        raise RollbackRefused(f"{NAME} has no '{ALIAS}' to roll back: run `make promote`")
    target = to or previous_champion(history(mlflow_client), current)
    if target is None:
        raise RollbackRefused(
            f"no earlier champion to roll back to from version {current}; "
            "give one with --to VERSION (see `mushroom history`)"
        )
    if target == current:
        raise RollbackRefused(f"version {target} is already '{ALIAS}'")
    versions = {str(v.version): v for v in mlflow_client.search_model_versions(f"name = '{NAME}'")}
    if target not in versions:
        known = ", ".join(sorted(versions, key=int))
        raise RollbackRefused(f"--to {target}: {NAME} has no version {target} (versions: {known})")
    tags = versions[target].tags
    if tags.get(GATE_TAG) != "passed":
        raise RollbackRefused(
            f"version {target} did not pass the evaluate gate at promotion "
            f"(its tag '{GATE_TAG}' is {tags.get(GATE_TAG)!r}); not serving it"
        )
    entry = find_entry(target, tags.get("inputs_sha256"))
    if entry is None:
        raise RollbackRefused(
            f"version {target} has no entry in the BentoML store, so the service could not "
            "load it; check out its commit and run `make promote` to save it again"
        )
    try:
        read_policy(Path(entry.path) / POLICY_FILE)
    except OutdatedBundle as exc:
        raise RollbackRefused(f"version {target}: the service would not serve it: {exc}") from exc
    return move_champion(mlflow_client, target, "rollback", reason)


def describe(move: dict) -> str:
    metrics = " ".join(f"{k}={v:g}" for k, v in move["metrics"].items())
    return (
        f"{move['when']}  {move['action']:<8} {move['from'] or '-'} -> {move['to']}  "
        f"{metrics}  reason: {move['reason']}"
    )


def rollback_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mushroom rollback",
        description="Move the MLflow 'champion' alias back; restart the server to serve it.",
    )
    parser.add_argument("--to", metavar="VERSION", help="default: the previous champion")
    parser.add_argument("--reason", required=True, help="why, kept in the history")
    args = parser.parse_args(argv)
    if args.to is not None and not args.to.isdigit():
        parser.error(f"--to {args.to!r}: expected a registry version number, e.g. 2")
    if not args.reason.strip():
        parser.error("--reason: say why the champion is rolled back")
    try:
        move = rollback(client(), args.to, args.reason.strip())
    except (RollbackRefused, NoRegistry) as exc:
        print(f"mushroom rollback: refused: {exc}", file=sys.stderr)
        return 3
    print(
        f"mushroom rollback: '{ALIAS}' moved from version {move['from']} to {move['to']}; "
        "restart the server (make serve) to serve it"
    )
    return 0


def history_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mushroom history", description="Every move of the MLflow 'champion' alias."
    )
    parser.add_argument("--json", action="store_true", help="the moves as a JSON list")
    args = parser.parse_args(argv)
    try:
        mlflow_client = client()
    except NoRegistry as exc:
        print(f"mushroom history: {exc}", file=sys.stderr)
        return 2
    moves = history(mlflow_client)
    if args.json:
        print(json.dumps(moves, indent=2))
        return 0
    for move in moves:
        print(describe(move))
    print(f"{ALIAS}: version {current_champion(mlflow_client) or 'none (run `make promote`)'}")
    return 0
