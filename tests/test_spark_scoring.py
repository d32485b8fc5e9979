"""`mushroom predict --engine spark`: the registered model on a local Spark session answers
100,000 descriptions with the very file `mushroom predict` writes, from a CSV or a Parquet
file; a value the API refuses stops it naming file, row and column, with nothing written.

Both engines run in this process, as the command does; the module shares one Spark session
(its start costs ~10 s), which the command uses instead of starting its own."""

from __future__ import annotations

import random

import mlflow
import pandas as pd
import pytest

from mushroom.cli import main
from mushroom.core.catalogue import NOT_RECORDED, UCI
from mushroom.data.raw import read_raw
from mushroom.serving import spark_scoring

ROWS = 100_000
PARTIAL, STRANGE = 2_000, 1_000
"""Descriptions with traits left out, and of random values: ~2 ms each to answer (what to
check next is searched over the unknown traits), ~30 times a full one."""


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    session = spark_scoring.start(tmp_path_factory.mktemp("spark"))
    yield session
    session.stop()


@pytest.fixture(scope="module")
def stores(uci_model, tmp_path_factory):
    """This process pointed at ``uci_model``'s stores, whose champion it is, with MLflow's
    own tracking URI left elsewhere, as an earlier in-process command leaves it (a
    ``models:/`` URI once resolved there, and the model was not found)."""
    previous = mlflow.get_tracking_uri()
    with pytest.MonkeyPatch.context() as patch:
        # Recorded first, so restored last: MLflow writes its URI into the environment too.
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        mlflow.set_tracking_uri(f"sqlite:///{tmp_path_factory.mktemp('elsewhere')}/mlflow.db")
        for name in ("BENTOML_HOME", "MLFLOW_TRACKING_URI"):
            patch.setenv(name, uci_model.env[name])
        patch.delenv("MUSHROOM_MODEL", raising=False)
        yield
        mlflow.set_tracking_uri(previous)


def descriptions(pulled_repo) -> pd.DataFrame:
    """Real UCI mushrooms drawn again and again, some with 3 to 15 of their traits, some of
    random values spelled every way the API reads (name, code letter in either case, "I
    don't know"), shuffled; and an ``id`` column to pass through."""
    rows = read_raw("uci", pulled_repo / "data" / "raw")[UCI.trait_names]
    real = rows.sample(ROWS - STRANGE, replace=True, random_state=3).to_dict("records")
    real = [{k: v for k, v in m.items() if v != NOT_RECORDED} for m in real]
    pick = random.Random(7)
    real[:PARTIAL] = [
        dict(pick.sample(sorted(m.items()), pick.randint(3, 15))) for m in real[:PARTIAL]
    ]
    spellings = [
        {t.name: [*t.codes.values(), *t.codes, *map(str.upper, t.codes), "?", "missing"]}
        for t in UCI.traits
    ]
    strange = [
        {t: pick.choice(values) for s in pick.sample(spellings, 12) for t, values in s.items()}
        for _ in range(STRANGE)
    ]
    mushrooms = real + strange
    pick.shuffle(mushrooms)
    frame = pd.DataFrame(mushrooms, columns=UCI.trait_names)
    frame.insert(0, "id", [f"m{i}" for i in range(len(frame))])
    return frame


@pytest.fixture(scope="module")
def scored(pulled_repo, stores, tmp_path_factory):
    """The descriptions as CSV, and the file `mushroom predict` (in-process) writes for it."""
    folder = tmp_path_factory.mktemp("scored")
    frame = descriptions(pulled_repo)
    frame.to_csv(folder / "in.csv", index=False)
    out = folder / "in-process.csv"
    assert main(["predict", str(folder / "in.csv"), "-o", str(out), "--passthrough", "id"]) == 0
    return frame, folder / "in.csv", out


def on_spark(capsys, *args) -> tuple[int, str]:
    code = main(["predict", *map(str, args), "--engine", "spark"])
    return code, capsys.readouterr().err


def test_spark_writes_the_file_mushroom_predict_writes(scored, spark, capsys, tmp_path):
    frame, source, expected = scored
    code, err = on_spark(capsys, source, "-o", tmp_path / "spark.csv", "--passthrough", "id")
    assert code == 0, err
    read = {"dtype": str, "keep_default_na": False}
    answered, wanted = pd.read_csv(tmp_path / "spark.csv", **read), pd.read_csv(expected, **read)
    assert len(answered) == ROWS and answered["id"].tolist() == frame["id"].tolist()
    assert answered["verdict"].tolist() == wanted["verdict"].tolist()
    assert set(answered["verdict"]) == {"edible", "poisonous", "uncertain"}
    for name in ("probability_poisonous", "reasons", "check_next", "unknown_traits"):
        assert answered[name].tolist() == wanted[name].tolist(), name
    assert (tmp_path / "spark.csv").read_bytes() == expected.read_bytes()


def test_a_parquet_file_is_answered_alike_its_other_columns_left_out(
    scored, spark, capsys, tmp_path
):
    """A log snapshot's way: the earlier answers' columns are left out (and named), another
    column passed through, a trait spelled as in the dataset's header; null is unknown."""
    frame, _, expected = scored
    rows = frame.head(5_000).rename(columns={"cap_shape": "cap-shape"})
    rows.assign(verdict="edible", reasons="").to_parquet(tmp_path / "window.parquet")
    code, err = on_spark(
        capsys, tmp_path / "window.parquet", "-o", tmp_path / "out.csv", "--passthrough", "id"
    )
    assert code == 0, err
    assert (
        "left out (neither traits of the uci model nor --passthrough): 'verdict', 'reasons'" in err
    )
    answered = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False)
    wanted = pd.read_csv(expected, dtype=str, keep_default_na=False).head(5_000)
    assert answered.columns.tolist() == [*rows.columns, *wanted.columns[len(rows.columns) :]]
    assert answered.drop(columns="cap-shape").equals(wanted.drop(columns="cap_shape"))
    assert answered["cap-shape"].tolist() == wanted["cap_shape"].tolist()


def test_a_value_the_api_refuses_stops_spark_naming_row_and_column(scored, spark, capsys, tmp_path):
    frame, _, _ = scored
    rows = frame.head(50).copy()
    rows.loc[7, "odor"] = "purple"
    out = tmp_path / "out.csv"
    rows.to_parquet(tmp_path / "bad.parquet")
    code, err = on_spark(capsys, tmp_path / "bad.parquet", "-o", out, "--passthrough", "id")
    assert code == 2
    assert f"{tmp_path / 'bad.parquet'}: row 7: odor: 'purple': Input should be 'almond'" in err
    rows.to_csv(tmp_path / "bad.csv", index=False)
    code, err = on_spark(capsys, tmp_path / "bad.csv", "-o", out, "--passthrough", "id")
    assert code == 2 and f"{tmp_path / 'bad.csv'}: line 9: odor: 'purple': Input should" in err
    rows.assign(odor=1.0).to_parquet(tmp_path / "numbers.parquet")
    code, err = on_spark(capsys, tmp_path / "numbers.parquet", "-o", out, "--passthrough", "id")
    assert code == 2 and "numbers.parquet: column 'odor': double values; text expected" in err
    assert not out.exists()
