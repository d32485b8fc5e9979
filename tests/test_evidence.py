"""Evidence that holds for real descriptions (issue 15), on the real data, through real
pipeline runs and a real `bentoml serve` of each dataset's model: saying less is never more
edible in any spelling; every accepted value counts; one misread trait never makes a
poisonous mushroom edible, for every model; edible needs held-out evidence and a calibrated
P(poisonous) under the cap; partial descriptions get poisonous answers, bounds and what to
check next, checked against brute force; species profiles that field-guide descriptions fit;
and a gate that refuses a model crafted to fail each new check."""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from mushroom.core.catalogue import NOT_KNOWN, NOT_RECORDED, TARGET, Trait, get_catalogue
from mushroom.core.params import load_params
from mushroom.data import prepared
from mushroom.model import safety
from mushroom.model.bundle import OutdatedBundle, load_bundle
from mushroom.model.evaluation import check_gate, failed_checks, judge_frame, verdict_metrics
from mushroom.model.familiarity import COUNTED_DIRECTLY, Familiarity
from mushroom.model.policy import EDIBLE, POISONOUS, UNCERTAIN, Judge, rate_high
from mushroom.serving.classifier import Classifier
from servefixtures import Server, train_alone

FIELD_GUIDE = Path(__file__).parent / "field_guide" / "secondary.json"
SPELLINGS = sorted(NOT_KNOWN) + ["MISSING", " Missing ", "Unknown", "NOT_RECORDED"]
"""Every spelling of "I don't know" the API takes, and a few in other cases."""
FORAGER_CANNOT_TELL = (
    "spore_print_color",
    "stem_root",
    "stem_surface",
    "veil_type",
    "veil_color",
    "ring_type",
    "gill_attachment",
)


def model_dir(promoted) -> Path:
    name, version = promoted.tag.split(":")
    return Path(promoted.env["BENTOML_HOME"]) / "models" / name / version


def bundle_of(workdir: Path):
    return load_bundle(workdir / "models" / "model.joblib", workdir / "models" / "policy.json")


def split_rows(workdir: Path) -> pd.DataFrame:
    return pd.read_parquet(workdir / "prepared" / prepared.TEST_FILE)


def classify(server: Server, mushrooms: list[dict]) -> list[dict]:
    answers = []
    for start in range(0, len(mushrooms), 1000):  # serve.max_mushrooms a request
        body = {"mushrooms": mushrooms[start : start + 1000]}
        response = httpx.post(f"{server.url}/classify", json=body, timeout=60)
        assert response.status_code == 200, response.text
        answers += response.json()
    return answers


def described(frame: pd.DataFrame, catalogue, leave_out=()) -> list[dict]:
    """Rows as a person sends them: every trait with a value a mushroom can have; the data's
    "not recorded" and ``leave_out`` left out."""
    names = [t.name for t in catalogue.traits]
    return [
        {k: v for k, v in row.items() if v != NOT_RECORDED and k not in leave_out}
        for row in frame[names].to_dict(orient="records")
    ]


@pytest.fixture(scope="module")
def uci_models(uci_model, tmp_path_factory) -> dict[str, Path]:
    """A workdir per model of ``train.model`` on the real UCI data: the promoted logistic
    regression's, and the others trained here (forest: 50 trees)."""
    workdirs = {"logreg": uci_model.workdir}
    for model in ("random_forest", "hist_gb", "naive_bayes"):
        workdirs[model] = train_alone(
            uci_model.workdir,
            tmp_path_factory.mktemp(model),
            {"train.model": model, "train.random_forest.n_estimators": 50},
        )
    return workdirs


# --- 1. saying less is never more edible ----------------------------------------------


