"""Every package the code imports is declared in pyproject.toml, pinned: the project's
dependencies for src/, the ``serve`` group (what the bento installs) for the service's
import closure, and the ``dev`` group on top for tests/ and bench/. A package that only
arrives as another's dependency can change or vanish with that package's next release."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
import yaml

from test_dvc_deps import REPO, import_closure

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
SRC = REPO / "src"


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(*groups: str) -> dict[str, str]:
    """Declared requirement -> its pin, from the project's dependencies and ``groups``."""
    requirements = list(PYPROJECT["project"]["dependencies"])
    for group in groups:
        requirements += PYPROJECT["dependency-groups"][group]
    return dict(
        (normalized(name), pin)
        for name, pin in (re.match(r"([\w.-]+)\s*(.*)", r).groups() for r in requirements)
    )


def third_party_imports(paths: list[Path]) -> dict[str, str]:
    """Top-level module -> the first file:line importing it, standard library, the package
    and the tests' and benchmarks' own modules left out."""
    local = {p.stem for folder in ("tests", "bench") for p in (REPO / folder).glob("*.py")}
    local.add("mushroom")
    found: dict[str, str] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in local:
                    found.setdefault(top, f"{path}:{node.lineno}")
    return found


def undeclared(paths: list[Path], requirements: dict[str, str]) -> list[str]:
    distributions = packages_distributions()
    return sorted(
        f"{where}: {module} (from {', '.join(distributions.get(module, ['no installed package']))})"
        for module, where in third_party_imports(paths).items()
        if not {normalized(d) for d in distributions.get(module, [])} & requirements.keys()
    )


def test_every_dependency_is_pinned():
    loose = [f"{n} {p}" for n, p in declared("dev", "serve").items() if not p.startswith("==")]
    assert loose == []


def test_the_package_imports_only_declared_dependencies():
    assert undeclared(sorted(SRC.rglob("*.py")), declared()) == []


def test_the_service_imports_only_what_the_bento_installs():
    target = yaml.safe_load((REPO / "bentofile.yaml").read_text())["service"].split(":")[0]
    serve = dict(
        (normalized(name), pin)
        for name, pin in (
            re.match(r"([\w.-]+)\s*(.*)", r).groups()
            for r in PYPROJECT["dependency-groups"]["serve"]
        )
    )
    assert undeclared(sorted(import_closure(target, SRC)), serve) == []


@pytest.mark.parametrize("folder", ["tests", "bench"])
def test_tests_and_benchmarks_import_only_declared_dependencies(folder):
    assert undeclared(sorted((REPO / folder).glob("*.py")), declared("dev")) == []


def test_the_check_sees_an_undeclared_import(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import numpy\nimport json\nfrom mushroom.core import text\n")
    assert undeclared([probe], {}) != [] and undeclared([probe], {"numpy": "==2"}) == []
