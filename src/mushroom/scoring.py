"""The request-time scoring path, derived from the fitted pipeline when the model loads.

The sklearn Pipeline (category_encoders encoder → imputer → scaler → model) stays the
single source of truth. Every encoder we use maps each trait's value independently of the
other traits, so the encoded row is a fixed base row plus one per-trait delta looked up by
value index. ``FastScorer`` precomputes those deltas by running the fitted encoder once
per allowed value, then scores with numpy only: no DataFrame, no category_encoders per
request. For logistic regression the whole model folds into per-value logit tables.
``tests/test_scoring.py`` checks it against ``pipeline.predict_proba`` on every row of
both datasets.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from mushroom.catalogue import DatasetCatalogue


class FastScorer:
    def __init__(self, pipeline: Pipeline, features: list[str], catalogue: DatasetCatalogue):
        featurizer = pipeline.named_steps["features"]
        # The model was fitted on a named frame; it will see arrays in the same column
        # order, so a copy without the names skips sklearn's per-call name check.
        self.model = copy.copy(pipeline.named_steps["model"])
        if hasattr(self.model, "feature_names_in_"):
            del self.model.feature_names_in_
        encoder = featurizer.named_steps["encode"]
        imputer, scaler = featurizer.named_steps["impute"], featurizer.named_steps["scale"]
        traits = [catalogue.trait(f) for f in features]
        self.categorical = [t for t in traits if not t.is_numeric]
        self.numeric = [t for t in traits if t.is_numeric]
        self.values = {t.name: list(t.allowed_values) for t in self.categorical}
        """Value index i of trait t means ``self.values[t][i]``: what callers encode rows by."""

        base = {t.name: self.values[t.name][0] for t in self.categorical}
        base |= {t.name: 0.0 for t in self.numeric}
        base_row = self._encode(encoder, features, [base])[0]
        self.deltas = []  # per categorical trait: (n_values, n_columns) change from base
        for trait in self.categorical:
            probes = [base | {trait.name: value} for value in self.values[trait.name]]
            self.deltas.append(self._encode(encoder, features, probes) - base_row)
        columns = list(encoder.get_feature_names_out())
        self.numeric_columns = [columns.index(t.name) for t in self.numeric]
        base_row[self.numeric_columns] = 0.0  # numeric values are added in, not looked up
        self.base_row = base_row
        self.medians = imputer.statistics_[self.numeric_columns]
        self.mean, self.scale = scaler.mean_, scaler.scale_

        self.linear = isinstance(self.model, LogisticRegression)
        if self.linear:
            weights = self.model.coef_[0] / self.scale
            self.intercept = float(self.model.intercept_[0] + weights @ (base_row - self.mean))
            self.logit_tables = [delta @ weights for delta in self.deltas]
            self.numeric_weights = weights[self.numeric_columns]

    @staticmethod
    def _encode(encoder, features: list[str], rows: list[dict]) -> np.ndarray:
        return encoder.transform(pd.DataFrame(rows, columns=features)).to_numpy(dtype=float)

    def predict_proba(self, value_index: np.ndarray, numbers: np.ndarray) -> np.ndarray:
        """P(poisonous) for rows given as value indices (n, categorical traits, int) and
        measurements (n, numeric traits, float, NaN = missing)."""
        numbers = np.where(np.isnan(numbers), self.medians, numbers)
        if self.linear:
            logit = self.intercept + numbers @ self.numeric_weights
            for column, table in enumerate(self.logit_tables):
                logit = logit + table[value_index[:, column]]
            return expit(logit)
        encoded = np.repeat(self.base_row[None, :], len(value_index), axis=0)
        for column, delta in enumerate(self.deltas):
            encoded += delta[value_index[:, column]]
        encoded[:, self.numeric_columns] = numbers
        return self.model.predict_proba((encoded - self.mean) / self.scale)[:, 1]

    def index_frame(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Value indices and measurements of a prepared (readable-name) frame."""
        index = (
            np.column_stack(
                [
                    frame[t.name].map({v: i for i, v in enumerate(self.values[t.name])}).to_numpy()
                    for t in self.categorical
                ]
            )
            if self.categorical
            else np.zeros((len(frame), 0), dtype=int)
        )
        numbers = frame[[t.name for t in self.numeric]].to_numpy(dtype=float)
        return index.astype(int), numbers


def verdicts(p: np.ndarray, policy: dict) -> np.ndarray:
    """The verdict for each P(poisonous) under a serving policy (``promote.serving_policy``):
    edible below ``edible_below``, poisonous from ``poisonous_from``, uncertain between."""
    return np.where(
        p < policy["edible_below"],
        "edible",
        np.where(p >= policy["poisonous_from"], "poisonous", "uncertain"),
    )