@pytest.mark.parametrize("which", ["uci", "secondary"])
def test_every_spelling_of_not_known_is_exactly_a_trait_left_out(uci_model, secondary_model, which):
    """Each spelling the API takes for "I don't know", for each trait, reaches the model as
    the trait left out (the service's own validation and mapping); so, for test rows with
    each trait so spelled, the verdicts are those with it left out: never more edible (UCI:
    every test row; secondary: 500 of them, the safety suite judges every one)."""
    promoted = uci_model if which == "uci" else secondary_model
    classifier = Classifier(model_dir(promoted))
    catalogue = classifier.catalogue
    nothing, _ = classifier.indices([classifier.mushroom({})])
    for trait in catalogue.traits:
        for spelling in SPELLINGS:
            spelled = classifier.indices([classifier.mushroom({trait.column: spelling})])
            assert np.array_equal(spelled[0], nothing) and np.isnan(spelled[1]).all()
    test = split_rows(promoted.workdir)
    rows = described(test if which == "uci" else test.sample(500, random_state=0), catalogue)
    for trait in catalogue.traits:
        given = [row for row in rows if trait.name in row]
        left_out = [{k: v for k, v in r.items() if k != trait.name} for r in given]
        before = classifier.judge.judge(
            *classifier.indices([classifier.mushroom(r) for r in left_out]), reasons=False
        )
        for spelling in ("missing", "?", " Unknown "):
            mushrooms = [classifier.mushroom(r | {trait.name: spelling}) for r in left_out]
            after = classifier.judge.judge(*classifier.indices(mushrooms), reasons=False)
            assert not ((after.verdict == EDIBLE) & (before.verdict != EDIBLE)).any()
            assert (after.verdict == before.verdict).all(), (trait.name, spelling)


def test_missing_instead_of_left_out_is_the_same_answer_over_http(uci_server, uci_model):
    """The issue's probe: 198 of 842 edible UCI test rows turned edible when stalk_root was
    sent as "missing" instead of left out. Now every spelling is unknown: same answers."""
    catalogue = get_catalogue("uci")
    test = split_rows(uci_model.workdir)
    edible = test[test[TARGET] == "edible"]
    left_out = classify(uci_server, described(edible, catalogue, leave_out=["stalk_root"]))
    assert all("stalk_root" in a["unknown_traits"] for a in left_out)
    keys = ("verdict", "probability_poisonous", "probability_range", "reasons", "check_next")
    for spelling in ("missing", "?", " Unknown ", "", None, "not_recorded"):
        mushrooms = [m | {"stalk_root": spelling} for m in described(edible, catalogue)]
        answers = classify(uci_server, mushrooms)
        for key in keys:
            assert [a[key] for a in answers] == [a[key] for a in left_out], (spelling, key)
    # a UCI stalk root could be cup or rhizomorphs, which no training mushroom had
    assert not any(a["verdict"] == EDIBLE for a in left_out)


# --- 2. every accepted value counts --------------------------------------------------


def test_an_unseen_veil_type_makes_an_edible_uci_description_unfamiliar(uci_server, uci_model):
    catalogue = get_catalogue("uci")
    test = split_rows(uci_model.workdir)
    mushrooms = described(test[test[TARGET] == "edible"], catalogue)
    before = classify(uci_server, mushrooms)
    edible = [m for m, a in zip(mushrooms, before, strict=True) if a["verdict"] == EDIBLE]
    assert len(edible) >= 0.7 * len(mushrooms)  # those with a stalk root recorded
    after = classify(uci_server, [m | {"veil_type": "universal"} for m in edible])
    for answer in after:
        assert answer["verdict"] != EDIBLE
        assert answer["reasons"][:2] == ["unfamiliar", "unseen:veil_type=universal"]


