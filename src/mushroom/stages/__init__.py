"""The pipeline's stages, each ``python -m mushroom.stages.<stage>`` (see dvc.yaml)."""

from __future__ import annotations

import sys


def fail(stage: str, error: Exception | str) -> int:
    """A mistake in the params or the data: one line per problem on stderr, exit code 2."""
    for line in str(error).splitlines():
        print(f"{stage}: {line}", file=sys.stderr)
    return 2
