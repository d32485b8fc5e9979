"""Reading the raw dataset files and validating every value against the catalogue.

Rows come back decoded to readable names, with missing values spelled ``MISSING``
(categorical) or NaN (numeric), the class as ``edible``/``poisonous`` and the file line
each row came from. Any value the code book does not allow stops the read with a
``RawDataError`` that names file, line, column and value; so does a file that does not
hold what its code book says (rows, classes, species): a file cut short is refused, not
trained on.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mushroom.core.catalogue import (
    CLASS_CODES,
    SOURCE_LINE,
    SPECIES_ID,
    SPECIES_NAME,
    TARGET,
    DatasetCatalogue,
    get_catalogue,
    measurable,
)

UCI_FILE = Path("uci/agaricus-lepiota.data")
SECONDARY_FILE = Path("secondary/secondary_data.csv")
PRIMARY_FILE = Path("secondary/primary_data.csv")
ROWS_PER_SPECIES = 353
"""The secondary data simulates 353 mushrooms per species, in species order."""
UCI_CODE_BOOK = Path("uci/agaricus-lepiota.names")
SECONDARY_CODE_BOOK = Path("secondary/secondary_data_meta.txt")
BYTE_ORDER_MARK = b"\xef\xbb\xbf"


class RawDataError(ValueError):
    def __init__(
        self,
        file: Path,
        problem: str,
        line: int | None = None,
        column: str | None = None,
        value: str | None = None,
    ):
        self.file, self.line, self.column, self.value = file, line, column, value
        where = str(file)
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column {column!r}"
        if value is not None:
            where += f", value {value!r}"
        super().__init__(f"{where}: {problem}")


def data_file(dataset: str, raw_dir: str | Path) -> Path:
    """The file holding ``dataset``'s mushrooms under ``raw_dir``."""
    return Path(raw_dir) / (UCI_FILE if dataset == "uci" else SECONDARY_FILE)


@dataclass(frozen=True)
class Contract:
    """What a dataset's code book says its data file holds."""

    code_book: Path
    rows: int
    classes: dict[str, int]
    """Rows per class (UCI); the secondary data's come from its species file."""
    species: int | None

    def describe(self) -> str:
        counts = [f"{label} {n}" for label, n in self.classes.items()]
        counts += [f"{self.species} species"] if self.species is not None else []
        return f"{self.rows} rows ({', '.join(counts)})"


def read_contract(dataset: str, raw_dir: str | Path) -> Contract:
    code_book = Path(raw_dir) / (UCI_CODE_BOOK if dataset == "uci" else SECONDARY_CODE_BOOK)
    text = _read_text(code_book)
    if dataset == "uci":
        patterns = {
            "rows": r"Number of Instances:\s*(\d+)",
            "edible": r"Class Distribution:.*?edible:\s*(\d+)",
            "poisonous": r"Class Distribution:.*?poisonous:\s*(\d+)",
        }
    else:
        patterns = {
            "rows": r"includes\s+(\d+)\s+hypothetical mushrooms",
            "species": r"hypothetical mushrooms.*?based on\s+(\d+)\s+species",
        }
    found = {key: re.search(pattern, text, re.S) for key, pattern in patterns.items()}
    absent = [key for key, match in found.items() if match is None]
    if absent:
        raise RawDataError(code_book, f"code book does not say the data's {', '.join(absent)}")
    counts = {key: int(match.group(1)) for key, match in found.items()}
    return Contract(
        code_book,
        counts.pop("rows"),
        {label: counts.pop(label) for label in ("edible", "poisonous") if label in counts},
        counts.get("species"),
    )


def _check_contract(frame: pd.DataFrame, contract: Contract, path: Path) -> None:
    found = Contract(
        contract.code_book,
        len(frame),
        {label: int((frame[TARGET] == label).sum()) for label in contract.classes},
        frame[SPECIES_ID].nunique() if contract.species is not None else None,
    )
    if found != contract:
        raise RawDataError(
            path,
            f"holds {found.describe()}, its code book {contract.code_book} says "
            f"{contract.describe()}: a file cut short, or another dataset's; nothing was read",
        )


