"""Small raw datasets written by the tests, in the real files' exact formats.

Values are drawn from the catalogue's code books, so they stay valid whatever codes the
catalogue gains; the class follows a learnable rule so models have something to find.
"""

from __future__ import annotations

import random
from pathlib import Path

import yaml

from mushroom.core.catalogue import SECONDARY, UCI
from mushroom.data.raw import (
    PRIMARY_FILE,
    ROWS_PER_SPECIES,
    SECONDARY_CODE_BOOK,
    SECONDARY_FILE,
    UCI_CODE_BOOK,
    UCI_FILE,
)

POISONOUS_ODORS = {"f", "y", "s", "p", "c", "m"}
REPO = Path(__file__).resolve().parents[1]


def uci_rows(n_rows: int, seed: int = 0) -> list[list[str]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n_rows):
        codes = {}
        for trait in UCI.traits:
            options = sorted(trait.codes) + sorted(trait.missing_codes)
            codes[trait.column] = "p" if trait.column == "veil-type" else rng.choice(options)
        label = "p" if codes["odor"] in POISONOUS_ODORS else "e"
        rows.append([label] + [codes[t.column] for t in UCI.traits])
    return rows


def relabel_at_random(path: Path, seed: int = 0) -> Path:
    """A UCI data file's rows with classes that no trait predicts, 70 % of them edible: a
    model of them answers edible about poisonous mushrooms."""
    rng = random.Random(seed)
    lines = path.read_text().splitlines()
    path.write_text("".join(f"{rng.choices('ep', [7, 3])[0]}{line[1:]}\n" for line in lines))
    return recount_uci(path)


def recount_uci(path: Path) -> Path:
    """The code book beside a UCI data file a test rewrote, saying what it now holds."""
    write_uci_code_book(path.parents[1], [line[0] for line in path.read_text().splitlines()])
    return path


def write_uci(raw_dir: Path, n_rows: int = 400, seed: int = 0) -> Path:
    path = raw_dir / UCI_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = uci_rows(n_rows, seed)
    path.write_text("".join(",".join(row) + "\n" for row in rows))
    write_uci_code_book(raw_dir, [row[0] for row in rows])
    return path


def write_uci_code_book(raw_dir: Path, classes: list[str]) -> Path:
    """The counts of the real agaricus-lepiota.names, in its words, for ``classes``."""
    edible, poisonous = classes.count("e"), classes.count("p")
    path = raw_dir / UCI_CODE_BOOK
    path.write_text(
        f"5. Number of Instances: {len(classes)}\n\n"
        f"9. Class Distribution: \n    --    edible: {edible}\n    -- poisonous: {poisonous}\n"
    )
    return path


def write_secondary_code_book(raw_dir: Path, n_species: int) -> Path:
    """The counts of the real secondary_data_meta.txt, in its words."""
    path = raw_dir / SECONDARY_CODE_BOOK
    path.write_text(
        f"\tThis dataset includes {n_species * ROWS_PER_SPECIES} hypothetical mushrooms with "
        f"caps based on {n_species} species ({ROWS_PER_SPECIES} mushrooms\n\tper species).\n"
    )
    return path


def species_profiles(n_species: int, seed: int = 0) -> list[dict[str, list[str]]]:
    """Each species' primary_data.csv cells, as the real file documents them: per trait a
    few codes (or none: not documented), per measurement a [min, max] range."""
    rng = random.Random(seed)
    profiles = []
    for species in range(n_species):
        profile = {}
        for trait in SECONDARY.traits:
            if trait.is_numeric:
                low = rng.uniform(1, 5) + 3 * (species % 2 == 0)
                profile[trait.column] = [f"{low:.1f}", f"{low + rng.uniform(0.5, 3):.1f}"]
            elif trait.column == "cap-color":  # each species its own colour
                profile[trait.column] = [sorted(trait.codes)[species % 12]]
            elif rng.random() < 0.2:
                profile[trait.column] = []
            else:
                codes = sorted(trait.codes)
                profile[trait.column] = rng.sample(codes, min(rng.randint(1, 3), len(codes)))
        profiles.append(profile)
    return profiles


def secondary_rows(n_species: int, seed: int = 0) -> tuple[list[list[str]], list[str]]:
    """Rows (class first) for ``n_species`` blocks of 353, and each species' class code;
    each row drawn from its species' profile, as the real simulation draws them."""
    rng = random.Random(seed)
    rows, classes = [], []
    for species, profile in enumerate(species_profiles(n_species, seed)):
        label = "p" if species % 2 == 0 else "e"
        classes.append(label)
        for _ in range(ROWS_PER_SPECIES):
            row = [label]
            for trait in SECONDARY.traits:
                cell = profile[trait.column]
                if trait.is_numeric:
                    row.append(f"{rng.uniform(float(cell[0]), float(cell[1])):.2f}")
                else:
                    row.append(rng.choice(cell) if cell else "")
            rows.append(row)
    return rows, classes


def write_secondary(raw_dir: Path, n_species: int = 6, seed: int = 0) -> Path:
    rows, classes = secondary_rows(n_species, seed)
    header = ["class"] + [t.column for t in SECONDARY.traits]
    data = raw_dir / SECONDARY_FILE
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_bytes("".join(";".join(r) + "\r\n" for r in [header] + rows).encode("ascii"))
    primary_header = ["family", "name", "class"] + [t.column for t in SECONDARY.traits]
    cells = [
        [f"[{', '.join(profile[t.column])}]" if profile[t.column] else "" for t in SECONDARY.traits]
        for profile in species_profiles(n_species, seed)
    ]
    primary = [";".join(primary_header)] + [
        ";".join(["Test Family", f"Species {i}", c] + cells[i]) for i, c in enumerate(classes)
    ]
    (raw_dir / PRIMARY_FILE).write_bytes(("\r\n".join(primary) + "\r\n").encode("ascii"))
    write_secondary_code_book(raw_dir, n_species)
    return data


def set_params(path: Path, changes: dict, source: Path | None = None) -> Path:
    """Write ``source`` (default: ``path`` itself) to ``path`` with dotted-key changes."""
    params = yaml.safe_load((source or path).read_text())
    for dotted, value in changes.items():
        node = params
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node[key]
        node[leaf] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def write_params(path: Path, **overrides) -> Path:
    """The repository's params.yaml with overrides spelled ``prepare__split="species"``."""
    changes = {key.replace("__", "."): value for key, value in overrides.items()}
    return set_params(path, changes, source=REPO / "params.yaml")
