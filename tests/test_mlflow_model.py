"""The registered model is the whole judgement: ``mlflow.pyfunc.load_model`` of the promoted
version answers 2,000 descriptions (full, partial, unfamiliar) exactly as a real `bentoml
serve` and `mushroom predict` do, and refuses what the API refuses."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import httpx
import pandas as pd

from mushroom.core.catalogue import NOT_RECORDED, UCI
from mushroom.data.raw import read_raw
from mushroom.lifecycle.store_names import NAME

# os._exit: the interpreter's teardown, with pyarrow's and OpenMP's native threads about,
# once aborted in CI ("terminate called without an active exception", SIGABRT) after the
# answer was written; what is judged here is the answer, not the teardown.
PYFUNC = """
import os, sys, mlflow, pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
frame = pd.read_parquet(sys.argv[2])
try:
    model.predict(frame).to_parquet(sys.argv[3])
except ValueError as exc:
    print(exc, file=sys.stderr, flush=True)
    os._exit(2)
sys.stderr.flush()
os._exit(0)
"""


def descriptions(pulled_repo) -> list[dict]:
    """700 full real UCI mushrooms, 700 with 3 to 15 of their traits, 600 of random values."""
    rows = read_raw("uci", pulled_repo / "data" / "raw").sample(1400, random_state=11)
    real = [
        {name: value for name, value in row.items() if value != NOT_RECORDED}
        for row in rows[UCI.trait_names].to_dict("records")
    ]
    pick = random.Random(5)
    partial = [dict(pick.sample(sorted(m.items()), pick.randint(3, 15))) for m in real[700:]]
    strange = [
        {t.name: pick.choice(t.describable_values) for t in pick.sample(UCI.traits, 12)}
        for _ in range(600)
    ]
    return real[:700] + partial + strange


def through_pyfunc(uci_model, frame: pd.DataFrame, tmp_path) -> subprocess.CompletedProcess:
    """A fresh process loads the registered version by its registry URI and scores ``frame``."""
    frame.to_parquet(tmp_path / "in.parquet")
    return subprocess.run(
        [
            sys.executable,
            "-c",
            PYFUNC,
            f"models:/{NAME}/{uci_model.version}",
            str(tmp_path / "in.parquet"),
            str(tmp_path / "out.parquet"),
        ],
        env=uci_model.env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_registered_model_answers_as_the_service_and_the_cli(
    uci_model, uci_server, pulled_repo, tmp_path
):
    mushrooms = descriptions(pulled_repo)
    frame = pd.DataFrame(mushrooms, columns=UCI.trait_names)
    done = through_pyfunc(uci_model, frame, tmp_path)
    assert done.returncode == 0, done.stderr
    judged = pd.read_parquet(tmp_path / "out.parquet")

    served = []
    for start in range(0, len(mushrooms), 1000):
        answered = httpx.post(
            f"{uci_server.url}/classify",
            json={"mushrooms": mushrooms[start : start + 1000]},
            timeout=120,
        )
        assert answered.status_code == 200, answered.text
        served += answered.json()
    assert [a["verdict"] for a in served] == judged["verdict"].tolist()
    verdicts = judged["verdict"].value_counts().to_dict()
    assert {"edible", "poisonous", "uncertain"} <= set(verdicts), verdicts
    assert [a["reasons"] for a in served] == judged["reasons"].map(json.loads).tolist()
    assert [a["unknown_traits"] for a in served] == judged["unknown_traits"].map(
        json.loads
    ).tolist()
    assert [a["check_next"] for a in served] == judged["check_next"].map(json.loads).tolist()
    assert [a["edible_possible"] for a in served] == judged["edible_possible"].tolist()
    assert [a["probability_range"] for a in served] == (
        judged[["probability_low", "probability_high"]].values.tolist()
    )
    assert [a["probability_poisonous"] for a in served] == judged["probability_poisonous"].tolist()

    frame.to_csv(tmp_path / "in.csv", index=False)
    predicted = subprocess.run(
        [sys.executable, "-m", "mushroom.cli", "predict", str(tmp_path / "in.csv")]
        + ["-o", str(tmp_path / "out.csv"), "--model", uci_model.tag],
        env=uci_model.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert predicted.returncode == 0, predicted.stderr
    scored = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False)
    assert scored["verdict"].tolist() == judged["verdict"].tolist()
    assert scored["reasons"].tolist() == ["; ".join(json.loads(r)) for r in judged["reasons"]]


def test_the_registered_model_refuses_a_value_the_api_refuses(uci_model, tmp_path):
    done = through_pyfunc(uci_model, pd.DataFrame([{"odor": "foul"}, {"odor": "purple"}]), tmp_path)
    assert done.returncode == 2 and "row 1: odor: 'purple': Input should be" in done.stderr


def test_a_column_that_is_no_trait_is_dropped_and_the_trait_unknown(uci_model, tmp_path):
    """MLflow's schema enforcement drops it, saying so: the misspelled trait is unknown."""
    frame = pd.DataFrame([{"odour": "foul", "cap_color": "brown"}, {"cap_color": "brown"}])
    done = through_pyfunc(uci_model, frame, tmp_path)
    assert done.returncode == 0 and "['odour']" in done.stderr, done.stderr
    judged = pd.read_parquet(tmp_path / "out.parquet")
    assert judged.iloc[0].tolist() == judged.iloc[1].tolist()
    assert judged["verdict"].tolist() == ["uncertain", "uncertain"]
    assert "odor" in json.loads(judged["unknown_traits"][0])