def read_raw(dataset: str, raw_dir: str | Path) -> pd.DataFrame:
    catalogue = get_catalogue(dataset)
    path = data_file(dataset, raw_dir)
    header = [TARGET] + [t.column for t in catalogue.traits]
    if dataset == "uci":
        rows, first_line = _read_rows(path, ",", header, has_header=False), 1
    else:
        rows, first_line = _read_rows(path, ";", header, has_header=True), 2
    frame = _decode(pd.DataFrame(rows, columns=header, dtype=str), catalogue, path, first_line)
    if dataset == "secondary":
        frame = _attach_species(frame, path, Path(raw_dir) / PRIMARY_FILE)
    _check_contract(frame, read_contract(dataset, raw_dir), path)
    return frame


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RawDataError(path, "file not found (did you run `dvc pull`?)") from None
    try:
        return data.decode("ascii")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        what = (
            "a byte-order mark"
            if data.startswith(BYTE_ORDER_MARK) and line == 1
            else (f"byte 0x{data[exc.start]:02x}")
        )
        raise RawDataError(
            path, f"not ASCII text: {what} at character {column}", line=line
        ) from None


def _read_rows(path: Path, delimiter: str, header: list[str], has_header: bool) -> list[list[str]]:
    lines = _read_text(path).rstrip("\r\n").splitlines()  # a trailing blank line is no row
    if not any(line.strip() for line in lines):
        raise RawDataError(path, "file is empty")
    # Neither dataset quotes fields: a stray '"' is a bad value on its line, not the start
    # of a quoted field swallowing the lines after it.
    records = list(csv.reader(lines, delimiter=delimiter, quoting=csv.QUOTE_NONE))
    if has_header:
        _check_header(path, records[0], header, delimiter)
        records = records[1:]
        if not records:
            raise RawDataError(path, "file has a header but no data rows")
    first_line = 2 if has_header else 1
    for offset, record in enumerate(records):
        if len(record) != len(header):
            raise RawDataError(
                path, _field_count_problem(record, len(header), delimiter), line=first_line + offset
            )
    return records


def _check_header(path: Path, found: list[str], expected: list[str], delimiter: str) -> None:
    if len(found) == 1 and len(expected) > 1:
        raise RawDataError(
            path, f"header is not {delimiter!r}-separated: {found[0][:80]!r}", line=1
        )
    missing = [c for c in expected if c not in found]
    extra = [c for c in found if c not in expected]
    if missing:
        raise RawDataError(
            path, f"missing column(s): {', '.join(missing)}", line=1, column=missing[0]
        )
    if extra:
        raise RawDataError(
            path, f"unexpected column(s): {', '.join(extra)}", line=1, column=extra[0]
        )
    if found != expected:
        raise RawDataError(
            path, f"columns out of order; expected: {delimiter.join(expected)}", line=1
        )


def _field_count_problem(record: list[str], expected: int, delimiter: str) -> str:
    problem = f"expected {expected} {delimiter!r}-separated fields, found {len(record)}"
    other = {",", ";", "\t"} - {delimiter}
    if len(record) == 1 and any(sep in record[0] for sep in other):
        problem += " (wrong delimiter?)"
    return problem


def _decode(
    raw: pd.DataFrame, catalogue: DatasetCatalogue, path: Path, first_line: int
) -> pd.DataFrame:
    def fail(column: str, bad: pd.Series, problem: str) -> RawDataError:
        index = bad.idxmax()
        return RawDataError(
            path, problem, line=first_line + int(index), column=column, value=raw.at[index, column]
        )

    decoded = {TARGET: raw[TARGET].map(CLASS_CODES)}
    if decoded[TARGET].isna().any():
        raise fail(
            TARGET,
            decoded[TARGET].isna(),
            f"unknown class; allowed codes: {', '.join(CLASS_CODES)}",
        )
    for trait in catalogue.traits:
        values = raw[trait.column]
        if trait.is_numeric:
            blank = values.str.strip() == ""
            numbers = pd.to_numeric(values.where(~blank), errors="coerce")
            if (numbers.isna() & ~blank).any():
                raise fail(trait.column, numbers.isna() & ~blank, "not a number")
            bad = numbers.notna() & ~measurable(numbers)
            if bad.any():
                raise fail(trait.column, bad, f"negative or not finite measurement ({trait.unit})")
            decoded[trait.name] = numbers.astype(float)
        else:
            lookup = dict(trait.codes) | {code: trait.decode(code) for code in trait.missing_codes}
            names = values.map(lookup)
            if names.isna().any():
                allowed = ", ".join(
                    sorted(trait.codes) + sorted(repr(c) for c in trait.missing_codes)
                )
                raise fail(trait.column, names.isna(), f"unknown code; allowed: {allowed}")
            decoded[trait.name] = names
    frame = pd.DataFrame(decoded)
    frame[SOURCE_LINE] = np.arange(first_line, first_line + len(frame))
    return frame


