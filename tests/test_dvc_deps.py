"""Each dvc.yaml stage depends on exactly the package files its command imports: a change to
any of them reruns the stage (a missing dep leaves outputs made by old code looking up to
date), and a change to any other source file does not (an extra dep reruns it for nothing).
A wing the stage imports whole is declared as its folder.
Imports are read with ``ast``, inside functions too, so finding them imports nothing heavy.
A package's ``__init__.py`` runs before any of its modules, so it counts as imported."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "mushroom"
STAGE_MODULE = re.compile(r"\bpython -m ([\w.]+)")


def with_parents(module: str) -> list[str]:
    """``a.b.c`` -> ``a``, ``a.b``, ``a.b.c``: importing a module runs its packages first."""
    parts = module.split(".")
    return [".".join(parts[: end + 1]) for end in range(len(parts))]


def module_file(module: str, src: Path) -> Path | None:
    """The file Python runs for ``module``; None for a name that is no module (the ``X`` of
    ``from mushroom.core.catalogue import X``)."""
    base = src.joinpath(*module.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def imported_names(module: str, path: Path) -> set[str]:
    """Every dotted name ``module`` imports from the package, as a module or from one."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's own package, up level - 1 more
                package = module if path.name == "__init__.py" else module.rpartition(".")[0]
                parts = package.split(".")
                package = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{package}.{node.module}" if node.module else package
            else:
                base = node.module
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return {
        name
        for imported in names
        for name in with_parents(imported)
        if name.split(".")[0] == PACKAGE
    }


def import_closure(module: str, src: Path) -> set[Path]:
    """The package files running ``python -m module`` executes, followed transitively."""
    files, seen, pending = set(), set(), with_parents(module)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        path = module_file(name, src)
        if path is not None:
            files.add(path)
            pending.extend(imported_names(name, path))
    return files


def by_name_imports(path: Path) -> list[str]:
    """Calls that import a module named by a string, which ``import_closure`` cannot follow."""
    calls = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in {"import_module", "__import__", "spec_from_file_location"}:
                calls.append(f"{path.relative_to(REPO)}:{node.lineno}: {name}(...)")
    return calls


STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def stage_closure(stage: str) -> set[Path]:
    command = STAGE_MODULE.search(STAGES[stage]["cmd"])
    assert command, f"dvc.yaml: stage {stage}: cmd runs no `python -m <module>`"
    module = command.group(1)
    assert module_file(module, REPO / "src"), f"dvc.yaml: stage {stage}: no module {module}"
    return import_closure(module, REPO / "src")


def declared_files(stage: str) -> tuple[set[str], list[str]]:
    """The package files a stage's ``src/`` deps name (a folder: every module in it), and
    its folder deps."""
    declared = [dep for dep in STAGES[stage].get("deps", []) if dep.startswith("src/")]
    folders = [dep for dep in declared if (REPO / dep).is_dir()]
    files = {dep for dep in declared if dep not in folders}
    for folder in folders:
        files |= {path.relative_to(REPO).as_posix() for path in (REPO / folder).rglob("*.py")}
    return files, folders


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_source_deps_are_exactly_what_its_command_imports(stage):
    imported = {path.relative_to(REPO).as_posix() for path in stage_closure(stage)}
    declared, _ = declared_files(stage)
    missing, extra = sorted(imported - declared), sorted(declared - imported)
    assert not missing and not extra, (
        f"dvc.yaml: stage {stage}: deps lack {missing} (imported), list {extra} (never imported)"
    )


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_a_wing_the_stage_imports_whole_is_one_folder_dep(stage):
    """A folder, not its module list, wherever the stage imports every module in it."""
    imported = {path.relative_to(REPO).as_posix() for path in stage_closure(stage)}
    _, folders = declared_files(stage)
    wings = {path.parent for path in (REPO / "src" / PACKAGE).glob("*/__init__.py")}
    listed_whole = [
        wing.relative_to(REPO).as_posix()
        for wing in sorted(wings)
        if {p.relative_to(REPO).as_posix() for p in wing.rglob("*.py")} <= imported
        and wing.relative_to(REPO).as_posix() not in folders
    ]
    assert listed_whole == [], f"dvc.yaml: stage {stage}: list these as folders: {listed_whole}"


def test_no_stage_imports_package_modules_by_name():
    executed = set().union(*(stage_closure(stage) for stage in STAGES))
    assert [call for path in sorted(executed) for call in by_name_imports(path)] == []


def test_the_closure_follows_every_import_form_and_nothing_else(tmp_path):
    package = tmp_path / PACKAGE
    sources = {  # each file but unused.py is reached by one import form only
        "__init__.py": "from mushroom import base\n",
        "base.py": "import json\n",
        "entry.py": (
            "from mushroom import catalogue, NOT_A_MODULE\n"
            "from mushroom.deep.leaf import VALUE\n"
            "from . import relative\n"
            "def later():\n"
            "    import mushroom.lazy\n"
        ),
        "catalogue.py": "from .plain import NAME\n",
        "plain.py": "NAME = 1\n",
        "relative.py": "",
        "lazy.py": "",
        "twice.py": "",
        "unused.py": "",
        "deep/__init__.py": "",
        "deep/leaf.py": "from ..twice import VALUE\n",
    }
    for name, text in sources.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)

    closure = import_closure("mushroom.entry", tmp_path)

    assert {path.relative_to(package).as_posix() for path in closure} == set(sources) - {
        "unused.py"
    }


@pytest.mark.parametrize("written", ["dvc_plots/index.html", "mlflow.db", ".bentoml/models/x"])
def test_what_the_daily_loop_writes_is_ignored_by_git(written):
    """`dvc plots show`, the MLflow store and the BentoML store are no source to commit."""
    ignored = subprocess.run(["git", "check-ignore", "-q", written], cwd=REPO)
    assert ignored.returncode == 0, f"{written} would show up in git status"


def test_dvc_compares_a_few_figures_and_keeps_the_detail_in_plain_reports():
    """`dvc exp show` over a sweep stays readable and `dvc metrics diff` short: one metrics
    file of at most a dozen figures; per-trait detail lives in plain outputs."""
    declared = [
        path
        for stage in STAGES.values()
        for entry in stage.get("metrics", [])
        for path in (entry if isinstance(entry, dict) else {entry: None})
    ]
    assert declared == ["reports/summary.json"]
    from mushroom.model.evaluation import COMPARED, compared

    every = {split: dict.fromkeys(names, 0) for split, names in COMPARED.items()}
    summary = compared(every | {"labelled": {"false_edible": 0}}, {"a": 0}, {"passed": True})

    def leaves(node) -> int:
        return sum(leaves(v) for v in node.values()) if isinstance(node, dict) else 1

    assert leaves(summary) <= 12
