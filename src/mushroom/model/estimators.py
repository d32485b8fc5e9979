"""Building encoders and models from params.yaml."""

from __future__ import annotations

import category_encoders as ce
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mushroom.core.params import Params

ENCODERS = {  # (categorical columns, params.featurize) -> encoder
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
        smoothing=p.target_smoothing,
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


def build_featurizer(params: Params, categorical: list[str]) -> Pipeline:
    """category_encoders encoder, then median imputation (a measurement left out at serving
    time arrives as NaN) and scaling (count/target codes and cm/mm live on other scales)."""
    return Pipeline(
        [
            ("encode", ENCODERS[params.featurize.encoder](categorical, params.featurize)),
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("scale", StandardScaler()),
        ]
    ).set_output(transform="pandas")


def build_model(params: Params) -> BaseEstimator:
    """``train.model`` with its hyperparameters (``train.<model>``), seeded by ``train.seed``."""
    name, hyperparameters = params.train.model, params.train.hyperparameters()
    if name in SEEDED:
        hyperparameters["random_state"] = params.train.seed
    return MODELS[name](**hyperparameters)
