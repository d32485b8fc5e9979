"""``mushroom predict``: a CSV file of mushrooms scored with the promoted model, through the
same validation, model and verdict policy as the service. Nothing about the input is
guessed: a row must have the header's number of fields, every column must be a trait or be
passed through, and a problem stops it with exit 2 and one line per problem naming file
line and column; the output is written atomically and never replaces the input, a link, a
FIFO, a device, a directory, an SQLite log or a read-only file."""

from __future__ import annotations

import argparse
import csv
import io
import re
import shlex
import sys
from collections import Counter
from pathlib import Path

from pydantic import ValidationError

from mushroom.core.atomic import OutputRefused, check_replaceable, write_with
from mushroom.core.catalogue import NOT_KNOWN, DatasetCatalogue, Trait
from mushroom.core.text import MAX_SHOWN_ERRORS, quoted

CHUNK = 1000
"""Longer input values and column names are cut in messages."""
ANSWER_COLUMNS = (
    "verdict",
    "probability_poisonous",
    "unknown_traits",
    "edible_possible",
    "check_next",
    "reasons",
    "model_version",
)
# What a CSV measurement may look like; Python's float() would also take "1_000", "inf", "nan".
DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


class InputError(ValueError):
    """A problem with the user's files or arguments: reported without a traceback, exit 2."""