def test_an_unseen_secondary_value_makes_a_description_unfamiliar(
    secondary_model, secondary_server
):
    """A stem root no training mushroom had (cup: the volva of deadly Amanitas) set into
    every test description the model answers edible: none stays edible, each says why. The
    same over HTTP."""
    workdir = secondary_model.workdir
    judge = bundle_of(workdir).judge()
    test = split_rows(workdir)
    edible = test[judge_frame(judge, test).verdict == EDIBLE]
    assert len(edible) >= 100
    cup = edible.assign(stem_root="cup")
    judgement = judge.judge(*judge.index_frame(cup))
    assert not (judgement.verdict == EDIBLE).any() and not judgement.familiar.any()
    assert all("unseen:stem_root=cup" in reasons for reasons in judgement.reasons)
    catalogue = get_catalogue("secondary")
    answers = classify(secondary_server, described(cup.head(200), catalogue))
    assert all("unseen:stem_root=cup" in a["reasons"] for a in answers)
    assert not any(a["verdict"] == EDIBLE for a in answers)


# --- 3. misread margin -----------------------------------------------------------------


@pytest.mark.parametrize("model", ["logreg", "random_forest", "hist_gb", "naive_bayes"])
def test_one_misread_trait_never_makes_a_poisonous_uci_mushroom_edible(uci_models, model):
    """Every poisonous UCI mushroom, both splits, with each trait read as each other value:
    none answered edible, by every model (the safety suite's check; the promoted model's
    own report says the same)."""
    workdir = uci_models[model]
    described = pd.concat(
        [
            pd.read_parquet(workdir / "prepared" / f)
            for f in (prepared.TRAIN_FILE, prepared.TEST_FILE)
        ]
    )
    catalogue = get_catalogue("uci")
    found = safety.misread(bundle_of(workdir).judge(), catalogue, described, seed=0)
    poisonous = int((described[TARGET] == "poisonous").sum())
    assert found["rows"] == found["of"] == poisonous == 3916
    per_row = sum(len(t.describable_values) - 1 for t in catalogue.traits)
    assert found["descriptions"] >= poisonous * per_row
    assert found["edible"] == 0
    if model == "logreg":
        assert json.loads((workdir / "reports" / "safety.json").read_text())["misread"] == found


def test_a_lookalike_names_how_the_nearest_poisonous_mushroom_differs(uci_model):
    """Poisonous mushrooms with one trait misread that the model itself scores below the
    edible threshold: not edible, and the reason says how a poisonous training mushroom
    differs (setting those values into the description gives one of them)."""
    workdir = uci_model.workdir
    judge = bundle_of(workdir).judge()
    names = get_catalogue("uci").trait_names
    described = pd.concat(
        [
            pd.read_parquet(workdir / "prepared" / f)
            for f in (prepared.TRAIN_FILE, prepared.TEST_FILE)
        ]
    )
    poisonous = described[described[TARGET] == "poisonous"][names]
    train = pd.read_parquet(workdir / "prepared" / prepared.TRAIN_FILE)
    known = set(train[train[TARGET] == "poisonous"][names].itertuples(index=False, name=None))
    misread = pd.concat(
        [poisonous[poisonous["odor"] != odor].assign(odor=odor) for odor in ("none", "almond")]
    )
    first = judge.judge(*judge.index_frame(misread), reasons=False)
    assert not (first.verdict == EDIBLE).any()
    close = misread[(first.verdict == UNCERTAIN) & (first.probability < judge.policy.edible_below)]
    judgement = judge.judge(*judge.index_frame(close))
    named = 0
    for (_, row), reasons in zip(close.iterrows(), judgement.reasons, strict=True):
        for reason in reasons:
            if reason.startswith("lookalike:"):
                named += 1
                changes = dict(c.split("=") for c in reason.removeprefix("lookalike:").split(","))
                assert tuple((row.to_dict() | changes).values()) in known, reason
    assert named >= 10


