"""The fast request-time path gives the fitted pipeline's probabilities, on every row of
both real datasets, for every encoder and every model; its worst cases over unknown traits
are never below what any value of them gives, and exact for additive models."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit
from sklearn.pipeline import Pipeline

import rawfixtures
from mushroom.core.catalogue import NOT_RECORDED, get_catalogue
from mushroom.core.params import load_params
from mushroom.data import prepared
from mushroom.data.raw import read_raw
from mushroom.model.estimators import build_featurizer, build_model
from mushroom.model.familiarity import Completions
from mushroom.model.scorer import FastScorer, describe_training

COMBINATIONS = [("logreg", encoder) for encoder in ("onehot", "ordinal", "target", "count")] + [
    (model, "onehot") for model in ("random_forest", "hist_gb", "naive_bayes")
]
TRAIN_ROWS = 3000  # the fit is not under test; every row is scored


@pytest.fixture(scope="module")
def frames(pulled_repo):
    return {name: read_raw(name, pulled_repo / "data" / "raw") for name in ("uci", "secondary")}


@pytest.mark.parametrize("name", ["uci", "secondary"])
@pytest.mark.parametrize(("model", "encoder"), COMBINATIONS)
def test_fast_path_equals_pipeline_on_every_row(frames, tmp_path, name, model, encoder):
    catalogue = get_catalogue(name)
    frame, features = frames[name], catalogue.trait_names
    params = load_params(
        rawfixtures.write_params(
            tmp_path / "params.yaml",
            featurize__encoder=encoder,
            train__model=model,
            train__random_forest__n_estimators=30,
        )
    )
    train = frame.sample(TRAIN_ROWS, random_state=0)
    categorical = [f for f in features if not catalogue.trait(f).is_numeric]
    pipeline = Pipeline(
        [("features", build_featurizer(params, categorical)), ("model", build_model(params))]
    )
    pipeline.fit(train[features], prepared.label(train))

    scorer = FastScorer(
        pipeline, features, catalogue, describe_training(train, features, catalogue)
    )
    index, numbers = scorer.index_frame(frame)
    fast = expit(scorer.logit(index, numbers))
    slow = pipeline.predict_proba(frame[features])[:, 1]
    assert len(fast) == len(frames[name])
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-9)
    assert scorer.additive == (model in ("logreg", "naive_bayes"))


def test_missing_measurement_is_imputed_like_the_pipeline(frames, tmp_path):
    catalogue = get_catalogue("secondary")
    frame = frames["secondary"].sample(2000, random_state=1).reset_index(drop=True)
    features = catalogue.trait_names
    params = load_params(rawfixtures.write_params(tmp_path / "params.yaml"))
    categorical = [t.name for t in catalogue.categorical]
    pipeline = Pipeline(
        [("features", build_featurizer(params, categorical)), ("model", build_model(params))]
    )
    pipeline.fit(frame[features], prepared.label(frame))
    holes = frame.copy()
    holes.loc[::3, "cap_diameter"] = np.nan  # a measurement the user left out
    scorer = FastScorer(
        pipeline, features, catalogue, describe_training(frame, features, catalogue)
    )
    fast = expit(scorer.logit(*scorer.index_frame(holes)))
    np.testing.assert_allclose(fast, pipeline.predict_proba(holes[features])[:, 1], atol=1e-9)


def test_the_classifier_answers_like_the_pipeline_however_values_are_spelled(
    frames, uci_model, bentoml_home
):
    """Readable names, code letters in either case and odd spellings give one answer (the
    pipeline's probability, calibrated as the policy says: a trait not known is scored as the
    data's "not recorded", which a person cannot give: the raw "?", its readable name and
    every spelling of "I don't know" are unknown); the logged traits are the readable names,
    None where unknown; request ids are unique and grow with time."""
    from mushroom.model.bundle import load_bundle
    from mushroom.serving.classifier import Classifier

    model_dir = bentoml_home / "models" / "mushroom-classifier" / uci_model.tag.split(":")[1]
    classifier = Classifier(model_dir)
    rows = frames["uci"].sample(500, random_state=3)
    traits = get_catalogue("uci").traits
    names = rows[[t.name for t in traits]].to_dict(orient="records")
    code_of = {t.name: {name: code for code, name in t.codes.items()} for t in traits}
    spelled = {
        "names": names,
        "codes": [
            {t.column: code_of[t.name].get(r[t.name], "?").upper() for t in traits} for r in names
        ],
        "odd case": [{k: f" {v.title()} " for k, v in r.items()} for r in names],
    }
    results = {
        how: classifier.classify([classifier.mushroom(r) for r in rows])
        for how, rows in spelled.items()
    }
    bundle = load_bundle(model_dir / "model.joblib", model_dir / "policy.json")
    raw = bundle.pipeline.predict_proba(rows[classifier.features])[:, 1]
    expected = bundle.policy.calibrated(np.log(raw) - np.log1p(-raw))
    for answers, values in results.values():
        fast = [a["probability_poisonous"] for a in answers]
        np.testing.assert_allclose(fast, expected, rtol=0, atol=1e-9)
        logged = [[None if v == NOT_RECORDED else v for v in r.values()] for r in names]
        assert [list(row) for row in zip(*values, strict=True)] == logged
        unknown = [[t for t, v in r.items() if v == NOT_RECORDED] for r in names]
        assert [answer["unknown_traits"] for answer in answers] == unknown
    for key in ("verdict", "reasons"):
        kinds = [[a[key] for a in answers] for answers, _ in results.values()]
        assert kinds[0] == kinds[1] == kinds[2]
    ids = [a["request_id"] for answers, _ in results.values() for a in answers]
    assert len(set(ids)) == len(ids) and ids == sorted(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def _scorer(frames, tmp_path, name, model, rows=1500, seed=0):
    catalogue = get_catalogue(name)
    frame, features = frames[name], catalogue.trait_names
    params = load_params(
        rawfixtures.write_params(
            tmp_path / "params.yaml", train__model=model, train__random_forest__n_estimators=20
        )
    )
    train = frame.sample(rows, random_state=seed)
    categorical = [f for f in features if not catalogue.trait(f).is_numeric]
    pipeline = Pipeline(
        [("features", build_featurizer(params, categorical)), ("model", build_model(params))]
    )
    pipeline.fit(train[features], prepared.label(train))
    training = describe_training(train, features, catalogue)
    return FastScorer(pipeline, features, catalogue, training), frame


@pytest.mark.parametrize("name", ["uci", "secondary"])
@pytest.mark.parametrize("model", ["logreg", "naive_bayes", "random_forest", "hist_gb"])
def test_the_worst_and_best_cases_over_unknown_traits_bound_every_value_they_may_take(
    frames, tmp_path, name, model
):
    """Two traits made unknown (secondary: one a measurement): every combination of their
    values, measurements on a grid of the training range, scores at most the worst case and
    at least the lowest (the best case); logistic regression reaches both exactly; a known
    trait's worst case is its own score."""
    scorer, frame = _scorer(frames, tmp_path, name, model)
    index, numbers = scorer.index_frame(frame.sample(25, random_state=1))
    rng = np.random.default_rng(0)
    n_categorical = index.shape[1]
    known_worst, known = scorer.worst_logit(index, numbers), scorer.logit(index, numbers)
    assert (known_worst >= known - 1e-9).all()
    if model != "naive_bayes":  # whose bound adds what summing 1e12-sized terms may lose
        np.testing.assert_allclose(known_worst, known, rtol=0, atol=1e-6)
    for row in range(len(index)):
        a, b = rng.choice(n_categorical, 2, replace=False)
        unknown_index, unknown_numbers = index[row : row + 1].copy(), numbers[row : row + 1].copy()
        unknown_index[0, [a, b]] = scorer.unknown_index[[a, b]]
        grid = [unknown_numbers[0]]
        if scorer.numeric:
            unknown_numbers[0, 0] = np.nan
            low, high = scorer.domain[0]
            grid = [np.r_[x, numbers[row, 1:]] for x in np.linspace(low, high, 30)]
        candidates_index = np.array(
            [np.r_[index[row, :a], i, index[row, a + 1 :]] for i in range(scorer.unknown_index[a])]
        )
        combos, measures = [], []
        for first in candidates_index:
            for j in range(scorer.unknown_index[b]):
                for x in grid:
                    combo = first.copy()
                    combo[b] = j
                    combos.append(combo)
                    measures.append(x)
        scores = scorer.logit(np.array(combos), np.array(measures))
        bound = scorer.worst_logit(unknown_index, unknown_numbers)[0]
        assert bound >= scores.max() - 1e-9
        if scorer.tabled:  # logistic regression: exact (a measurement peaks at an end)
            assert bound == pytest.approx(scores.max(), abs=1e-6)
        # the lowest over the same values, given as a mask and an interval
        mask = np.zeros((1, sum(scorer.unknown_index)), bool)
        offsets = np.r_[0, np.cumsum(scorer.unknown_index)[:-1]]
        mask[0, offsets + np.where(np.isin(np.arange(n_categorical), [a, b]), 0, index[row])] = True
        for trait in (a, b):
            mask[0, offsets[trait] : offsets[trait] + scorer.unknown_index[trait]] = True
        low, high = unknown_numbers.copy(), unknown_numbers.copy()
        if scorer.numeric:
            low[0, 0], high[0, 0] = scorer.domain[0]
        cost = np.where(mask, 0, Completions.NEVER)
        lowest = scorer.lowest_logit(Completions(cost, np.zeros(1, int), low, high))[0]
        assert lowest <= scores.min() + 1e-9
        if scorer.tabled:
            assert lowest == pytest.approx(scores.min(), abs=1e-6)


