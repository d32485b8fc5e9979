"""The fast request-time path gives the fitted pipeline's probabilities, on every row of
both real datasets, for every encoder and every model."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.pipeline import Pipeline

import rawfixtures
from mushroom import dataset
from mushroom.catalogue import get_catalogue
from mushroom.modeling import build_featurizer, build_model
from mushroom.params import load_params
from mushroom.rawdata import read_raw
from mushroom.scoring import FastScorer
from mushroom.stages.prepare import drop_constant

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
    frame, _ = drop_constant(frames[name], catalogue.trait_names)
    features = [t for t in catalogue.trait_names if t in frame]
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
    pipeline.fit(train[features], dataset.label(train))

    scorer = FastScorer(pipeline, features, catalogue)
    index, numbers = scorer.index_frame(frame)
    fast = scorer.predict_proba(index, numbers)
    slow = pipeline.predict_proba(frame[features])[:, 1]
    assert len(fast) == len(frames[name])
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-9)
    assert scorer.linear == (model == "logreg")


def test_missing_measurement_is_imputed_like_the_pipeline(frames, tmp_path):
    catalogue = get_catalogue("secondary")
    frame = frames["secondary"].sample(2000, random_state=1).reset_index(drop=True)
    features = catalogue.trait_names
    params = load_params(rawfixtures.write_params(tmp_path / "params.yaml"))
    categorical = [t.name for t in catalogue.categorical]
    pipeline = Pipeline(
        [("features", build_featurizer(params, categorical)), ("model", build_model(params))]
    )
    pipeline.fit(frame[features], dataset.label(frame))
    holes = frame.copy()
    holes.loc[::3, "cap_diameter"] = np.nan  # a measurement the user left out
    scorer = FastScorer(pipeline, features, catalogue)
    fast = scorer.predict_proba(*scorer.index_frame(holes))
    np.testing.assert_allclose(fast, pipeline.predict_proba(holes[features])[:, 1], atol=1e-9)


def test_the_classifier_answers_like_the_pipeline_however_values_are_spelled(
    frames, uci_model, bentoml_home
):
    """Readable names, code letters in either case and odd spellings give one answer; the
    logged traits are the readable names; request ids are unique and grow with time."""
    import joblib

    from mushroom.classifier import Classifier

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
        "odd case": [{k: f" {v.title()} " for k, v in r.items() if v != "missing"} for r in names],
    }
    results = {
        how: classifier.classify([classifier.mushroom(r) for r in rows])
        for how, rows in spelled.items()
    }
    expected = joblib.load(model_dir / "model.joblib").predict_proba(rows[classifier.features])[
        :, 1
    ]
    for answers, values in results.values():
        fast = [a["probability_poisonous"] for a in answers]
        np.testing.assert_allclose(fast, expected, rtol=0, atol=1e-9)
        assert [list(row) for row in zip(*values, strict=True)] == [list(r.values()) for r in names]
        for answer, row in zip(answers, names, strict=True):
            gone = [f for f in classifier.features if row[f] == "missing"]
            assert answer["missing_traits"] == gone
    verdicts = [[a["verdict"] for a in answers] for answers, _ in results.values()]
    assert verdicts[0] == verdicts[1] == verdicts[2]
    ids = [a["request_id"] for answers, _ in results.values() for a in answers]
    assert len(set(ids)) == len(ids) and ids == sorted(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