def test_a_secondary_lookalike_is_a_poisonous_species_within_the_margin(secondary_model):
    """Poisonous secondary test mushrooms with one trait misread: each lies within the margin
    of a poisonous species, which the lookalike reason names (the safety suite's count of
    such variants answered edible is 0)."""
    workdir = secondary_model.workdir
    bundle = bundle_of(workdir)
    judge, margin = bundle.judge(), bundle.familiarity["lookalike_traits"]
    report = json.loads((workdir / "reports" / "safety.json").read_text())["misread"]
    assert report["edible"] == 0 and report["rows"] == safety.MISREAD_ROWS < report["of"]
    assert margin >= 1
    test = split_rows(workdir)
    poisonous = test[test[TARGET] == "poisonous"].head(200)
    misread = pd.concat(
        [poisonous.assign(**{t.name: t.describable_values[0]}) for t in judge.scorer.categorical]
    )
    index, numbers = judge.index_frame(misread)
    detector = judge.familiarity
    assert detector.lookalike(index, numbers).all()
    distances = detector.distances(index, numbers)  # complete rows: known traits only
    for i, name in enumerate(detector.lookalike_names(index, numbers)):
        j = detector.species_names.index(name)
        assert detector.poisonous[j] and distances[i, j] <= margin


# --- 4. edible needs evidence ----------------------------------------------------------


def test_the_edible_threshold_states_its_evidence_and_caps_the_risk(uci_model, uci_server):
    workdir = uci_model.workdir
    params = load_params(workdir / "params.yaml")
    policy = json.loads((workdir / "models" / "policy.json").read_text())
    evidence = policy["held_out"]["edible_evidence"]
    assert (
        evidence
        == json.loads((workdir / "reports" / "held_out.json").read_text())["edible_evidence"]
    )
    assert evidence["poisonous_tested"] >= evidence["needed"] == 598
    assert evidence["false_edible_rate_high_95"] == pytest.approx(
        rate_high(evidence["false_edible"], evidence["poisonous_tested"]), abs=1e-6
    )
    cap = params.train.abstention.max_edible_risk
    assert evidence["edible_region"] and 0 < policy["policy"]["edible_below"] <= cap
    card = httpx.get(f"{uci_server.url}/model", timeout=10).json()
    assert card["held_out"]["edible_evidence"] == evidence
    # no edible answer at a calibrated P(poisonous) above the cap, nor its range's top
    catalogue = get_catalogue("uci")
    answers = classify(uci_server, described(split_rows(workdir), catalogue))
    edible = [a for a in answers if a["verdict"] == EDIBLE]
    assert len(edible) >= 500
    assert max(max(a["probability_poisonous"], *a["probability_range"]) for a in edible) <= cap


def test_without_enough_held_out_evidence_nothing_is_edible_and_the_gate_says_so(
    uci_model, tmp_path
):
    """A gate rate that 3,1xx held-out poisonous mushrooms cannot support (0.0001 needs
    29,956 without an error): train leaves no edible region and says why, answers say
    no_edible_region, and the coverage floor fails the gate (promotion refuses such a
    model: tests/test_service.py)."""
    workdir = train_alone(
        uci_model.workdir, tmp_path, {"evaluate.gate.max_cv_false_edible_rate": 0.0001}
    )
    policy = json.loads((workdir / "models" / "policy.json").read_text())
    evidence = policy["held_out"]["edible_evidence"]
    assert not evidence["edible_region"] and policy["policy"]["edible_below"] == 0
    assert evidence["needed"] == 29956 and "29956 with no error would be needed" in evidence["why"]
    judge = bundle_of(workdir).judge()
    test = split_rows(workdir)
    judgement = judge.judge(*judge.index_frame(test))
    assert not (judgement.verdict == EDIBLE).any()
    for verdict, reasons in zip(judgement.verdict, judgement.reasons, strict=True):
        assert verdict != UNCERTAIN or "no_edible_region" in reasons
    metrics = json.loads((uci_model.workdir / "reports" / "metrics.json").read_text())
    metrics["test"] |= verdict_metrics(prepared.label(test), judgement)
    gate = check_gate(metrics, {}, load_params(workdir / "params.yaml"))
    assert failed_checks(gate) == ["test.coverage = 0 is below the minimum 0.5 by 0.5"]


