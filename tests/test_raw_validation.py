"""Raw-data validation: bad raw files stop prepare with a precise message and write nothing.

Bad files are made by writing the small real-format fixtures (``rawfixtures``) and editing
specific lines: UCI is ','-separated without header, LF; secondary and primary are
';'-separated with a header, CRLF. Lines are 1-based file lines: the first secondary data
row is line 2.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import rawfixtures
from mushroom.core.catalogue import (
    CLASS_CODES,
    EDIBLE,
    NOT_RECORDED,
    POISONOUS,
    SECONDARY,
    TARGET,
    UCI,
    DatasetCatalogue,
)
from mushroom.data.raw import (
    PRIMARY_FILE,
    ROWS_PER_SPECIES,
    SECONDARY_CODE_BOOK,
    SECONDARY_FILE,
    SOURCE_LINE,
    SPECIES_ID,
    SPECIES_NAME,
    UCI_CODE_BOOK,
    UCI_FILE,
    RawDataError,
    read_contract,
    read_raw,
    read_species_profiles,
)
from mushroom.stages import prepare

UCI_ROWS = 400
N_SPECIES = 6
SEC_LAST_LINE = 1 + N_SPECIES * ROWS_PER_SPECIES  # the header is line 1
CATALOGUES = {"uci": UCI, "secondary": SECONDARY}
BOM = b"\xef\xbb\xbf"  # UTF-8's byte-order mark, which spreadsheet programs write


# --- raw files as lists of records, edited line by line ---------------------------------


@dataclass(frozen=True)
class RawFormat:
    file: Path  # relative to the raw dir
    delimiter: str
    newline: str
    columns: list[str]
    first_data_line: int


_SEC_COLUMNS = [t.column for t in SECONDARY.traits]
FORMATS = {
    "uci": RawFormat(UCI_FILE, ",", "\n", [TARGET] + [t.column for t in UCI.traits], 1),
    "secondary": RawFormat(SECONDARY_FILE, ";", "\r\n", [TARGET] + _SEC_COLUMNS, 2),
    "primary": RawFormat(PRIMARY_FILE, ";", "\r\n", ["family", "name", "class"] + _SEC_COLUMNS, 2),
}

Corruption = Callable[[Path], None]  # edits the raw files under the given raw dir


def read_records(raw: Path, fmt: RawFormat) -> list[list[str]]:
    text = (raw / fmt.file).read_bytes().decode("ascii")
    assert text.endswith(fmt.newline), "fixture no longer in the real line-ending format"
    return [line.split(fmt.delimiter) for line in text[: -len(fmt.newline)].split(fmt.newline)]


def write_records(raw: Path, fmt: RawFormat, records: list[list[str]], delimiter: str) -> None:
    text = "".join(delimiter.join(record) + fmt.newline for record in records)
    (raw / fmt.file).write_bytes(text.encode("ascii"))


def edit(file: str, change: Callable[[list[list[str]]], object]) -> Corruption:
    """A corruption that lets ``change`` edit the records of ``file`` (a FORMATS key)."""
    fmt = FORMATS[file]

    def corrupt(raw: Path) -> None:
        records = read_records(raw, fmt)
        change(records)
        write_records(raw, fmt, records, fmt.delimiter)

    return corrupt


def set_field(file: str, line: int, column: str, value: str) -> Corruption:
    index = FORMATS[file].columns.index(column)

    def change(records: list[list[str]]) -> None:
        records[line - 1][index] = value

    return edit(file, change)


def drop_last_field(file: str, line: int) -> Corruption:
    return edit(file, lambda records: records[line - 1].pop())


def add_field(file: str, line: int) -> Corruption:
    return edit(file, lambda records: records[line - 1].append("x"))


def drop_line(file: str, line: int) -> Corruption:
    return edit(file, lambda records: records.pop(line - 1))


def repeat_line(file: str, line: int) -> Corruption:
    return edit(file, lambda records: records.append(list(records[line - 1])))


def drop_column(file: str, column: str) -> Corruption:
    index = FORMATS[file].columns.index(column)
    return edit(file, lambda records: [record.pop(index) for record in records])


def add_column(file: str, column: str) -> Corruption:
    def change(records: list[list[str]]) -> None:
        for n, record in enumerate(records):
            record.append(column if n == 0 else "1")

    return edit(file, change)


def swap_header(file: str, a: str, b: str) -> Corruption:
    i, j = FORMATS[file].columns.index(a), FORMATS[file].columns.index(b)

    def change(records: list[list[str]]) -> None:
        records[0][i], records[0][j] = records[0][j], records[0][i]

    return edit(file, change)


def rewrite_delimiter(file: str, delimiter: str) -> Corruption:
    fmt = FORMATS[file]
    return lambda raw: write_records(raw, fmt, read_records(raw, fmt), delimiter)


def replace_content(file: str, content: bytes) -> Corruption:
    return lambda raw: (raw / FORMATS[file].file).write_bytes(content)


def insert_non_ascii(file: str) -> Corruption:
    def corrupt(raw: Path) -> None:
        path = raw / FORMATS[file].file
        data = path.read_bytes()
        path.write_bytes(data[:40] + b"\xe4" + data[41:])  # latin-1 "a-umlaut" on line 1

    return corrupt


def prepend(file: str, data: bytes) -> Corruption:
    def corrupt(raw: Path) -> None:
        path = raw / FORMATS[file].file
        path.write_bytes(data + path.read_bytes())

    return corrupt


def delete(file: str) -> Corruption:
    return lambda raw: (raw / FORMATS[file].file).unlink()


# --- running prepare --------------------------------------------------------------------


def write_inputs(tmp_path: Path, dataset: str, **params) -> Path:
    """Write tmp_path/raw with ``dataset``'s files and tmp_path/params.yaml asking for it."""
    raw = tmp_path / "raw"
    if dataset == "uci":
        rawfixtures.write_uci(raw, n_rows=UCI_ROWS)
    else:
        rawfixtures.write_secondary(raw, n_species=N_SPECIES)
    rawfixtures.write_params(tmp_path / "params.yaml", **{"data__dataset": dataset, **params})
    return raw


