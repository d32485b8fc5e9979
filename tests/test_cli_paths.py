"""The mushroom command's rough edges, each as a newcomer met it: every option says what it
is, an output outside the project is written (not a traceback), a log named with a '#' is a
path, and an output never replaces a prediction log or follows a link."""

from __future__ import annotations

import re
import sqlite3

import pandas as pd
import pytest

from mushroom.cli import main as mushroom
from mushroom.core.atomic import OutputRefused, check_replaceable
from mushroom.data.prediction_log import PredictionLog

COMMANDS = [
    ["predict"],
    ["promote"],
    ["rollback"],
    ["history"],
    ["monitor", "check"],
    ["monitor", "snapshot"],
    ["monitor", "history"],
    ["feedback", "export"],
]


def undocumented_options(help_text: str) -> list[str]:
    """Options in argparse's help with no description, on their line or the next."""
    lines = help_text.split("options:", 1)[1].splitlines()
    missing = []
    for i, line in enumerate(lines):
        option = re.match(r"  (-[^ ].*?)(?:\s{2,}(\S.*))?$", line)
        if option and not option.group(2):
            following = lines[i + 1] if i + 1 < len(lines) else ""
            if not re.match(r"\s{8,}\S", following):
                missing.append(option.group(1))
    return missing


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_option_of_every_command_says_what_it_is(command, capsys):
    with pytest.raises(SystemExit) as done:
        mushroom([*command, "--help"])
    shown = capsys.readouterr().out
    assert done.value.code == 0 and shown.startswith(f"usage: mushroom {' '.join(command)} ")
    assert undocumented_options(shown) == []


def test_the_help_check_sees_an_option_without_help():
    shown = "usage: x\n\noptions:\n  -h, --help  show help\n  --out OUT\n  --log LOG   the log\n"
    assert undocumented_options(shown) == ["--out OUT"]


@pytest.fixture
def log(tmp_path):
    """An empty prediction log whose name holds a '#', which SQLite's URIs read as a
    fragment: the path must still be the whole name."""
    path = tmp_path / "a#b.db"
    PredictionLog(path)
    assert path.is_file()
    return path


@pytest.mark.parametrize("command", [["monitor", "snapshot"], ["feedback", "export"]], ids=" ".join)
def test_an_output_outside_any_project_is_written_not_dvc_added(
    command, log, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)  # no dvc.yaml here or above
    out = tmp_path / "elsewhere" / "out.parquet"
    assert mushroom([*command, "--log", str(log), "--out", str(out)]) == 0
    said = capsys.readouterr()
    assert f"{out}: written, not dvc add-ed: {tmp_path} is no DVC project" in said.out
    assert said.err == "" and isinstance(pd.read_parquet(out), pd.DataFrame)


@pytest.mark.parametrize("command", [["monitor", "snapshot"], ["feedback", "export"]], ids=" ".join)
def test_an_output_never_replaces_a_log_or_follows_a_link(command, log, tmp_path, capsys):
    before = log.read_bytes()
    assert mushroom([*command, "--log", str(log), "--out", str(log), "--no-dvc"]) == 2
    assert "is an SQLite database" in capsys.readouterr().err and log.read_bytes() == before
    folder = tmp_path / "folder"
    folder.mkdir()
    (tmp_path / "link").symlink_to(folder)
    assert mushroom([*command, "--log", str(log), "--out", str(tmp_path / "link"), "--no-dvc"]) == 2
    assert "is a symbolic link" in capsys.readouterr().err and list(folder.iterdir()) == []


def test_check_replaceable_refuses_an_sqlite_file_whatever_its_name(tmp_path):
    database = tmp_path / "answers.csv"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE t (x)")
    with pytest.raises(OutputRefused, match="answers.csv: is an SQLite database"):
        check_replaceable(database)
    ordinary = tmp_path / "ordinary.csv"
    ordinary.write_text("x\n")
    check_replaceable(ordinary)