# --- 5. useful partial answers ---------------------------------------------------------


def test_odor_foul_alone_is_poisonous_and_one_trait_says_what_to_check(uci_server):
    card = httpx.get(f"{uci_server.url}/model", timeout=10).json()
    foul, none = classify(uci_server, [{"odor": "foul"}, {"odor": "none"}])
    assert foul["verdict"] == POISONOUS and "odor=foul" in foul["reasons"]
    assert not foul["edible_possible"]
    assert foul["probability_range"][0] >= card["policy"]["poisonous_from"]
    assert none["verdict"] == UNCERTAIN and none["edible_possible"]
    assert none["check_next"] and len(none["unknown_traits"]) == 21
    assert {c["trait"] for c in none["check_next"]} == set(none["unknown_traits"])
    first = none["check_next"][0]
    assert first["could_make"] and set(first["values"]) == set(first["could_make"])
    # its first value for the first verdict it could make gives that verdict
    verdict = first["could_make"][0]
    value = first["values"][verdict][0]
    again = classify(uci_server, [{"odor": "none", first["trait"]: value}])[0]
    assert again["verdict"] == verdict


def _completions(frame_row: pd.Series, traits: list[Trait]) -> pd.DataFrame:
    values = [t.describable_values for t in traits]
    rows = [
        frame_row.to_dict() | dict(zip([t.name for t in traits], combo, strict=True))
        for combo in itertools.product(*values)
    ]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("model", ["logreg", "random_forest", "hist_gb", "naive_bayes"])
def test_partial_answers_hold_against_every_completion(uci_models, model):
    """Real test rows with one or two traits left out, every completion of them judged:
    - no completion lies above the range's top, no familiar one below its bottom (which,
      for additive models and one unknown trait, is the lowest familiar one exactly);
    - a poisonous answer: every familiar completion scores at least ``poisonous_from`` and
      none is edible; ``edible_possible`` false: no completion is edible;
    - ``check_next``: each value it lists gives the verdict it lists, every other value
      gives this answer's verdict."""
    workdir = uci_models[model]
    judge = bundle_of(workdir).judge()
    catalogue = get_catalogue("uci")
    names = catalogue.trait_names
    test = split_rows(workdir)[names].astype(object)
    rng = np.random.default_rng(5)
    whole = judge_frame(judge, test).verdict
    rows = (
        pd.concat(  # answered poisonous whole (naive Bayes: none), and the others
            [test[whole == POISONOUS].head(12), test[whole != POISONOUS].head(24)]
        )
        .head(24)
        .reset_index(drop=True)
    )
    seen_verdicts = set()
    for i, row in rows.iterrows():
        hidden = [catalogue.traits[k] for k in rng.choice(len(names), 1 + i % 2, replace=False)]
        partial = row.copy()
        partial[[t.name for t in hidden]] = None
        answer = judge.judge(*judge.index_frame(partial.to_frame().T), guidance=True)
        verdict, guide = answer.verdict[0], answer.guidance[0]
        seen_verdicts.add(verdict)
        completions = _completions(partial, hidden)
        judged = judge.judge(*judge.index_frame(completions), reasons=False)
        low, high = guide["probability_range"]
        assert (judged.probability <= high + 1e-9).all()
        familiar = judged.familiar
        if familiar.any():
            assert judged.probability[familiar].min() >= low - 1e-9
            if judge.scorer.tabled and len(hidden) == 1:
                assert judged.probability[familiar].min() == pytest.approx(low, abs=1e-9)
        if verdict == POISONOUS:
            assert (judged.probability[familiar] >= judge.policy.poisonous_from).all()
            assert not (judged.verdict == EDIBLE).any()
        if not guide["edible_possible"]:
            assert not (judged.verdict == EDIBLE).any()
        for entry in guide["check_next"]:
            trait = catalogue.trait(entry["trait"])
            for value in trait.describable_values:
                one = partial.copy()
                one[trait.name] = value
                got = judge.judge(*judge.index_frame(one.to_frame().T), reasons=False).verdict[0]
                listed = [v for v, values in entry["values"].items() if value in values]
                assert [got] == (listed or [verdict]), (entry, value)
    assert len(seen_verdicts) >= 2 or not (whole == POISONOUS).any()


