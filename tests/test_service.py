"""The real service: `bentoml serve` of a model promoted from a small real pipeline run."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from pathlib import Path

import httpx
import pandas as pd
import pytest

import rawfixtures
from mushroom.core.catalogue import NOT_RECORDED, SECONDARY, UCI
from mushroom.data.log_reading import read_predictions
from mushroom.data.raw import UCI_FILE, read_raw
from servefixtures import Server, build_and_promote, promote


@pytest.fixture(scope="module")
def secondary_server(bentoml_home, tmp_path_factory):
    """A secondary-data model of the six fixture species, for the numeric traits (it answers
    some of them edible, which the real data's model never does to a person); its gate is
    opened on purpose (six fixture species cannot make a safe model, and the gate is not
    under test here)."""
    raw = tmp_path_factory.mktemp("secondary-raw")
    rawfixtures.write_secondary(raw)
    promoted = build_and_promote(
        tmp_path_factory.mktemp("secondary") / "work",
        raw,
        bentoml_home,
        data__dataset="secondary",
        evaluate__gate__max_false_edible=10**6,
        evaluate__gate__max_false_edible_rate=1.0,
        evaluate__gate__max_cv_false_edible_rate=1.0,
    )
    server = Server(promoted, tmp_path_factory.mktemp("secondary-log") / "predictions.db")
    yield server
    server.stop()


def classify(server: Server, mushrooms, **kwargs) -> httpx.Response:
    return httpx.post(f"{server.url}/classify", json={"mushrooms": mushrooms}, timeout=30, **kwargs)


@pytest.fixture(scope="module")
def known_mushrooms(pulled_repo):
    """Real UCI rows, both as readable names (snake_case keys) and as raw codes (hyphenated
    keys, upper case), with their true class."""
    raw = pulled_repo / "data" / "raw"
    names = read_raw("uci", raw).sample(40, random_state=7)
    codes = pd.read_csv(
        raw / UCI_FILE, header=None, dtype=str, names=["class"] + [t.column for t in UCI.traits]
    )
    by_name = [{t.name: row[t.name] for t in UCI.traits} for _, row in names.iterrows()]
    by_code = [{t.column: codes.at[i, t.column].upper() for t in UCI.traits} for i in names.index]
    return by_name, by_code, names["class"].tolist()


def test_names_and_codes_give_the_same_answer(uci_server, known_mushrooms):
    by_name, by_code, truth = known_mushrooms
    named, coded = classify(uci_server, by_name), classify(uci_server, by_code)
    assert named.status_code == coded.status_code == 200
    named, coded = named.json(), coded.json()
    for key in ("probability_poisonous", "verdict", "reasons", "unknown_traits"):
        assert [a[key] for a in named] == [a[key] for a in coded]
    for answer, mushroom, true_class in zip(named, by_name, truth, strict=True):
        # the data's "not recorded" ("?"), which a person cannot give, is unknown
        assert answer["unknown_traits"] == [t for t, v in mushroom.items() if v == NOT_RECORDED]
        assert answer["verdict"] in (true_class, "uncertain")
        assert answer["reasons"], answer
    assert sum(a["verdict"] == true_class for a, true_class in zip(named, truth, strict=True)) >= 30


def test_left_out_traits_are_unknown_listed_and_a_foul_odor_is_poisonous(uci_server):
    answer = classify(uci_server, [{"odor": "foul", "cap-shape": "x"}]).json()[0]
    assert "odor" not in answer["unknown_traits"] and "cap_shape" not in answer["unknown_traits"]
    assert "habitat" in answer["unknown_traits"] and "veil_type" in answer["unknown_traits"]
    # Two traits are no whole mushroom: unfamiliar; but every known mushroom with them is
    # poisonous, whatever the rest, and it says which given trait decides it.
    assert answer["verdict"] == "poisonous" and answer["reasons"][0] == "unfamiliar"
    assert "odor=foul" in answer["reasons"] and not answer["edible_possible"]
    assert len(answer["request_id"]) == 32 and answer["model_version"].endswith(":1")


def test_odor_none_alone_is_not_edible_and_names_what_to_look_at(uci_server):
    """120 of the 3,528 odorless UCI mushrooms are poisonous: odor alone proves nothing."""
    first, again = classify(uci_server, [{"odor": "none"}] * 2).json()
    assert first["verdict"] == "uncertain"
    named = [r.removeprefix("unknown:") for r in first["reasons"] if r.startswith("unknown:")]
    assert 1 <= len(named) <= 3 and set(named) <= set(first["unknown_traits"])
    assert first["reasons"] == again["reasons"]  # same description, same reasons


def test_a_full_edible_description_is_answered_edible_with_its_reasons(uci_server, pulled_repo):
    rows = read_raw("uci", pulled_repo / "data" / "raw")
    edible = rows[(rows["class"] == "edible") & (rows["odor"] == "anise")].head(20)
    mushrooms = [{t.name: row[t.name] for t in UCI.traits} for _, row in edible.iterrows()]
    answers = classify(uci_server, mushrooms).json()
    assert {a["verdict"] for a in answers} == {"edible"}
    for answer, mushroom in zip(answers, mushrooms, strict=True):
        pushers = [r for r in answer["reasons"] if "=" in r and ":" not in r]
        assert 1 <= len(pushers) <= 3
        assert all(mushroom[r.split("=")[0]] == r.split("=")[1] for r in pushers)
    assert "odor=anise" in answers[0]["reasons"]


BAD_UCI_REQUESTS = {
    "unknown value": (
        {"json": {"mushrooms": [{"odor": "rotten"}]}},
        400,
        ["odor", "Input should be 'almond', 'anise'", "'pungent' or 'spicy', or a code letter"],
    ),
    "wrong type": (
        {"json": {"mushrooms": [{"odor": 3}]}},
        400,
        ["mushrooms[0].odor: Input should be a string", "(got 3, a number)"],
    ),
    "unknown field": ({"json": {"mushrooms": [{"colour": "red"}]}}, 400, ["colour"]),
    "field given twice": (
        {"json": {"mushrooms": [{"cap_shape": "x", "cap-shape": "f"}]}},
        400,
        ["mushrooms[0].cap-shape: unknown field (or a trait already given by its other name)"],
    ),
    "invalid JSON": (
        {
            "content": b'{"mushrooms": [{"odor": "foul"}',
            "headers": {"content-type": "application/json"},
        },
        400,
        ["Invalid JSON"],
    ),
    "empty list": ({"json": {"mushrooms": []}}, 400, ["mushrooms", "at least 1"]),
    "too many": (
        {"json": {"mushrooms": [{"odor": "foul"}] * 1001}},
        400,
        ["mushrooms", "at most 1000"],
    ),
    "not a list": ({"json": {"mushrooms": {"odor": "foul"}}}, 400, ["mushrooms"]),
    "no mushrooms key": ({"json": {"mushroom": [{"odor": "foul"}]}}, 400, ["mushrooms"]),
    "content type": (
        {"content": b'{"mushrooms": [{}]}', "headers": {"content-type": "text/plain"}},
        415,
        ["application/json", "text/plain"],
    ),
    "oversized body": (
        {"content": b" " * 3_000_000, "headers": {"content-type": "application/json"}},
        413,
        ["exceeds the limit"],
    ),
}


@pytest.mark.parametrize("case", BAD_UCI_REQUESTS, ids=list(BAD_UCI_REQUESTS))
def test_bad_request_is_4xx_naming_the_field_and_server_keeps_serving(uci_server, case):
    kwargs, status, phrases = BAD_UCI_REQUESTS[case]
    response = httpx.post(f"{uci_server.url}/classify", timeout=30, **kwargs)
    assert response.status_code == status, response.text
    for phrase in phrases:
        assert phrase in response.text
    assert "Traceback" not in response.text
    assert classify(uci_server, [{"odor": "none"}]).status_code == 200


BAD_MEASUREMENTS = {  # field, the value as JSON text, what the error says
    "negative": ("cap_diameter", "-1", "Input should be from 0 to"),
    "far out of range": ("cap-diameter", "1000", "Input should be from 0 to"),
    "huge": ("stem_height", "1e308", "Input should be from 0 to"),
    "not finite": ("stem_height", "Infinity", "Input should be from 0 to"),
    "boolean": ("stem-width", "true", "Input should be a number in mm, or 'missing' if not"),
    "numeric string": ("stem_width", '"12"', "Input should be a number in mm"),
    "underscored string": ("cap_diameter", '"1_000"', "Input should be a number in cm"),
    "word": ("stem-width", '"wide"', "Input should be a number in mm"),
}


@pytest.mark.parametrize("case", BAD_MEASUREMENTS, ids=list(BAD_MEASUREMENTS))
def test_a_measurement_must_be_a_plausible_number(secondary_server, case):
    field, value, phrase = BAD_MEASUREMENTS[case]
    response = httpx.post(
        f"{secondary_server.url}/classify",
        content=f'{{"mushrooms": [{{"{field}": {value}}}]}}'.encode(),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert f"mushrooms[0].{field}: {phrase}" in response.json()["error"]
    given = {"cap-diameter": 4.5, "stem_width": 12, "stem_height": "Missing", "season": "A"}
    good = classify(secondary_server, [given])
    assert good.status_code == 200
    unknown = good.json()[0]["unknown_traits"]
    assert "cap_diameter" not in unknown and "stem_height" in unknown  # not measured


def test_a_measurement_up_to_its_bound_is_never_edible_and_beyond_it_is_refused(
    secondary_server, tmp_path
):
    """The bound is twice the largest value in the model's data, so a description with a
    measurement near it fits no species: unfamiliar, uncertain. On a secondary model a
    cap of 1,000 cm once turned every poisonous test mushroom edible."""
    rawfixtures.write_secondary(tmp_path)
    rows = read_raw("secondary", tmp_path).groupby("class").head(20)
    mushrooms = rows[[t.name for t in SECONDARY.traits]].to_dict(orient="records")
    as_given = classify(secondary_server, mushrooms).json()
    assert {a["verdict"] for a in as_given} - {"uncertain"}  # so a change would show
    spec = httpx.get(f"{secondary_server.url}/docs.json").json()
    properties = spec["components"]["schemas"]["SecondaryMushroom"]["properties"]
    for trait in SECONDARY.numeric:
        (number,) = [kind for kind in properties[trait.name]["anyOf"] if kind.get("maximum")]
        bound = number["maximum"]
        at_bound = classify(secondary_server, [m | {trait.name: bound} for m in mushrooms])
        assert {a["reasons"][0] for a in at_bound.json()} == {"unfamiliar"}
        assert {a["verdict"] for a in at_bound.json()} == {"uncertain"}
        for beyond in (bound * 1.01, 1000):
            refused = classify(secondary_server, [m | {trait.name: beyond} for m in mushrooms])
            assert refused.status_code == 400
            assert f"Input should be from 0 to {bound:g} {trait.unit}" in refused.text


def test_secondary_schema_has_its_own_traits(secondary_server):
    response = classify(secondary_server, [{"odor": "foul"}])  # a UCI-only trait
    assert response.status_code == 400 and "odor" in response.text
    spec = httpx.get(f"{secondary_server.url}/docs.json").json()
    properties = spec["components"]["schemas"]["SecondaryMushroom"]["properties"]
    assert set(properties) == {t.name for t in SECONDARY.traits}


def test_openapi_lists_every_field_with_allowed_values_and_example(uci_server):
    spec = httpx.get(f"{uci_server.url}/docs.json").json()
    assert "/classify" in spec["paths"]
    properties = spec["components"]["schemas"]["UciMushroom"]["properties"]
    assert set(properties) == {t.name for t in UCI.traits}
    for trait in UCI.traits:
        field = properties[trait.name]
        (values,) = [option["enum"] for option in field["anyOf"] if "enum" in option]
        assert values == [*trait.describable_values, "missing", "unknown", "?"]
        assert field["example"] in trait.describable_values
        assert field["x-codes"] == dict(trait.codes)
        assert all(name in field["description"] for name in trait.codes.values())
    answer = spec["components"]["schemas"]["Answer"]["properties"]
    assert answer["reasons"]["type"] == "array" and "unfamiliar" in answer["reasons"]["description"]
    assert "unknown" in answer["unknown_traits"]["description"]
    for field in ("probability_range", "edible_possible", "check_next"):
        assert field in spec["components"]["schemas"]["Answer"]["required"]
    assert "lookalike" in answer["reasons"]["description"]


def test_model_endpoint_shows_the_promoted_version(uci_server, uci_model):
    info = httpx.get(f"{uci_server.url}/model").json()
    assert info["version"] == uci_model.version == "1"
    assert (info["dataset"], info["split"], info["model"]) == ("uci", "random", "logreg")
    metrics = json.loads((uci_model.workdir / "reports" / "metrics.json").read_text())
    assert info["metrics"]["test"]["false_edible"] == metrics["test"]["false_edible"]
    policy = json.loads((uci_model.workdir / "models" / "policy.json").read_text())
    assert info["policy"] == policy["policy"] and info["familiarity"]["method"] == "pairs"
    assert info["familiarity"]["limit"] == policy["familiarity"]["limit"]
    assert info["params"]["train"]["cv_folds"] == 5 and info["trained_at"]
    assert info["bento_model"] == uci_model.tag and len(info["git_commit"]) >= 7


def test_health_and_metrics(uci_server):
    assert httpx.get(f"{uci_server.url}/healthz").status_code == 200
    assert httpx.get(f"{uci_server.url}/readyz").status_code == 200
    assert "bentoml_service_request" in httpx.get(f"{uci_server.url}/metrics").text


def hammer(
    server: Server,
    threads: int,
    requests_per_thread: int,
    answered: list,
    stop: threading.Event | None = None,
) -> None:
    """Concurrent single- and few-mushroom requests; ids of answered predictions collected."""

    def worker(seed: int) -> None:
        with httpx.Client(timeout=30) as client:
            for n in range(requests_per_thread):
                if stop is not None and stop.is_set():
                    return
                mushrooms = [{"odor": ["foul", "none", "almond"][(seed + n) % 3]}] * (1 + n % 3)
                try:
                    response = client.post(f"{server.url}/classify", json={"mushrooms": mushrooms})
                except httpx.TransportError:
                    continue  # the server was killed: this request was never answered
                if response.status_code == 200:
                    answered.extend(a["request_id"] for a in response.json())

    pool = [threading.Thread(target=worker, args=(seed,)) for seed in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()


def logged_ids(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        assert db.execute("pragma integrity_check").fetchone() == ("ok",)
    return read_predictions(path)["request_id"].tolist()


def test_concurrent_requests_are_each_logged_once(uci_server):
    before = set(logged_ids(uci_server.log_path))
    answered: list[str] = []
    hammer(uci_server, threads=16, requests_per_thread=14, answered=answered)
    assert len(answered) == sum(1 + n % 3 for n in range(14)) * 16  # 448 from 224 requests
    logged = [i for i in logged_ids(uci_server.log_path) if i not in before]
    assert len(logged) == len(set(logged)) == len(answered)
    assert set(logged) == set(answered)
    log = read_predictions(uci_server.log_path, "uci").set_index("request_id")
    sample = log.loc[answered[0]]
    assert sample["verdict"] in {"edible", "poisonous", "uncertain"}
    assert sample["dataset"] == "uci" and sample["model_version"] == "mushroom-classifier:1"
    assert sample["odor"] in {"foul", "none", "almond"} and sample["habitat"] is None  # unknown
    assert sample["unfamiliar"] == 1 and sample["reasons"].startswith("unfamiliar")
    assert set(log.columns) >= {t.name for t in UCI.traits}


def test_sigkill_during_load_loses_no_answered_prediction(uci_model, tmp_path):
    server = Server(uci_model, tmp_path / "predictions.db")
    answered: list[str] = []
    stop = threading.Event()
    load = threading.Thread(target=hammer, args=(server, 16, 400, answered, stop))
    load.start()
    try:
        while len(answered) < 150 and load.is_alive():
            threading.Event().wait(0.05)
        server.kill()
    finally:
        stop.set()
        load.join()
        server.stop()
    assert len(answered) >= 150
    logged = logged_ids(tmp_path / "predictions.db")
    assert len(logged) == len(set(logged))
    assert set(answered) <= set(logged)


def test_promoting_the_same_model_again_changes_nothing(uci_model, tmp_path):
    env = uci_model.env | {"BENTOML_HOME": str(tmp_path / "bentoml")}
    first, again = promote(uci_model.workdir, env), promote(uci_model.workdir, env)
    assert first.returncode == again.returncode == 0, first.stderr + again.stderr
    assert first.stdout == again.stdout  # same registry version, same store entry
    assert f"version {uci_model.version} is 'champion'" in again.stdout
    assert len(list((tmp_path / "bentoml" / "models" / "mushroom-classifier").glob("*/"))) == 1
    with sqlite3.connect(uci_model.workdir / "mlflow.db") as db:
        assert db.execute("select version from model_versions").fetchall() == [(1,)]
        aliases = db.execute("select alias, version from registered_model_aliases").fetchall()
    assert aliases == [("champion", 1)]


def test_promotion_refuses_a_model_that_failed_the_gate(uci_model, tmp_path):
    from servefixtures import trained_workdir

    workdir, raw = tmp_path / "work", tmp_path / "raw"
    # Classes no trait predicts: no evidence for any edible answer, below the coverage floor.
    rawfixtures.relabel_at_random(rawfixtures.write_uci(raw))
    env = trained_workdir(workdir, raw, {"BENTOML_HOME": uci_model.env["BENTOML_HOME"]})
    refused = promote(workdir, env)
    assert refused.returncode == 3
    metrics = json.loads((workdir / "reports" / "metrics.json").read_text())
    coverage = metrics["test"]["coverage"]
    assert (
        f"refused: the evaluate gate failed: test.coverage = {coverage:g} is below the minimum"
        in refused.stderr
    )
    with sqlite3.connect(workdir / "mlflow.db") as db:
        assert db.execute("select count(*) from model_versions").fetchone() == (0,)


def feedback(server: Server, request_id: str, true_class: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/feedback",
        timeout=30,
        json={"request_id": request_id, "true_class": true_class},
    )


def test_feedback_is_stored_once_and_a_conflict_counts_as_poisonous(uci_server):
    first, second, third = classify(
        uci_server, [{"odor": "foul"}, {"odor": "none"}, {"odor": "almond"}]
    ).json()
    stored = feedback(uci_server, first["request_id"], "poisonous")
    assert stored.status_code == 200 and stored.json()["stored"] is True
    repeat = feedback(uci_server, first["request_id"], "poisonous")
    assert repeat.status_code == 200 and repeat.json()["stored"] is False
    # Poisonous, then edible: kept as a conflict, still poisonous.
    conflict = feedback(uci_server, first["request_id"], "edible")
    assert conflict.status_code == 200
    assert conflict.json() | {"request_id": ""} == {
        "request_id": "",
        "true_class": "edible",
        "stored": True,
        "counts_as": "poisonous",
        "conflict": True,
    }
    # Edible, then poisonous (a wrong first label once made the true one a 409): poisonous.
    assert feedback(uci_server, third["request_id"], "edible").json()["counts_as"] == "edible"
    overturned = feedback(uci_server, third["request_id"], "poisonous").json()
    assert (overturned["counts_as"], overturned["conflict"]) == ("poisonous", True)
    unknown = feedback(uci_server, "f" * 32, "edible")
    assert unknown.status_code == 404 and "no such prediction" in unknown.text
    invalid = feedback(uci_server, second["request_id"], "maybe")
    assert invalid.status_code == 400 and "true_class" in invalid.text
    with contextlib.closing(sqlite3.connect(uci_server.log_path)) as db:
        conflicts = db.execute(
            "select request_id, true_class, source from label_conflicts "
            "where request_id in (?, ?) order by rowid",
            (first["request_id"], third["request_id"]),
        ).fetchall()
    assert conflicts == [
        (first["request_id"], "edible", "open"),
        (third["request_id"], "poisonous", "open"),
    ]
    assert "label conflict: request " + third["request_id"] in uci_server.server_log()
    log = read_predictions(uci_server.log_path, "uci").set_index("request_id")
    assert log.loc[third["request_id"], "true_class"] == "poisonous"
    log = read_predictions(uci_server.log_path, "uci").set_index("request_id")
    assert log.loc[first["request_id"], "true_class"] == "poisonous"
    assert log.loc[second["request_id"], "true_class"] is None


def test_a_configured_feedback_token_is_required_and_kept_as_the_labels_source(uci_model, tmp_path):
    token = "s3cret-token-for-labels"
    server = Server(uci_model, tmp_path / "log.db", extra_env={"MUSHROOM_FEEDBACK_TOKEN": token})
    try:
        answer = classify(server, [{"odor": "foul"}])  # answering needs no token
        assert answer.status_code == 200
        label = {"request_id": answer.json()[0]["request_id"], "true_class": "poisonous"}
        sent = {
            given: httpx.post(f"{server.url}/feedback", json=label, headers=headers, timeout=30)
            for given, headers in {
                "none": {},
                "wrong": {"authorization": "Bearer s3cret-token-for-label"},
                "right": {"authorization": f"Bearer {token}"},
            }.items()
        }
        said = server.server_log()
    finally:
        server.stop()
    for given in ("none", "wrong"):
        assert sent[given].status_code == 401, sent[given].text
        assert sent[given].headers["www-authenticate"] == "Bearer"
        assert sent[given].json()["error"].startswith("/feedback needs the bearer token")
    assert sent["right"].status_code == 200 and sent["right"].json()["stored"] is True
    assert token not in said
    with contextlib.closing(sqlite3.connect(tmp_path / "log.db")) as db:
        assert db.execute("select true_class, source from feedback").fetchall() == [
            ("poisonous", "token")
        ]


def test_the_server_says_at_start_what_it_serves_from_which_stores_and_code(uci_server, uci_model):
    """One line, so a server never serves another checkout's champion unnoticed."""
    said = [
        line
        for line in uci_server.output_path.read_text().splitlines()
        if line.startswith("mushroom: serving ")
    ]
    assert len(said) == 1, uci_server.server_log()
    assert f"({uci_model.tag}, chosen by MUSHROOM_MODEL)" in said[0]
    assert f"MLflow store {uci_model.env['MLFLOW_TRACKING_URI']};" in said[0]
    assert f"code {Path(__file__).resolve().parents[1] / 'src'};" in said[0]
    assert f"prediction log {uci_server.log_path}" in said[0]
