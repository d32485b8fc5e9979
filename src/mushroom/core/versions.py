"""The guard of every door to a library's internals (mushroom.serving.patches,
mushroom.monitoring.evidently_compat, mushroom.model.sklearn_compat): what reaches into a
library is used only on the exact version it was written for, and on any other fails
before touching anything, naming the library, the version found and the one it was
written for."""

from __future__ import annotations

import importlib.metadata


class UnsupportedVersion(RuntimeError):
    """A patch met a version of its library other than the one it was written for."""


def installed(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "none"


def require(patch: str, door: str, written_for: dict[str, str], *distributions: str) -> None:
    """Raises ``UnsupportedVersion`` unless each of ``distributions`` (default: all of
    ``written_for``) is installed at the version ``written_for`` says."""
    for distribution in distributions or tuple(written_for):
        found, wanted = installed(distribution), written_for[distribution]
        if found != wanted:
            raise UnsupportedVersion(
                f"the patch {patch} ({door}) is written for {distribution} {wanted}, "
                f"but {distribution} {found} is installed: check the patch against "
                f"{distribution} {found}, then update WRITTEN_FOR"
            )
