"""Building encoders and models from params.yaml, and the metrics every stage reports."""

from __future__ import annotations

from typing import Any

import category_encoders as ce
import numpy as np
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)
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


def classification_metrics(
    y_true: np.ndarray, p_poisonous: np.ndarray, threshold: float
) -> dict[str, float | int]:
    """Metrics with poisonous as the positive class; ``false_edible`` is the deadly error."""
    y_pred = (p_poisonous >= threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()
    n_poisonous = int(tp + fn)
    both_classes = len(np.unique(y_true)) == 2
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "precision_poisonous": float(precision_score(y_true, y_pred, zero_division=0)),
        "recall_poisonous": float(recall_score(y_true, y_pred, zero_division=0)),
        "f1_poisonous": float(f1_score(y_true, y_pred, zero_division=0)),
        "roc_auc": float(roc_auc_score(y_true, p_poisonous)) if both_classes else float("nan"),
        "pr_auc": float(average_precision_score(y_true, p_poisonous)),
        "brier": float(brier_score_loss(y_true, p_poisonous, labels=[0, 1])),
        "false_edible": int(fn),
        "false_edible_rate": float(fn / n_poisonous) if n_poisonous else 0.0,
        "false_poisonous": int(fp),
    }


def check_gate(metrics: dict, params: dict) -> dict:
    checks = []
    for metric, limit_key in (
        ("false_edible", "max_false_edible"),
        ("false_edible_rate", "max_false_edible_rate"),
    ):
        limit = get(params, f"evaluate.gate.{limit_key}")
        checks.append(
            {
                "metric": metric,
                "value": metrics[metric],
                "limit": limit,
                "passed": metrics[metric] <= limit,
                "excess": max(0, metrics[metric] - limit),
            }
        )
    return {
        "passed": all(c["passed"] for c in checks),
        "threshold": get(params, "evaluate.threshold"),
        "checks": checks,
    }