# --- 6. species profiles real descriptions can fit -------------------------------------


def _field_guide() -> list[dict]:
    return json.loads(FIELD_GUIDE.read_text())["descriptions"]


def test_a_blank_in_a_species_profile_fits_what_a_field_guide_says(secondary_model):
    """A blank means the source did not describe the trait: any value fits it. Our own
    field-guide descriptions of documented species misfit their species in fewer traits
    than when a blank fitted only "not recorded" (the old rule), and never in a blank."""
    bundle = bundle_of(secondary_model.workdir)
    catalogue = get_catalogue("secondary")
    detector = Familiarity(bundle.familiarity, catalogue, bundle.features)
    judge = bundle.judge()
    guide = [d for d in _field_guide() if d["in_dataset"]]
    frame = pd.DataFrame([d["traits"] for d in guide], columns=bundle.features)
    index, numbers = judge.index_frame(frame)
    known = detector.distances(index, numbers)  # complete descriptions: known traits only
    new = old = 0
    for k, description in enumerate(guide):
        j = detector.species_names.index(description["name"])
        profile = detector.species[j]["traits"]
        blanks = [t for t in catalogue.categorical if profile[t.name] is None]
        assert blanks
        old_rule = known[k, j] + sum(description["traits"][t.name] != NOT_RECORDED for t in blanks)
        new, old = new + known[k, j], old + old_rule
        for c, trait in enumerate(detector.categorical):
            if profile[trait.name] is None:
                assert detector.tables[c][index[k, c], j] == 0
    assert new < old


def test_field_guide_poisonous_mushrooms_are_never_edible_however_described(
    secondary_server,
):
    """Our own field-guide descriptions (tests/field_guide/secondary.json), complete and
    with every trait a forager may not tell sent as "missing" (the issue: the green-spored
    parasol so described was answered edible as a Parasol Mushroom), then left out."""
    guide = _field_guide()
    poisonous = [d["traits"] for d in guide if d["class"] == "poisonous"]
    assert len(poisonous) >= 10 and any(d["latin"] == "Chlorophyllum molybdites" for d in guide)
    variants = list(poisonous)
    for traits in poisonous:
        unknown = {t: "missing" for t in FORAGER_CANNOT_TELL}
        variants += [traits | unknown, {k: v for k, v in traits.items() if k not in unknown}]
        variants += [traits | {t: "missing"} for t in FORAGER_CANNOT_TELL]
    answers = classify(secondary_server, variants)
    assert not any(a["verdict"] == EDIBLE for a in answers)


# --- 7. the safety suite and the gate ---------------------------------------------------


def test_the_safety_report_and_gate_hold_the_new_checks(uci_model):
    workdir = uci_model.workdir
    report = json.loads((workdir / "reports" / "safety.json").read_text())
    assert report["not_known"]["violations"] == 0
    assert report["not_known"]["spellings"] == sorted(NOT_KNOWN)
    assert report["not_known"]["descriptions"] >= 1000 * len(NOT_KNOWN)
    assert report["unseen"]["descriptions"] >= 1000 and report["unseen"]["edible"] == 0
    gate = json.loads((workdir / "reports" / "gate.json").read_text())
    metrics = {c["metric"] for c in gate["checks"]}
    assert {
        "safety.misread.edible",
        "safety.not_known.violations",
        "safety.unseen.edible",
        "test.coverage",
    } <= metrics


