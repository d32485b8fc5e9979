"""Reading params.yaml, with errors that name the offending key."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

DEFAULT_PARAMS = Path("params.yaml")


class ParamsError(ValueError):
    pass


def load_params(path: str | Path = DEFAULT_PARAMS) -> dict[str, Any]:
    path = Path(path)
    try:
        params = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ParamsError(f"{path}: params file not found") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(params, dict):
        raise ParamsError(f"{path}: expected a mapping of sections at the top level")
    return params


def get(params: dict[str, Any], dotted_key: str) -> Any:
    """``get(params, "prepare.split")``: a missing key is an error naming that key."""
    node: Any = params
    for depth, part in enumerate(dotted_key.split(".")):
        if not isinstance(node, dict) or part not in node:
            where = ".".join(dotted_key.split(".")[: depth + 1])
            raise ParamsError(f"params.yaml: missing key {where!r}")
        node = node[part]
    return node


def choice(params: dict[str, Any], dotted_key: str, allowed: Iterable[str]) -> str:
    value = get(params, dotted_key)
    allowed = list(allowed)
    if value not in allowed:
        raise ParamsError(
            f"params.yaml: {dotted_key} = {value!r} is not one of: {', '.join(allowed)}"
        )
    return value


def number(params: dict[str, Any], dotted_key: str, low: float, high: float) -> float:
    value = get(params, dotted_key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ParamsError(
            f"params.yaml: {dotted_key} = {value!r} must be a number in [{low}, {high}]"
        )
    return value


def flatten(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"model": "logreg"}}`` -> ``{"train.model": "logreg"}`` (for MLflow)."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat
