"""The pipeline's stages, each ``python -m mushroom.stages.<stage>`` (see dvc.yaml)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

from mushroom.core import paths


class StageFailed(Exception):
    """A stage refuses its inputs; the message names the file and the problem."""


def fail(stage: str, error: Exception | str) -> int:
    """A mistake in the params or the data: one line per problem on stderr, exit code 2."""
    for line in str(error).splitlines():
        print(f"{stage}: {line}", file=sys.stderr)
    return 2


def stage_parser(
    description: str, files: type, help: dict[str, str] | None = None
) -> argparse.ArgumentParser:
    """``--params`` and one option per field of the stage's ``files`` dataclass, each
    defaulting to the project's path (mushroom.core.paths), parsed as a path unless the
    field's metadata names another ``parse``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default=paths.PARAMS, type=Path)
    for field in fields(files):
        option = "--" + field.name.replace("_", "-")
        parser.add_argument(
            option,
            default=field.default,
            type=field.metadata.get("parse", Path),
            help=(help or {}).get(field.name),
        )
    return parser


def files_of(args: argparse.Namespace, files: type):
    """The stage's ``files`` as the command line gave them."""
    return files(**{field.name: getattr(args, field.name) for field in fields(files)})