def _attach_species(frame: pd.DataFrame, data_path: Path, primary_path: Path) -> pd.DataFrame:
    """Species id = block of 353 rows in file order; name and class from primary_data.csv."""
    if len(frame) % ROWS_PER_SPECIES:
        raise RawDataError(
            data_path,
            f"{len(frame)} data rows is not a whole number of "
            f"species blocks of {ROWS_PER_SPECIES} rows",
        )
    records = _read_rows(primary_path, ";", _primary_header(primary_path), has_header=True)
    n_species = len(frame) // ROWS_PER_SPECIES
    if n_species > len(records):
        raise RawDataError(
            primary_path,
            f"lists {len(records)} species but {data_path} "
            f"holds {n_species} blocks of {ROWS_PER_SPECIES}",
        )
    species = np.arange(len(frame)) // ROWS_PER_SPECIES
    frame[SPECIES_ID] = species
    frame[SPECIES_NAME] = [records[s][1].strip() for s in species]
    for s in range(n_species):
        expected = CLASS_CODES.get(records[s][2].strip())
        if expected is None:
            raise RawDataError(
                primary_path,
                f"unknown class; allowed codes: {', '.join(CLASS_CODES)}",
                line=s + 2,
                column="class",
                value=records[s][2],
            )
        block = frame[TARGET].iloc[s * ROWS_PER_SPECIES : (s + 1) * ROWS_PER_SPECIES]
        if (block != expected).any():
            bad = int(np.argmax((block != expected).to_numpy()))
            raise RawDataError(
                data_path,
                f"class differs from species {records[s][1]!r} "
                f"({expected}) in {primary_path.name} line {s + 2}",
                line=int(frame[SOURCE_LINE].iloc[s * ROWS_PER_SPECIES + bad]),
                column=TARGET,
                value=block.iloc[bad],
            )
    return frame


def _primary_header(path: Path) -> list[str]:
    """primary_data.csv capitalises two headers; accept the file's own spelling."""
    lines = _read_text(path).splitlines()
    if not lines:
        raise RawDataError(path, "species file is empty")
    header = lines[0].split(";")
    if [h.lower() for h in header[:3]] != ["family", "name", "class"]:
        raise RawDataError(path, "expected ';'-separated header starting family;name;class", line=1)
    return header


def read_species_profiles(raw_dir: str | Path) -> list[dict]:
    """Each species of primary_data.csv as the source describes it: per categorical trait
    the readable values it may take (None: not documented), per measurement its [min, max]
    (a single documented value is both). In file order, so index = ``SPECIES_ID``."""
    path = Path(raw_dir) / PRIMARY_FILE
    header = _primary_header(path)
    columns = [h.lower() for h in header]
    profiles = []
    for line, record in enumerate(_read_rows(path, ";", header, has_header=True), start=2):
        code = record[2].strip()
        if code not in CLASS_CODES:
            problem = f"unknown class; allowed codes: {', '.join(CLASS_CODES)}"
            raise RawDataError(path, problem, line, "class", record[2])
        traits = {
            trait.name: _profile_cell(path, line, trait, record[columns.index(trait.column)])
            for trait in get_catalogue("secondary").traits
        }
        profiles.append({"name": record[1].strip(), "class": CLASS_CODES[code], "traits": traits})
    return profiles


def _profile_cell(path: Path, line: int, trait, cell: str) -> list | None:
    """``[x, f]`` -> readable names; ``[10, 20]`` or ``[15]`` -> [min, max]; blank -> None."""
    cell = cell.strip()
    if not cell:
        return None
    items = [item.strip() for item in cell.strip("[]").split(",")]
    if not (cell.startswith("[") and cell.endswith("]")) or "" in items:
        raise RawDataError(
            path, "expected a bracketed list such as [x, f]", line, trait.column, cell
        )
    if trait.is_numeric:
        try:
            numbers = [float(item) for item in items]
        except ValueError:
            raise RawDataError(path, "not a number", line, trait.column, cell) from None
        if not measurable(np.array(numbers)).all():
            problem = f"negative or not finite measurement ({trait.unit})"
            raise RawDataError(path, problem, line, trait.column, cell)
        return [min(numbers), max(numbers)]
    unknown = [item for item in items if item not in trait.codes]
    if unknown:
        problem = f"unknown code; allowed: {', '.join(sorted(trait.codes))}"
        raise RawDataError(path, problem, line, trait.column, unknown[0])
    return sorted({trait.codes[item] for item in items})
