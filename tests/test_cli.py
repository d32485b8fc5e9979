"""`mushroom predict`, the batch CLI, against a real promoted model: the service's answers for
a good file; for a bad file or output path, exit 2 and one line per problem, nothing written.

Most calls run `mushroom.cli.main` in this process: the same code path as the command, with
the model loaded from the real store (BentoML reads BENTOML_HOME when first used; every
in-process use in a test session has the session's store)."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from pydantic import TypeAdapter

from mushroom.cli import main
from mushroom.core.catalogue import SECONDARY, UCI
from mushroom.core.text import MAX_SHOWN_ERRORS, SHOWN_CHARACTERS
from mushroom.data.prediction_log import PredictionLog
from mushroom.data.raw import UCI_FILE
from mushroom.serving.csv_scoring import ANSWER_COLUMNS, validate_rows
from mushroom.serving.schema import NOT_KNOWN_HINT, mushroom_model
from servefixtures import Server, run_module


@pytest.fixture
def predict(uci_model, monkeypatch, capsys):
    """``mushroom predict ARGS --model <the promoted model>`` in this process: (exit, stderr)."""
    monkeypatch.setenv("BENTOML_HOME", uci_model.env["BENTOML_HOME"])

    def run(*args) -> tuple[int, str]:
        code = main(["predict", *map(str, args), "--model", uci_model.tag])
        return code, capsys.readouterr().err

    return run


def test_batch_cli_gives_the_service_answers(uci_model, pulled_repo, tmp_path):
    raw = pd.read_csv(
        pulled_repo / "data" / "raw" / UCI_FILE,
        header=None,
        dtype=str,
        names=["class"] + [t.column for t in UCI.traits],
    ).head(300)
    source = tmp_path / "mushrooms.csv"
    raw.to_csv(source, index=False)
    scored = tmp_path / "scored.csv"
    done = run_module(
        "mushroom.cli",
        [
            "predict",
            str(source),
            "-o",
            str(scored),
            "--model",
            uci_model.tag,
            "--passthrough",
            "class",
        ],
        uci_model.env,
    )
    assert done.returncode == 0, done.stderr
    assert "scored 300/300 mushrooms" in done.stderr
    out = pd.read_csv(scored, dtype={"unknown_traits": str}, keep_default_na=False)
    assert len(out) == 300 and (out["class"] == raw["class"]).all()

    server = Server(uci_model, tmp_path / "predictions.db")
    try:
        import httpx

        mushrooms = raw.drop(columns="class").to_dict(orient="records")
        answers = httpx.post(
            f"{server.url}/classify", json={"mushrooms": mushrooms}, timeout=30
        ).json()
    finally:
        server.stop()
    assert out["probability_poisonous"].tolist() == pytest.approx(
        [a["probability_poisonous"] for a in answers], abs=1e-12
    )
    assert out["verdict"].tolist() == [a["verdict"] for a in answers]
    assert out["reasons"].tolist() == ["; ".join(a["reasons"]) for a in answers]
    # "?" is "I don't know" to the API: the stalk root of those rows is unknown
    unknown = out["unknown_traits"].fillna("")
    assert (unknown == np.where(out["stalk-root"] == "?", "stalk_root", "")).all()
    assert not ((out["class"] == "p") & (out["verdict"] == "edible")).any()


def test_batch_cli_rejects_bad_rows_naming_line_and_field(predict, tmp_path):
    source = tmp_path / "bad.csv"
    source.write_text("odor,cap-shape\nfoul,x\nrotten,x\nnone,y\n")
    out = tmp_path / "out.csv"
    assert predict(source, "-o", out) == (
        2,
        f"mushroom predict: {source}: line 3: odor: 'rotten': Input should be 'almond', 'anise', "
        "'creosote', 'fishy', 'foul', 'musty', 'none', 'pungent' or 'spicy', or a code letter, in "
        f"any case; {NOT_KNOWN_HINT}\n{source}: line 4: cap-shape: 'y': Input should be 'bell', "
        "'conical', 'convex', 'flat', 'knobbed' or 'sunken', or a code letter, in any case; "
        f"{NOT_KNOWN_HINT}\n",
    )
    assert not out.exists()


def test_the_cells_of_a_row_never_shift_to_other_traits(predict, tmp_path):
    """The issue's file scored `none,grasses` as odor and habitat. Rows are counted in file
    lines: a quoted cell may span two, a blank line is no row."""
    shifted = tmp_path / "shifted.csv"
    shifted.write_text("odor,habitat\nfoul,woods,none,grasses\n")
    assert predict(shifted, "-o", tmp_path / "out.csv") == (
        2,
        f"mushroom predict: {shifted}: line 2: expected 2 fields, as in the header, found 4\n",
    )
    ragged = tmp_path / "ragged.csv"
    ragged.write_text('odor,habitat\n"foul\nsmelling",woods\n\nnone\nnone,woods,\n"a,b",c\n')
    code, err = predict(ragged, "-o", tmp_path / "out.csv")
    assert code == 2
    assert err.splitlines() == [
        f"mushroom predict: {ragged}: line 5: expected 2 fields, as in the header, found 1",
        f"{ragged}: line 6: expected 2 fields, as in the header, found 3",
    ]
    assert not (tmp_path / "out.csv").exists()


def test_header_columns_must_each_be_one_trait_or_passed_through(predict, tmp_path):
    source = tmp_path / "header.csv"
    source.write_text("class,cap-shape,Odor,cap_shape,id,verdict,source line\np,x,n,x,1,e,3\n")
    code, err = predict(source, "-o", tmp_path / "out.csv", "--passthrough", "verdict", "ID")
    assert code == 2
    assert err.splitlines() == [
        f"mushroom predict: {source}: no column(s) 'ID' to pass through",
        f"{source}: header column 1 ('class') is not a trait of the uci model",
        f"{source}: header column 3 ('Odor') is not a trait of the uci model; did you mean 'odor'?",
        f"{source}: header columns 2 ('cap-shape') and 4 ('cap_shape') both give trait cap_shape",
        f"{source}: header column 5 ('id') is not a trait of the uci model",
        f"{source}: header column 6 ('verdict') would be overwritten by the answer column of "
        "that name; rename it (or score the unscored file)",
        f"{source}: header column 7 ('source line') is not a trait of the uci model",
        f"{source}: to copy other columns to the output, add --passthrough class id 'source "
        f"line'; traits are {', '.join(UCI.trait_names)}",
    ]
    assert not (tmp_path / "out.csv").exists()


def test_long_values_are_cut_and_errors_capped(predict, tmp_path):
    source = tmp_path / "long.csv"
    n_bad = MAX_SHOWN_ERRORS + 5
    source.write_text("odor\n" + "".join(f"{i}{'x' * 5000}\n" for i in range(n_bad)))
    code, err = predict(source, "-o", tmp_path / "out.csv")
    lines = err.splitlines()
    assert code == 2 and len(lines) == MAX_SHOWN_ERRORS + 1
    assert lines[-1] == "... and 5 more"
    cut = repr("0" + "x" * (SHOWN_CHARACTERS - 1))
    assert lines[0] == f"mushroom predict: {source}: line 2: odor: {cut}...: " + (
        "Input should be 'almond', 'anise', 'creosote', 'fishy', 'foul', 'musty', 'none', "
        f"'pungent' or 'spicy', or a code letter, in any case; {NOT_KNOWN_HINT}"
    )
    assert max(len(line) for line in lines) < 400


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "cannot read: No such file or directory"),
        (b"", "empty file; expected a header line of trait names"),
        (b"\n\n", "empty file; expected a header line of trait names"),
        (b"odor,habitat\n", "no mushrooms: nothing after the header line"),
        (b"odor\nnone\n\xe9t\xe9\n", "line 3: not UTF-8 text (byte 0xe9); save the file as UTF-8"),
        (b'odor\n"none\n', "line 2: unexpected end of data"),
    ],
    ids=["missing", "empty", "blank-lines", "header-only", "latin-1", "open-quote"],
)
def test_unreadable_inputs_are_named(predict, tmp_path, content, problem):
    source = tmp_path / "in.csv"
    if content is not None:
        source.write_bytes(content)
    assert predict(source, "-o", tmp_path / "out.csv") == (
        2,
        f"mushroom predict: {source}: {problem}\n",
    )
    assert not (tmp_path / "out.csv").exists()


def test_output_that_must_not_be_replaced_is_refused(predict, tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("odor\nfoul\n")
    (tmp_path / "link.csv").symlink_to(source)
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "folder").mkdir()
    (tmp_path / "hard.csv").hardlink_to(source)
    (tmp_path / "kept.csv").write_text("kept\n")
    (tmp_path / "kept.csv").chmod(0o444)
    PredictionLog(tmp_path / "predictions.db").close()
    log_before = (tmp_path / "predictions.db").read_bytes()
    refused = {
        "link.csv": "is a symbolic link; give the path of a regular file",
        "fifo": "is not a regular file (a FIFO, device or socket); the output is written to "
        "a new file that replaces it, so give a file path",
        "folder": "is a directory; give a file path",
        "in.csv": "is the input file; write to another file",
        "hard.csv": "is the input file; write to another file",
        "predictions.db": "is an SQLite database (a log?); not replacing it",
        "kept.csv": "is read-only; not replacing it",
        "in.csv/out.csv": f"{source} is not a directory",
    }
    for name, problem in refused.items():
        output = tmp_path / name
        assert predict(source, "-o", output) == (2, f"mushroom predict: {output}: {problem}\n")
    assert (tmp_path / "link.csv").is_symlink() and source.read_text() == "odor\nfoul\n"
    assert (tmp_path / "fifo").is_fifo() and (tmp_path / "kept.csv").read_text() == "kept\n"
    assert (tmp_path / "predictions.db").read_bytes() == log_before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["in.csv", "link.csv", "fifo", "folder", "hard.csv", "kept.csv", "predictions.db"]
    )


def test_a_failed_write_keeps_the_old_output(uci_model, tmp_path):
    """The output may only be written up to 4 KiB (as if the disk were full): exit 2, the
    earlier output intact, no temporary left. A real process: the limit is per process."""
    source = tmp_path / "in.csv"
    source.write_text("odor,habitat\n" + "foul,woods\n" * 50)
    output = tmp_path / "out.csv"
    output.write_text("earlier answers\n")

    def small_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    done = subprocess.run(
        [sys.executable, "-m", "mushroom.cli", "predict", str(source), "-o", str(output)]
        + ["--model", uci_model.tag],
        env=uci_model.env,
        preexec_fn=small_files,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2
    assert done.stderr.endswith(f"mushroom predict: {output}: cannot write: File too large\n")
    assert output.read_text() == "earlier answers\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv"]


def test_rows_are_copied_as_given_and_a_blank_cell_is_unknown(predict, tmp_path):
    source = tmp_path / "in.csv"
    # Excel's "CSV UTF-8": a byte-order mark and CRLF line ends; a quoted comma in a note.
    source.write_bytes(
        '\ufeffid,odor,habitat,note\r\n1,foul,woods,"cap, gills"\r\n2,none,,é\r\n'.encode()
    )
    output = tmp_path / "out.csv"
    code, err = predict(source, "-o", output, "--passthrough", "id", "note")
    assert (code, err) == (0, "\rscored 2/2 mushrooms\n")
    out = pd.read_csv(output, dtype=str, keep_default_na=False)
    assert list(out.columns) == ["id", "odor", "habitat", "note", *ANSWER_COLUMNS]
    assert out[["id", "odor", "habitat", "note"]].values.tolist() == [
        ["1", "foul", "woods", "cap, gills"],
        ["2", "none", "", "é"],
    ]
    assert "habitat" in out.at[1, "unknown_traits"].split(";")
    assert "habitat" not in out.at[0, "unknown_traits"].split(";")
    assert out.at[0, "verdict"] != "edible" and "odor=foul" in out.at[0, "reasons"]


def test_measurement_cells_become_numbers_or_are_named(tmp_path):
    """The secondary dataset's measurements: a CSV cell is text, the API's value a number."""
    validate = TypeAdapter(mushroom_model(SECONDARY, {})).validate_python
    header = ["cap-diameter", "stem_height", "habitat"]
    columns = [(i, name, SECONDARY.trait(name)) for i, name in enumerate(header)]
    good = [(2, ["5.0", " 6 ", "woods"]), (3, ["1e1", "", "d"])]
    mushrooms = validate_rows(good, columns, validate, tmp_path / "in.csv")
    assert [(m["cap_diameter"], m["stem_height"]) for m in mushrooms] == [(5.0, 6.0), (10.0, None)]
    assert type(mushrooms[0]["cap_diameter"]) is float
    bad = [(4, [value, "1", "woods"]) for value in ("1_000", "inf", "5,2", "0x10")]
    with pytest.raises(ValueError) as raised:
        validate_rows(bad, columns, validate, tmp_path / "in.csv")
    assert str(raised.value).splitlines() == [
        f"{tmp_path / 'in.csv'}: line 4: cap-diameter: {value!r}: expected a number (in cm), "
        "e.g. 5.2, or a blank cell if not measured"
        for value in ("1_000", "inf", "5,2", "0x10")
    ]
