"""Small raw datasets written by the tests, in the real files' exact formats.

Values are drawn from the catalogue's code books, so they stay valid whatever codes the
catalogue gains; the class follows a learnable rule so models have something to find.
"""

from __future__ import annotations

import random
from pathlib import Path

import yaml

from mushroom.catalogue import SECONDARY, UCI
from mushroom.rawdata import PRIMARY_FILE, ROWS_PER_SPECIES, SECONDARY_FILE, UCI_FILE

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


def write_uci(raw_dir: Path, n_rows: int = 400, seed: int = 0) -> Path:
    path = raw_dir / UCI_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(",".join(row) + "\n" for row in uci_rows(n_rows, seed)))
    return path


def secondary_rows(n_species: int, seed: int = 0) -> tuple[list[list[str]], list[str]]:
    """Rows (class first) for ``n_species`` blocks of 353, and each species' class code."""
    rng = random.Random(seed)
    rows, classes = [], []
    for species in range(n_species):
        label = "p" if species % 2 == 0 else "e"
        classes.append(label)
        # Each species has its own typical colour and size, as the real simulation does.
        colour = sorted(SECONDARY.trait("cap-color").codes)[species % 12]
        for _ in range(ROWS_PER_SPECIES):
            row = [label]
            for trait in SECONDARY.traits:
                if trait.is_numeric:
                    row.append(f"{rng.uniform(1, 5) + 3 * (label == 'p'):.2f}")
                elif trait.column == "cap-color":
                    row.append(colour)
                else:
                    row.append(rng.choice(sorted(trait.codes) + [""]))
            rows.append(row)
    return rows, classes


def write_secondary(raw_dir: Path, n_species: int = 6, seed: int = 0) -> Path:
    rows, classes = secondary_rows(n_species, seed)
    header = ["class"] + [t.column for t in SECONDARY.traits]
    data = raw_dir / SECONDARY_FILE
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_bytes("".join(";".join(r) + "\r\n" for r in [header] + rows).encode("ascii"))
    primary_header = ["family", "name", "class"] + [t.column for t in SECONDARY.traits]
    primary = [";".join(primary_header)] + [
        ";".join(["Test Family", f"Species {i}", c] + [""] * len(SECONDARY.traits))
        for i, c in enumerate(classes)
    ]
    (raw_dir / PRIMARY_FILE).write_bytes(("\r\n".join(primary) + "\r\n").encode("ascii"))
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
