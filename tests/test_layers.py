"""The package is built in wings, each importing only the wings below it:

    core < data < model < lifecycle < monitoring, serving < stages, cli

so a wing can be read, tested and shipped (the bento holds no pipeline code) without the
ones above it. Imports are read with ``ast`` (inside functions too), as for dvc.yaml."""

from __future__ import annotations

import pytest
import yaml

from test_dvc_deps import PACKAGE, REPO, import_closure, imported_names

SRC = REPO / "src"
RANK = {"core": 0, "data": 1, "model": 2, "lifecycle": 3, "monitoring": 4, "serving": 4}
TOP = {"stages", "cli"}
"""The entry points: the DVC stages and the ``mushroom`` command, above every wing."""


def module_name(path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted((SRC / PACKAGE).rglob("*.py"))}


def wing(module: str) -> str | None:
    """``mushroom.model.policy`` -> ``model``; None for the package's own ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def package_imports(module: str) -> set[str]:
    return {name for name in imported_names(module, MODULES[module]) if name in MODULES}


def test_every_module_lives_in_a_wing_or_is_an_entry_point():
    homeless = [m for m in MODULES if wing(m) not in RANK.keys() | TOP | {None}]
    assert homeless == []


def upward(module: str, imports: set[str]) -> list[str]:
    """The names in ``imports`` above or beside ``module``'s wing."""
    return sorted(
        name
        for name in imports
        if wing(name) in TOP
        or (
            wing(name) in RANK
            and wing(name) != wing(module)
            and RANK[wing(name)] >= RANK[wing(module)]
        )
    )


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle a depth-first walk of ``graph`` meets. Importing ``a.b.c`` runs
    ``a.b``'s ``__init__`` first: a module importing from its own parent is no cycle."""
    state: dict[str, str] = {}
    found = []

    def visit(module: str, trail: list[str]) -> None:
        state[module] = "open"
        for name in sorted(graph[module]):
            if module.startswith(name + "."):
                continue
            if state.get(name) == "open":
                found.append(trail[trail.index(name) :] + [name])
            elif name not in state:
                visit(name, trail + [name])
        state[module] = "done"

    for module in graph:
        if module not in state:
            visit(module, [module])
    return found


@pytest.mark.parametrize("module", sorted(m for m in MODULES if wing(m) in RANK))
def test_a_wing_imports_only_itself_and_the_wings_below(module):
    assert upward(module, package_imports(module)) == []


def test_no_import_cycles():
    assert cycles({m: package_imports(m) - {m, PACKAGE} for m in MODULES}) == []


def test_the_checks_catch_an_upward_import_and_a_cycle(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from mushroom.model.policy import Judge\nfrom mushroom.stages import fail\n")
    imports = imported_names("mushroom.core.bad", bad) & MODULES.keys()
    assert upward("mushroom.core.bad", imports) == [
        "mushroom.model",
        "mushroom.model.policy",
        "mushroom.stages",
    ]
    assert upward("mushroom.serving.x", {"mushroom.monitoring.drift"}) == [
        "mushroom.monitoring.drift"
    ]
    assert cycles({"a.x": {"a.y"}, "a.y": {"a.x"}, "a": set()}) == [["a.x", "a.y", "a.x"]]
    assert cycles({"a.x": {"a"}, "a": {"a.x"}}) == []


def test_the_bento_ships_exactly_what_the_service_imports():
    """The bento holds the service's import closure and the page's files, and nothing of the
    pipeline: serving never imports the monitoring wing, the stages or the CLI."""
    target = yaml.safe_load((REPO / "bentofile.yaml").read_text())["service"].split(":")[0]
    imported = {p.relative_to(SRC).as_posix() for p in import_closure(target, SRC)}
    page = SRC / PACKAGE / "serving" / "page"
    imported |= {p.relative_to(SRC).as_posix() for p in page.iterdir()}
    included = set(yaml.safe_load((REPO / "bentofile.yaml").read_text())["include"])
    assert sorted(imported - included) == [] and sorted(included - imported) == []
    assert not {path.split("/")[1] for path in imported} & {"monitoring", "stages", "cli.py"}
