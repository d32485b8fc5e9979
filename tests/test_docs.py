"""The documentation: a short README that leads into docs/, relative links that resolve
(anchors by GitHub's rules), and a module map that names exactly the package's modules.
Pure file checks: no network, no environment."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = REPO / "docs"
PACKAGE = REPO / "src" / "mushroom"
MAX_README_LINES = 200

FENCE = re.compile(r"^ {0,3}(```|~~~)")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
INLINE_CODE = re.compile(r"`[^`\n]*`")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)  # http:, https:, mailto:, ...


def prose(text: str) -> str:
    """``text`` with fenced code blocks blanked (line count kept) and inline code removed."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            lines.append("")
        else:
            lines.append("" if fenced else INLINE_CODE.sub("", line))
    return "\n".join(lines)


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: markup and punctuation but '-' and '_' dropped,
    lowercase, spaces as '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's anchor in ``path``, repeats numbered as GitHub does (``-1``, ``-2``)."""
    seen: dict[str, int] = {}
    found = set()
    for line in prose(path.read_text()).splitlines():
        if match := HEADING.match(line):
            slug = anchor(match.group(2))
            found.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
            seen[slug] = seen.get(slug, 0) + 1
    return found


def relative_links(path: Path) -> list[str]:
    """The relative link targets of a Markdown file (code and external links left out)."""
    targets = LINK.findall(prose(path.read_text()))
    return [t for t in targets if not EXTERNAL.match(t)]


def broken_links(path: Path) -> list[str]:
    """Each relative link of ``path`` whose file, or whose heading in a .md file, is missing."""
    broken = []
    for target in relative_links(path):
        file_part, _, fragment = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif fragment and linked.suffix == ".md" and fragment not in anchors(linked):
            broken.append(f"{target}: no heading #{fragment} in {linked.name}")
    return broken


def module_map(readme_text: str) -> set[str]:
    """The modules the README's module map names, as paths under src/mushroom/: the first
    fenced block of the "## Module map" section, a tree indented by two spaces per level
    (``src/mushroom/``, then ``wing/`` or ``module.py``, then a wing's ``module.py``), each
    entry optionally followed by a ``# comment``."""
    section = re.search(r"^## Module map\n(.*?)(?=^## |\Z)", readme_text, re.M | re.S)
    assert section, "the README has no '## Module map' section"
    block = re.search(r"^```[^\n]*\n(.*?)^```", section.group(1), re.M | re.S)
    assert block, "the module map section has no fenced block"
    named, wing = set(), None
    for line in block.group(1).splitlines():
        entry = re.match(r"^( *)([\w./]+)\s*(?:#.*)?$", line)
        assert entry, f"module map line not understood: {line!r}"
        depth, name = len(entry.group(1)) // 2, entry.group(2)
        if depth == 0:
            assert name == "src/mushroom/", f"the map's root is {name!r}"
        elif depth == 1 and name.endswith("/"):
            wing = name
        elif depth == 1 and name.endswith(".py"):
            named.add(name)
            wing = None
        elif depth == 2 and name.endswith(".py") and wing:
            named.add(wing + name)
        else:
            raise AssertionError(f"module map line not understood: {line!r}")
    return named


def package_modules(package: Path) -> set[str]:
    return {
        p.relative_to(package).as_posix() for p in package.rglob("*.py") if p.name != "__init__.py"
    }


def markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def test_the_readme_is_a_short_tutorial():
    lines = README.read_text().splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines"


def test_the_readme_gives_the_two_commands_ci_and_people_run():
    """`.ci/run` calls `make test`: the README's own command, exactly."""
    commands = README.read_text().splitlines()
    assert any(line.startswith("make run    # ") for line in commands)
    assert any(line.startswith("make test   # ") for line in commands)


def test_every_relative_link_resolves():
    broken = {p.relative_to(REPO).as_posix(): broken_links(p) for p in markdown_files()}
    assert {name: links for name, links in broken.items() if links} == {}


def test_the_link_checker_reports_a_broken_link_or_anchor(tmp_path):
    (tmp_path / "b.md").write_text("# Results: dataset × split × model\n\n## Again\n## Again\n")
    page = tmp_path / "a.md"
    page.write_text(
        "# Title\n\n"
        "[ok](b.md#results-dataset--split--model) [ok](b.md#again-1) [ok](#title)\n"
        "[split\nover lines](b.md) [web](https://example.org/missing.md) `[code](nope.md)`\n"
        "```\n[fenced](nope.md)\n```\n"
        "[gone](missing.md) [bad anchor](b.md#results) [bad self](#nothing)\n"
    )
    assert broken_links(page) == [
        "missing.md: no such file",
        "b.md#results: no heading #results in b.md",
        "#nothing: no heading #nothing in a.md",
    ]


def test_anchors_follow_githubs_rules():
    assert anchor("When may it say edible?") == "when-may-it-say-edible"
    assert anchor("params.yaml") == "paramsyaml"
    assert anchor("Monitoring (drift)") == "monitoring-drift"
    assert anchor("The `drift_share` of [docs](x.md)") == "the-drift_share-of-docs"


def test_every_doc_is_linked_from_the_readme():
    linked = {
        (README.parent / target.partition("#")[0]).resolve() for target in relative_links(README)
    }
    unlinked = [p.name for p in sorted(DOCS.glob("*.md")) if p.resolve() not in linked]
    assert DOCS.is_dir()
    assert unlinked == []


def test_the_module_map_names_every_module_and_no_other():
    named, present = module_map(README.read_text()), package_modules(PACKAGE)
    assert {"missing from the map": present - named, "not in the package": named - present} == {
        "missing from the map": set(),
        "not in the package": set(),
    }


def test_the_module_map_parser_reads_wings_and_entry_points(tmp_path):
    text = (
        "# x\n\n## Module map\n\nprose `not/a.py`\n\n```text\nsrc/mushroom/\n"
        "  core/        # the ground\n    atomic.py  # writes\n  cli.py       # the command\n"
        "```\n\n## Next\n\n```\nsrc/mushroom/\n  other/\n    ignored.py\n```\n"
    )
    assert module_map(text) == {"core/atomic.py", "cli.py"}
    package = tmp_path / "mushroom"
    for module in ["__init__.py", "cli.py", "core/__init__.py", "core/atomic.py", "core/text.py"]:
        (package / module).parent.mkdir(parents=True, exist_ok=True)
        (package / module).write_text("")
    assert package_modules(package) - module_map(text) == {"core/text.py"}


def test_a_queued_sweep_starts_from_the_committed_params():
    """`dvc exp run` in the workspace leaves its params there: a sweep queued after it
    would inherit them unless params.yaml is restored first."""
    for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        lines = doc.read_text().splitlines()
        for i, line in enumerate(lines):
            if line.startswith("dvc exp run --queue"):
                before = lines[:i]
                ran = max(
                    (j for j, b in enumerate(before) if b.startswith("dvc exp run ")), default=-1
                )
                restored = [b for b in before[ran + 1 :] if b.startswith("git restore params.yaml")]
                assert ran == -1 or restored, f"{doc.name}:{i + 1}: sweep after an experiment"
