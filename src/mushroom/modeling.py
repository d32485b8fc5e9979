"""Building encoders and models from params.yaml."""

from __future__ import annotations

from typing import Any

import category_encoders as ce
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mushroom.params import choice, get

ENCODERS = {
    "onehot": lambda cols, p: ce.OneHotEncoder(
        cols=cols, use_cat_names=True, handle_unknown="value", handle_missing="value"
    ),
    "ordinal": lambda cols, p: ce.OrdinalEncoder(
        cols=cols, handle_unknown="value", handle_missing="value"
    ),
    "target": lambda cols, p: ce.TargetEncoder(
        cols=cols,
        handle_unknown="value",
        handle_missing="value",
        smoothing=float(p["target_smoothing"]),
    ),
    "count": lambda cols, p: ce.CountEncoder(
        cols=cols, handle_unknown="value", handle_missing="value", normalize=True
    ),
}

MODELS: dict[str, type[BaseEstimator]] = {
    "logreg": LogisticRegression,
    "random_forest": RandomForestClassifier,
    "hist_gb": HistGradientBoostingClassifier,
    "naive_bayes": GaussianNB,
}
SEEDED = {"logreg", "random_forest", "hist_gb"}


def build_featurizer(params: dict[str, Any], categorical: list[str]) -> Pipeline:
    """category_encoders encoder, then median imputation (a measurement left out at serving
    time arrives as NaN) and scaling (count/target codes and cm/mm live on other scales)."""
    name = choice(params, "featurize.encoder", ENCODERS)
    return Pipeline(
        [
            ("encode", ENCODERS[name](categorical, params["featurize"])),
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("scale", StandardScaler()),
        ]
    ).set_output(transform="pandas")


def model_name(params: dict[str, Any]) -> str:
    return choice(params, "train.model", MODELS)


def build_model(params: dict[str, Any], overrides: dict[str, Any] | None = None) -> BaseEstimator:
    name = model_name(params)
    hyper = dict(get(params, f"train.{name}") or {}) | (overrides or {})
    if name in SEEDED:
        hyper.setdefault("random_state", get(params, "train.seed"))
    try:
        return MODELS[name](**hyper)
    except TypeError as exc:
        raise ValueError(f"params.yaml: train.{name}: {exc}") from None