def _gate_of(judge: Judge, workdir: Path) -> dict:
    catalogue = get_catalogue("uci")
    train = pd.read_parquet(workdir / "prepared" / prepared.TRAIN_FILE)
    report = safety.suite(judge, catalogue, train, split_rows(workdir), seed=0)
    metrics = json.loads((workdir / "reports" / "metrics.json").read_text())
    return check_gate(metrics, safety.edible_counts(report), load_params(workdir / "params.yaml"))


def test_the_gate_refuses_a_model_crafted_to_fail_each_new_check(uci_model, monkeypatch):
    workdir = uci_model.workdir
    bundle = bundle_of(workdir)
    assert _gate_of(bundle.judge(), workdir)["passed"]

    no_margin = copy.deepcopy(bundle)
    no_margin.familiarity["lookalike_traits"] = 0
    failed = failed_checks(_gate_of(no_margin.judge(), workdir))
    assert [f for f in failed if f.startswith("safety.misread.edible = ")], failed

    # a universal veil taken for one seen with every other value: the detector, and the
    # training shares, then let it through
    sees_universal = copy.deepcopy(bundle)
    seen = sees_universal.familiarity["seen"]
    for key, pairs in seen.items():
        first, second = key.split("|")
        if "veil_type" in (first, second):
            values = {tuple(p) for p in pairs}
            for a, b in list(values):
                swapped = ("universal", b) if first == "veil_type" else (a, "universal")
                values.add(swapped)
            seen[key] = [list(p) for p in sorted(values)]
    sees_universal.training["shares"]["veil_type"]["universal"] = 0.5
    failed = failed_checks(_gate_of(sees_universal.judge(), workdir))
    assert [f for f in failed if f.startswith("safety.unseen.edible = ")], failed

    # "missing" read as the data's "not recorded" again: the loophole the issue found
    reading = Trait.read_value

    def missing_is_a_value(self, text):
        if text.strip().lower() == "missing":
            return NOT_RECORDED
        return reading(self, text)

    monkeypatch.setattr(Trait, "read_value", missing_is_a_value)
    failed = failed_checks(_gate_of(bundle.judge(), workdir))
    assert [f for f in failed if f.startswith("safety.not_known.violations = ")], failed


@pytest.mark.parametrize("change", ["no margin", "a trait dropped"])
def test_a_model_trained_before_the_evidence_rule_is_refused(uci_model, tmp_path, change):
    """A policy without a lookalike margin, or whose model dropped a constant trait, would
    be judged half-way: loading it fails naming the file and what to do."""
    policy = json.loads((uci_model.workdir / "models" / "policy.json").read_text())
    if change == "no margin":
        del policy["familiarity"]["lookalike_traits"]
    else:
        policy["features"].remove("veil_type")
    outdated = tmp_path / "policy.json"
    outdated.write_text(json.dumps(policy))
    with pytest.raises(OutdatedBundle, match="train it again .dvc repro. and promote"):
        load_bundle(uci_model.workdir / "models" / "model.joblib", outdated)


def test_one_request_counts_the_lookalike_distance_as_a_batch_does(uci_model):
    """A few rows are counted directly, many with bitsets: the same distance either way,
    to every cap, with traits unknown or not."""
    workdir = uci_model.workdir
    judge = bundle_of(workdir).judge()
    familiarity = judge.familiarity
    test = split_rows(workdir)
    index, _ = judge.index_frame(test[get_catalogue("uci").trait_names].head(400))
    rng = np.random.default_rng(0)
    hidden = rng.random(index.shape) < 0.3
    partial = np.where(hidden, np.array(familiarity.sizes)[None, :], index)
    assert len(index) > COUNTED_DIRECTLY
    within = set()
    for cap in range(4):
        for rows in (index, partial):
            batch = familiarity._row_distance(rows, cap)
            within |= set(batch[batch <= cap].tolist())
            one_by_one = [familiarity._row_distance(rows[i : i + 1], cap)[0] for i in range(400)]
            assert batch.tolist() == one_by_one
    assert within == {0, 1, 2, 3}  # every distance met, not only "beyond the cap"