class Problems:
    """One line per problem found; the first ``MAX_SHOWN_ERRORS`` are reported."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.count = 0

    def add(self, line: str) -> None:
        self.count += 1
        if len(self.lines) < MAX_SHOWN_ERRORS:
            self.lines.append(line)

    def raise_any(self) -> None:
        if self.count:
            more = self.count - len(self.lines)
            raise InputError("\n".join(self.lines) + (f"\n... and {more} more" if more else ""))


def read_table(source: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and each row with the file line it starts on. Every row must have as many
    fields as the header: a shifted row would score its values under other traits."""
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise InputError(f"{source}: cannot read: {exc.strerror}") from None
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark (Excel's "CSV UTF-8") is not text
    except UnicodeDecodeError as exc:
        line = exc.object.count(b"\n", 0, exc.start) + 1
        raise InputError(
            f"{source}: line {line}: not UTF-8 text (byte {exc.object[exc.start]:#04x}); "
            "save the file as UTF-8"
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header, rows, problems, ended = None, [], Problems(), 0
    try:
        for cells in reader:
            line, ended = ended + 1, reader.line_num
            if not cells:
                continue  # a blank line
            if header is None:
                header = cells
            elif len(cells) != len(header):
                problems.add(
                    f"{source}: line {line}: expected {len(header)} fields, as in the header, "
                    f"found {len(cells)}"
                )
            else:
                rows.append((line, cells))
    except csv.Error as exc:
        raise InputError(f"{source}: line {ended + 1}: {exc}") from None
    if header is None:
        raise InputError(f"{source}: empty file; expected a header line of trait names")
    problems.raise_any()
    if not rows:
        raise InputError(f"{source}: no mushrooms: nothing after the header line")
    return header, rows


def trait_columns(
    header: list[str], passthrough: list[str], catalogue: DatasetCatalogue, source: Path
) -> list[tuple[int, str, Trait]]:
    """Position, name and trait of each column to score. Every other column must be passed
    through, no two columns may give one trait or share a name, and none may be overwritten
    by an answer column."""
    by_spelling = {spelling: t for t in catalogue.traits for spelling in (t.name, t.column)}
    by_lower = {spelling.lower(): t.name for spelling, t in by_spelling.items()}
    problems, not_traits, columns, first = Problems(), [], [], {}
    missing = [name for name in passthrough if name not in header]
    if missing:
        problems.add(f"{source}: no column(s) {', '.join(map(quoted, missing))} to pass through")
    for position, name in enumerate(header, start=1):
        trait = by_spelling.get(name) if name not in passthrough else None
        key = trait.name if trait else name
        if key in first:
            earlier = header[first[key] - 1]
            what = f"give trait {key}" if trait else "have that name"
            problems.add(
                f"{source}: header columns {first[key]} ({quoted(earlier)}) and {position} "
                f"({quoted(name)}) both {what}"
            )
        first.setdefault(key, position)
        if name in ANSWER_COLUMNS:
            problems.add(
                f"{source}: header column {position} ({quoted(name)}) would be overwritten by "
                "the answer column of that name; rename it (or score the unscored file)"
            )
        elif trait:
            columns.append((position - 1, name, trait))
        elif name not in passthrough:
            alike = by_lower.get(name.strip().lower())
            hint = f"; did you mean {alike!r}?" if alike else ""
            problems.add(
                f"{source}: header column {position} ({quoted(name)}) is not a trait of the "
                f"{catalogue.name} model{hint}"
            )
            if not alike:
                not_traits.append(name)
    if not_traits:
        problems.add(
            f"{source}: to copy other columns to the output, add --passthrough "
            f"{shlex.join(not_traits)}; traits are {', '.join(catalogue.trait_names)}"
        )
    problems.raise_any()
    return columns


def measurement(cell: str) -> float | str:
    """A CSV cell of a numeric trait as the API would get it in JSON: a number, or a
    spelling of "I don't know" (``missing``), which the schema reads as unknown."""
    if DECIMAL.fullmatch(cell.strip()):
        return float(cell)
    if cell.strip().lower() in NOT_KNOWN:
        return cell
    raise ValueError(cell)


def validate_rows(
    rows: list[tuple[int, list[str]]], columns: list[tuple[int, str, Trait]], validate, source: Path
) -> list:
    """Validate every row like the API does; errors name the file line and the column."""
    mushrooms, problems = [], Problems()
    for line, cells in rows:
        given = {}
        for position, name, trait in columns:
            cell = cells[position]
            if cell == "":
                continue  # blank = unknown
            if not trait.is_numeric:
                given[name] = cell
                continue
            try:
                given[name] = measurement(cell)
            except ValueError:
                problems.add(
                    f"{source}: line {line}: {name}: {quoted(cell)}: expected a number (in "
                    f"{trait.unit}), e.g. 5.2, or a blank cell if not measured"
                )
        try:
            mushrooms.append(validate(given))
        except ValidationError as exc:
            for error in exc.errors():
                field = "".join(f"{part}: " for part in error["loc"])
                problems.add(
                    f"{source}: line {line}: {field}{quoted(error['input'])}: {error['msg']}"
                )
    problems.raise_any()
    return mushrooms


def write_answers(output: Path, header: list[str], rows: list, answers: list) -> None:
    """The input rows as given, then the answer columns, written atomically."""

    def write(path: Path) -> None:
        with path.open("w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file, lineterminator="\n")
            writer.writerow([*header, *ANSWER_COLUMNS])
            for (_, cells), answer in zip(rows, answers, strict=True):
                writer.writerow(
                    [
                        *cells,
                        answer["verdict"],
                        answer["probability_poisonous"],
                        ";".join(answer["unknown_traits"]),
                        str(answer["edible_possible"]).lower(),
                        ";".join(entry["trait"] for entry in answer["check_next"]),
                        "; ".join(answer["reasons"]),
                        answer["model_version"],
                    ]
                )

    try:
        write_with(output, write)
    except OSError as exc:
        raise InputError(f"{output}: cannot write: {exc.strerror}") from None


def score(classifier, mushrooms: list) -> list:
    answers = []
    for start in range(0, len(mushrooms), CHUNK):
        answers += classifier.classify(mushrooms[start : start + CHUNK])[0]
        print(f"\rscored {len(answers):,}/{len(mushrooms):,} mushrooms", end="", file=sys.stderr)
    print(file=sys.stderr)
    return answers


def load_classifier(tag: str | None):
    import bentoml

    from mushroom.lifecycle.champion import NoChampion, select
    from mushroom.serving.classifier import Classifier

    if tag is None:
        try:
            tag = select().tag
        except NoChampion as exc:
            raise InputError(f"no model to score with: {exc}") from None
    try:
        return Classifier(Path(bentoml.models.get(tag).path))
    except (ValueError, bentoml.exceptions.BentoMLException) as exc:
        raise InputError(f"--model {tag}: {exc}") from None


def predict(args: argparse.Namespace) -> int:
    passthrough = list(dict.fromkeys(args.passthrough))
    try:
        check_replaceable(args.output, args.input)
        header, rows = read_table(args.input)
        classifier = load_classifier(args.model)
        columns = trait_columns(header, passthrough, classifier.catalogue, args.input)
        mushrooms = validate_rows(rows, columns, classifier.mushroom, args.input)
        answers = score(classifier, mushrooms)
        write_answers(args.output, header, rows, answers)
    except (InputError, OutputRefused) as exc:
        print(f"mushroom predict: {exc}", file=sys.stderr)
        return 2
    counts = dict(Counter(answer["verdict"] for answer in answers).most_common())
    print(f"mushroom predict: wrote {args.output}: {counts}")
    return 0