def outputs(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "data" / "prepared", tmp_path / "reports" / "data_summary.json"


def run_prepare(tmp_path: Path, capsys: pytest.CaptureFixture) -> tuple[int, str]:
    """Run the prepare CLI on tmp_path's params and raw dir; return exit code and stderr."""
    out_dir, summary = outputs(tmp_path)
    code = prepare.main(
        ["--params", str(tmp_path / "params.yaml"), "--raw-dir", str(tmp_path / "raw")]
        + ["--out-dir", str(out_dir), "--summary", str(summary)]
    )
    captured = capsys.readouterr()
    if code != 0:
        assert captured.out == ""
    return code, captured.err


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with its content (None for a directory)."""
    return {
        str(p.relative_to(root)): None if p.is_dir() else p.read_bytes()
        for p in sorted(root.rglob("*"))
    }


def assert_wrote_nothing(tmp_path: Path, before: dict[str, bytes | None]) -> None:
    out_dir, summary = outputs(tmp_path)
    assert not out_dir.exists()
    assert not summary.exists()
    assert list(tmp_path.rglob(".*")) == []  # no temporary files or directories left
    assert snapshot(tmp_path) == before


def names_line(message: str, line: int) -> bool:
    return re.search(rf"\bline {line}\b", message) is not None


# --- 1. every kind of bad raw data: exit 2, a precise message, nothing written ----------


@dataclass(frozen=True)
class Bad:
    dataset: str  # which dataset prepare is asked for
    corrupt: Corruption
    phrases: tuple[str, ...]  # parts of the explanation the message must contain
    line: int | None = None
    column: str | None = None
    value: str | None = None
    file: str | None = None  # FORMATS key of the file the error names; default: dataset's


def bad_value(dataset: str, line: int, column: str, value: str, phrase: str) -> Bad:
    return Bad(dataset, set_field(dataset, line, column, value), (phrase,), line, column, value)


SPECIES_1_ROW = 2 + ROWS_PER_SPECIES + 4  # a row of species 1, which is edible
SPECIES_2_FIRST_ROW = 2 + 2 * ROWS_PER_SPECIES

BAD_CASES = {
    # unknown codes on the first, a middle and the last data line
    "uci-unknown-code-first-line": bad_value("uci", 1, "cap-shape", "q", "unknown code"),
    "uci-unknown-code": bad_value("uci", 7, "cap-shape", "q", "unknown code"),
    "uci-unknown-code-last-line": bad_value("uci", UCI_ROWS, "habitat", "q", "unknown code"),
    "uci-question-mark-outside-stalk-root": bad_value("uci", 3, "odor", "?", "unknown code"),
    "sec-unknown-code-first-line": bad_value("secondary", 2, "cap-shape", "q", "unknown code"),
    "sec-unknown-code": bad_value("secondary", 7, "cap-shape", "q", "unknown code"),
    "sec-unknown-code-last-line": bad_value(
        "secondary", SEC_LAST_LINE, "season", "q", "unknown code"
    ),
    "uci-unknown-class": bad_value("uci", 5, TARGET, "x", "unknown class"),
    "sec-unknown-class": bad_value("secondary", 5, TARGET, "x", "unknown class"),
    "sec-blank-class": bad_value("secondary", 6, TARGET, "", "unknown class"),
    # numeric secondary columns
    "sec-not-a-number": bad_value("secondary", 9, "cap-diameter", "abc", "not a number"),
    "sec-negative-measurement": bad_value("secondary", 10, "stem-height", "-1.5", "negative"),
    "sec-infinite-measurement": bad_value("secondary", 10, "stem-height", "inf", "not finite"),
    # secondary header
    "sec-missing-column": Bad(
        "secondary",
        drop_column("secondary", "stem-width"),
        ("missing column",),
        line=1,
        column="stem-width",
    ),
    "sec-extra-column": Bad(
        "secondary",
        add_column("secondary", "spore-count"),
        ("unexpected column",),
        line=1,
        column="spore-count",
    ),
    "sec-columns-out-of-order": Bad(
        "secondary", swap_header("secondary", "cap-shape", "cap-color"), ("out of order",), 1
    ),
    # a line with too few or too many fields
    "uci-missing-field": Bad("uci", drop_last_field("uci", 12), ("expected 23", "found 22"), 12),
    "uci-extra-field": Bad("uci", add_field("uci", 12), ("expected 23", "found 24"), 12),
    "sec-missing-field": Bad(
        "secondary", drop_last_field("secondary", 12), ("expected 21", "found 20"), 12
    ),
    "sec-extra-field": Bad(
        "secondary", add_field("secondary", 12), ("expected 21", "found 22"), 12
    ),
    # wrong delimiter
    "uci-semicolon-separated": Bad(
        "uci", rewrite_delimiter("uci", ";"), ("wrong delimiter",), line=1
    ),
    "sec-comma-separated": Bad(
        "secondary", rewrite_delimiter("secondary", ","), ("not ';'-separated",), line=1
    ),
    # empty files
    "uci-empty": Bad("uci", replace_content("uci", b""), ("empty",)),
    "uci-whitespace-only": Bad("uci", replace_content("uci", b"  \n\n \t\n"), ("empty",)),
    "sec-empty": Bad("secondary", replace_content("secondary", b""), ("empty",)),
    "sec-whitespace-only": Bad(
        "secondary", replace_content("secondary", b" \r\n\r\n  \r\n"), ("empty",)
    ),
    "sec-header-only": Bad(
        "secondary",
        replace_content("secondary", (";".join(FORMATS["secondary"].columns) + "\r\n").encode()),
        ("no data rows",),
    ),
    # missing or unreadable files
    "uci-missing-file": Bad("uci", delete("uci"), ("dvc pull",)),
    "sec-missing-file": Bad("secondary", delete("secondary"), ("dvc pull",)),
    "sec-missing-primary-file": Bad("secondary", delete("primary"), ("dvc pull",), file="primary"),
    "uci-non-ascii": Bad("uci", insert_non_ascii("uci"), ("ASCII", "0xe4"), 1),
    "sec-non-ascii": Bad("secondary", insert_non_ascii("secondary"), ("ASCII", "0xe4"), 1),
    "sec-primary-non-ascii": Bad(
        "secondary", insert_non_ascii("primary"), ("ASCII", "0xe4"), 1, file="primary"
    ),
    "uci-byte-order-mark": Bad("uci", prepend("uci", BOM), ("byte-order mark",), 1),
    "sec-byte-order-mark": Bad("secondary", prepend("secondary", BOM), ("byte-order mark",), 1),
    # Nothing is quoted in either file: a stray quote is a bad value on its own line, not
    # a quoted field running on into the next lines.
    "uci-stray-quote": bad_value("uci", 5, "odor", '"n', "unknown code"),
    "sec-stray-quote": bad_value("secondary", 9, "cap-shape", 'x"', "unknown code"),
    # what the code book says the file holds
    "uci-cut-short": Bad(
        "uci",
        edit("uci", lambda records: records.__delitem__(slice(UCI_ROWS // 2, None))),
        (f"holds {UCI_ROWS // 2} rows", "code book", f"says {UCI_ROWS} rows", "cut short"),
    ),
    "uci-relabelled": Bad(
        "uci",
        set_field("uci", 4, TARGET, "e" if rawfixtures.uci_rows(4)[3][0] == "p" else "p"),
        ("code book", "edible", "poisonous", "another dataset's"),
    ),
    "sec-whole-species-cut": Bad(
        "secondary",
        edit("secondary", lambda records: records.__delitem__(slice(1 + ROWS_PER_SPECIES, None))),
        ("(1 species)", f"({N_SPECIES} species)", "cut short"),
    ),
    # species blocks of 353 rows
    "sec-row-missing": Bad(
        "secondary",
        drop_line("secondary", SEC_LAST_LINE),
        (f"{SEC_LAST_LINE - 2} data rows", str(ROWS_PER_SPECIES)),
    ),
    "sec-row-extra": Bad(
        "secondary",
        repeat_line("secondary", 2),
        (f"{SEC_LAST_LINE} data rows", str(ROWS_PER_SPECIES)),
    ),
    # The class check reports the decoded class ('poisonous'), not the raw code ('p').
    "sec-class-disagrees-with-species": Bad(
        "secondary",
        set_field("secondary", SPECIES_1_ROW, TARGET, "p"),
        ("Species 1", PRIMARY_FILE.name),
        SPECIES_1_ROW,
        TARGET,
        POISONOUS,
    ),
    "sec-primary-relabels-species": Bad(
        "secondary",
        set_field("primary", 2 + 2, "class", "e"),  # species 2 (poisonous) becomes edible
        ("Species 2", PRIMARY_FILE.name),
        SPECIES_2_FIRST_ROW,
        TARGET,
        POISONOUS,
    ),
    "sec-primary-unknown-class": Bad(
        "secondary",
        set_field("primary", 3, "class", "x"),
        ("unknown class",),
        3,
        "class",
        "x",
        file="primary",
    ),
}


@pytest.mark.parametrize("case", BAD_CASES.values(), ids=BAD_CASES.keys())
def test_bad_raw_data_exits_2_naming_the_problem_and_writes_nothing(tmp_path, capsys, case):
    raw = write_inputs(tmp_path, case.dataset)
    case.corrupt(raw)
    path = raw / FORMATS[case.file or case.dataset].file

    with pytest.raises(RawDataError) as caught:
        read_raw(case.dataset, raw)
    error = caught.value
    assert (error.file, error.line, error.column, error.value) == (
        path,
        case.line,
        case.column,
        case.value,
    )

    before = snapshot(tmp_path)
    code, err = run_prepare(tmp_path, capsys)

    assert code == 2
    assert err.startswith("prepare: ") and err.count("\n") == 1
    assert str(path) in err
    if case.line is not None:
        assert names_line(err, case.line), err
    if case.column is not None:
        assert repr(case.column) in err
    if case.value is not None:
        assert repr(case.value) in err
    for phrase in case.phrases:
        assert phrase in err
    assert_wrote_nothing(tmp_path, before)


@pytest.mark.parametrize("dataset", ["uci", "secondary"])
def test_a_trailing_blank_line_is_not_a_row(tmp_path, capsys, dataset):
    raw = write_inputs(tmp_path, dataset)
    fmt = FORMATS[dataset]
    with (raw / fmt.file).open("ab") as file:
        file.write(fmt.newline.encode())
    assert run_prepare(tmp_path, capsys)[0] == 0
    rows = len(read_records(raw, fmt)) - (fmt.first_data_line - 1) - 1  # less header, blank
    assert len(read_raw(dataset, raw)) == rows


# --- 2. failing over previous good outputs leaves them as they were ---------------------


@pytest.mark.parametrize("dataset", ["uci", "secondary"])
def test_failed_run_leaves_previous_outputs_unchanged(tmp_path, capsys, dataset):
    raw = write_inputs(tmp_path, dataset)
    assert run_prepare(tmp_path, capsys)[0] == 0
    good = snapshot(tmp_path)
    out_dir, summary = outputs(tmp_path)
    assert {"train.parquet", "test.parquet", "schema.json"} <= {p.name for p in out_dir.iterdir()}
    assert summary.is_file()

    line = FORMATS[dataset].first_data_line + 10
    set_field(dataset, line, "cap-shape", "q")(raw)
    corrupted = snapshot(tmp_path)
    code, err = run_prepare(tmp_path, capsys)

    assert code == 2 and names_line(err, line)
    after = snapshot(tmp_path)
    assert after == corrupted  # nothing added, removed or rewritten
    assert {k: v for k, v in after.items() if k.startswith(("data", "reports"))} == {
        k: v for k, v in good.items() if k.startswith(("data", "reports"))
    }
    assert list(tmp_path.rglob(".*")) == []


# --- 3. params that cannot work together --------------------------------------------------


@pytest.mark.parametrize(
    ("params", "phrases"),
    [
        ({"prepare__split": "species"}, ("prepare.split", "secondary")),
        ({"data__dataset": "mnist"}, ("data.dataset", "'mnist'")),
    ],
    ids=["species-split-needs-secondary", "unknown-dataset"],
)
def test_bad_params_exit_2_naming_the_key(tmp_path, capsys, params, phrases):
    write_inputs(tmp_path, "uci", **params)  # the UCI raw data itself is fine
    before = snapshot(tmp_path)
    code, err = run_prepare(tmp_path, capsys)
    assert code == 2
    assert err.startswith("prepare: ")
    for phrase in phrases:
        assert phrase in err
    assert_wrote_nothing(tmp_path, before)


# --- 4. the catalogue ---------------------------------------------------------------------

ALL_TRAITS = [
    pytest.param(catalogue, trait, id=f"{catalogue.name}-{trait.column}")
    for catalogue in (UCI, SECONDARY)
    for trait in catalogue.traits
]
CATEGORICAL_TRAITS = [p for p in ALL_TRAITS if not p.values[1].is_numeric]


@pytest.mark.parametrize(("catalogue", "trait"), CATEGORICAL_TRAITS)
def test_codes_decode_to_unique_readable_names(catalogue, trait):
    names = [trait.decode(code) for code in trait.codes]
    assert len(set(names)) == len(names), f"two codes share a name: {names}"
    for name in names:
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", name) and len(name) > 1, name
        assert name != NOT_RECORDED
    assert set(trait.allowed_values) == set(names) | {NOT_RECORDED}


def test_uci_question_mark_is_missing_only_in_stalk_root():
    assert UCI.trait("stalk-root").decode("?") == NOT_RECORDED
    assert [t.column for t in UCI.categorical if t.missing_codes] == ["stalk-root"]
    with pytest.raises(KeyError):
        UCI.trait("odor").decode("?")


@pytest.mark.parametrize("trait", SECONDARY.categorical, ids=lambda t: t.column)
def test_secondary_blank_is_not_recorded(trait):
    assert trait.decode("") == NOT_RECORDED


@pytest.mark.parametrize(("catalogue", "trait"), ALL_TRAITS)
def test_trait_lookup_by_column_or_snake_case_name(catalogue, trait):
    assert catalogue.trait(trait.column) is trait
    assert catalogue.trait(trait.name) is trait


def test_secondary_cap_shape_lookup():
    assert SECONDARY.trait("cap-shape") is SECONDARY.trait("cap_shape")
    assert SECONDARY.trait("cap_shape").column == "cap-shape"


def test_unknown_trait_is_a_key_error_listing_the_traits():
    with pytest.raises(KeyError) as caught:
        SECONDARY.trait("cap-size")
    message = str(caught.value)
    assert "cap-size" in message
    for name in SECONDARY.trait_names:
        assert name in message


# --- 4, continued: read_raw decoding rows in the real formats --------------------------


@pytest.fixture(params=["uci", "secondary"])
def dataset_raw(request) -> tuple[str, Path]:
    return request.param, request.getfixturevalue(f"{request.param}_raw")


def decode_record(catalogue: DatasetCatalogue, record: list[str]) -> dict:
    row = {TARGET: CLASS_CODES[record[0]]}
    for trait, code in zip(catalogue.traits, record[1:], strict=True):
        row[trait.name] = float(code) if trait.is_numeric else trait.decode(code)
    return row


def test_read_raw_decodes_each_row_from_its_source_line(dataset_raw):
    dataset, raw = dataset_raw
    fmt, catalogue = FORMATS[dataset], CATALOGUES[dataset]
    records = read_records(raw, fmt)
    frame = read_raw(dataset, raw)

    first = fmt.first_data_line
    assert frame[SOURCE_LINE].tolist() == list(range(first, len(records) + 1))
    expected = pd.DataFrame(
        [decode_record(catalogue, records[line - 1]) for line in frame[SOURCE_LINE]]
    )
    pd.testing.assert_frame_equal(
        frame[[TARGET] + catalogue.trait_names].reset_index(drop=True), expected
    )


def test_read_raw_returns_readable_names_only(dataset_raw):
    dataset, raw = dataset_raw
    catalogue = CATALOGUES[dataset]
    frame = read_raw(dataset, raw)
    assert set(frame[TARGET]) == {EDIBLE, POISONOUS}
    for trait in catalogue.categorical:
        assert set(frame[trait.name]) <= set(trait.allowed_values), trait.column
    for trait in catalogue.numeric:
        assert frame[trait.name].dtype == float


def test_read_raw_spells_missing_values(uci_raw, secondary_raw):
    stalk_root = [
        r[FORMATS["uci"].columns.index("stalk-root")] for r in read_records(uci_raw, FORMATS["uci"])
    ]
    uci = read_raw("uci", uci_raw)
    assert (uci["stalk_root"] == NOT_RECORDED).sum() == stalk_root.count("?") > 0

    set_field("secondary", 3, "cap-diameter", "")(secondary_raw)
    set_field("secondary", 3, "cap-shape", "")(secondary_raw)
    row = read_raw("secondary", secondary_raw).set_index(SOURCE_LINE).loc[3]
    assert np.isnan(row["cap_diameter"])
    assert row["cap_shape"] == NOT_RECORDED


def test_secondary_species_come_from_blocks_and_primary_file(secondary_raw):
    # Distinctive names, and the real file's capitalised headers, in primary_data.csv.
    def change(records: list[list[str]]) -> None:
        for n, record in enumerate(records[1:]):
            record[1] = f"Amanita test-{n * 7}"
        records[0] = [
            c.capitalize() if c in ("cap-surface", "spore-print-color") else c for c in records[0]
        ]

    edit("primary", change)(secondary_raw)
    primary = read_records(secondary_raw, FORMATS["primary"])[1:]
    frame = read_raw("secondary", secondary_raw)

    n = len(frame)
    assert n == len(primary) * ROWS_PER_SPECIES
    assert frame[SPECIES_ID].tolist() == (np.arange(n) // ROWS_PER_SPECIES).tolist()
    assert frame[SPECIES_NAME].tolist() == [primary[s][1] for s in frame[SPECIES_ID]]
    assert frame[TARGET].tolist() == [CLASS_CODES[primary[s][2]] for s in frame[SPECIES_ID]]


def test_species_profiles_decode_each_documented_value(secondary_raw):
    primary = read_records(secondary_raw, FORMATS["primary"])
    profiles = read_species_profiles(secondary_raw)
    assert [p["name"] for p in profiles] == [record[1] for record in primary[1:]]
    for record, profile in zip(primary[1:], profiles, strict=True):
        assert profile["class"] == CLASS_CODES[record[2]]
        for trait in SECONDARY.traits:
            cell = record[FORMATS["primary"].columns.index(trait.column)]
            codes = [c.strip() for c in cell.strip("[]").split(",")] if cell else []
            expected = (
                None
                if not codes
                else [min(map(float, codes)), max(map(float, codes))]
                if trait.is_numeric
                else sorted({trait.codes[c] for c in codes})
            )
            assert profile["traits"][trait.name] == expected


@pytest.mark.parametrize(
    ("cell", "column", "value", "phrase"),
    [
        ("[x, q]", "cap-shape", "q", "unknown code"),
        ("x, f", "cap-shape", "x, f", "bracketed list"),
        ("[x, ]", "cap-shape", "[x, ]", "bracketed list"),
        ("[ten, 20]", "cap-diameter", "[ten, 20]", "not a number"),
        ("[-1, 20]", "cap-diameter", "[-1, 20]", "negative"),
        ("[nan, 20]", "cap-diameter", "[nan, 20]", "not finite"),
    ],
    ids=["unknown-code", "no-brackets", "empty-item", "not-a-number", "negative", "nan"],
)
def test_bad_species_profile_exits_2_naming_line_column_and_value(
    tmp_path, capsys, cell, column, value, phrase
):
    raw = write_inputs(tmp_path, "secondary")
    set_field("primary", 4, column, cell)(raw)
    with pytest.raises(RawDataError) as caught:
        read_species_profiles(raw)
    error = caught.value
    assert (error.file, error.line, error.column, error.value) == (
        raw / PRIMARY_FILE,
        4,
        column,
        value,
    )
    before = snapshot(tmp_path)
    code, err = run_prepare(tmp_path, capsys)
    assert code == 2 and phrase in err and names_line(err, 4) and repr(column) in err
    assert_wrote_nothing(tmp_path, before)


@pytest.mark.parametrize("dataset", ["uci", "secondary"])
def test_a_code_book_that_does_not_say_the_counts_is_named(tmp_path, dataset):
    raw = write_inputs(tmp_path, dataset)
    code_book = raw / (UCI_CODE_BOOK if dataset == "uci" else SECONDARY_CODE_BOOK)
    code_book.write_text("7. Attribute Information: (classes: edible=e, poisonous=p)\n")
    with pytest.raises(RawDataError, match="does not say the data's rows") as caught:
        read_raw(dataset, raw)
    assert caught.value.file == code_book


def test_the_real_code_books_are_the_contract_the_real_data_keeps(pulled_repo):
    raw = pulled_repo / "data" / "raw"
    uci, secondary = read_contract("uci", raw), read_contract("secondary", raw)
    assert (uci.rows, uci.classes) == (8124, {"edible": 4208, "poisonous": 3916})
    assert (secondary.rows, secondary.species) == (61069, 173)
    assert len(read_raw("uci", raw)) == 8124 and len(read_raw("secondary", raw)) == 61069