@pytest.mark.parametrize("model", ["logreg", "naive_bayes", "random_forest", "hist_gb"])
def test_attributions_add_up_to_the_answer(frames, tmp_path, model):
    """Each trait's push, summed with the average mushroom's score, gives the row's score:
    log-odds for additive models and boosting, P(poisonous) for forests."""
    scorer, frame = _scorer(frames, tmp_path, "secondary", model)
    index, numbers = scorer.index_frame(frame.sample(200, random_state=2))
    pushes = scorer.attributions(index, numbers)
    assert pushes.shape == (200, len(scorer.categorical) + len(scorer.numeric))
    if model == "random_forest":
        total, base = expit(scorer.logit(index, numbers)), scorer.trees.bias
    elif model == "hist_gb":
        total = scorer.logit(index, numbers)
        base = scorer.trees.bias + scorer.trees.constant
    else:
        total = scorer.logit(index, numbers)
        base = scorer.intercept + sum(scorer.expected) + scorer.expected_numeric.sum()
    if model == "naive_bayes":  # its terms reach 1e12 and cancel: compare where unclipped
        keep = np.abs(total) < 25
        total, pushes = total[keep], pushes[keep]
    np.testing.assert_allclose(pushes.sum(axis=1) + base, total, rtol=1e-6, atol=1e-6)
