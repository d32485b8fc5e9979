"""The request-time scoring path, derived from the fitted pipeline when the model loads.

The sklearn Pipeline (category_encoders encoder → imputer → scaler → model) stays the
single source of truth. Every encoder we use maps each trait's value independently of the
other traits, so the encoded row is a fixed base row plus one per-trait delta looked up by
value index. ``FastScorer`` precomputes those deltas by running the fitted encoder once
per allowed value, then scores with numpy only: no DataFrame, no category_encoders per
request. ``tests/test_scoring.py`` checks it against ``pipeline.predict_proba`` on every
row of both datasets.

A trait the description leaves out is *unknown*. The model scores it as ``not_recorded``
(the data's own "the source did not record it"), and three figures say what it could do:
``worst_logit``, the highest log-odds over every value the unknown traits may take,
``lowest_logit``, the lowest over the values a mask allows, and ``attributions``, how
much each known trait pushed the answer. Logistic regression and
naive Bayes add one term per trait to the log-odds, so both are exact from per-value
tables; tree ensembles are bounded leaf by leaf (``mushroom.model.tree_bounds``).
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import Pipeline

from mushroom.core.catalogue import NOT_RECORDED, DatasetCatalogue, value_indices
from mushroom.model.tree_bounds import TreeBound

MAX_LOGIT = 30.0
"""Log-odds are clipped here: a forest's leaves say P = 0 or 1, which have none."""


def describe_training(frame: pd.DataFrame, features: list[str], catalogue) -> dict:
    """What the training descriptions looked like, for scoring: each categorical value's
    share, and each measurement's range and moments (its range is the domain an unknown
    measurement is assumed to lie in)."""
    shares, measurements = {}, {}
    for name in features:
        trait = catalogue.trait(name)
        column = frame[name]
        if trait.is_numeric:
            values = column.dropna().to_numpy(dtype=float)
            measurements[name] = {
                "min": float(values.min()),
                "max": float(values.max()),
                "mean": float(values.mean()),
                "mean_square": float((values**2).mean()),
            }
        else:
            counts = column.value_counts(normalize=True)
            shares[name] = {v: float(counts.get(v, 0.0)) for v in trait.allowed_values}
    return {"shares": shares, "measurements": measurements}


def _log_odds(model, x: np.ndarray) -> np.ndarray:
    """The model's own log-odds (naive Bayes: from its joint log-likelihoods)."""
    if not isinstance(model, GaussianNB):
        return model.decision_function(x)
    joint = model.predict_joint_log_proba(x)
    return joint[:, 1] - joint[:, 0]


class FastScorer:
    def __init__(
        self,
        pipeline: Pipeline,
        features: list[str],
        catalogue: DatasetCatalogue,
        training: dict,
    ):
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
        """Value index i of trait t means ``self.values[t][i]``; ``len(self.values[t])``
        means unknown. Callers encode rows by these indices."""
        self.not_recorded_index = np.array(
            [self.values[t.name].index(NOT_RECORDED) for t in self.categorical]
        )
        self.unknown_index = np.array([len(self.values[t.name]) for t in self.categorical])

        base = {t.name: self.values[t.name][0] for t in self.categorical}
        base |= {t.name: 0.0 for t in self.numeric}
        probes = [base] + [
            base | {t.name: value} for t in self.categorical for value in self.values[t.name]
        ]
        encoded = self._encode(encoder, features, probes)  # one call: each costs ~25 ms
        base_row = encoded[0]
        ends = np.cumsum([1] + [len(self.values[t.name]) for t in self.categorical])
        # per categorical trait: (n_values, n_columns) change from base
        self.deltas = [
            encoded[start:end] - base_row for start, end in zip(ends[:-1], ends[1:], strict=True)
        ]
        columns = list(encoder.get_feature_names_out())
        self.numeric_columns = [columns.index(t.name) for t in self.numeric]
        base_row[self.numeric_columns] = 0.0  # numeric values are added in, not looked up
        self.base_row = base_row
        self.medians = imputer.statistics_[self.numeric_columns]
        self.mean, self.scale = scaler.mean_, scaler.scale_
        owned = [np.flatnonzero((delta != 0).any(axis=0)) for delta in self.deltas]
        self.scaled_tables = [
            (columns, self._scaled(base_row + delta)[:, columns])
            for columns, delta in zip(owned, self.deltas, strict=True)
        ]
        measured = [training["measurements"][t.name] for t in self.numeric]
        self.domain = np.array([[m["min"], m["max"]] for m in measured]).reshape(-1, 2)

        self.additive = isinstance(self.model, LogisticRegression | GaussianNB)
        # Naive Bayes' terms can reach 1e12 on one-hot columns of near-zero variance and
        # cancel: its own answer is computed the model's way, its tables only bound it.
        self.tabled = isinstance(self.model, LogisticRegression)
        if self.additive:
            self._fold_into_tables(training, measured)
        else:
            self._bound_trees()

    @staticmethod
    def _encode(encoder, features: list[str], rows: list[dict]) -> np.ndarray:
        return encoder.transform(pd.DataFrame(rows, columns=features)).to_numpy(dtype=float)

    def _scaled(self, encoded: np.ndarray) -> np.ndarray:
        return (encoded - self.mean) / self.scale

    def _fold_into_tables(self, training: dict, measured: list[dict]) -> None:
        """log-odds = intercept + one table entry per categorical value + a quadratic in
        each measurement (linear for logistic regression), read off probe rows."""
        self.intercept = float(_log_odds(self.model, self._scaled(self.base_row[None, :]))[0])
        self.tables = [
            _log_odds(self.model, self._scaled(self.base_row + delta)) - self.intercept
            for delta in self.deltas
        ]
        self.polynomials = []  # (c1, c2) per measurement: c1 x + c2 x²
        for column in self.numeric_columns:
            probes = np.repeat(self.base_row[None, :], 3, axis=0)
            probes[:, column] = [0.0, 1.0, 2.0]
            f0, f1, f2 = _log_odds(self.model, self._scaled(probes))
            c2 = (f2 - 2 * f1 + f0) / 2
            self.polynomials.append((f1 - f0 - c2, c2))
        self.polynomials = np.array(self.polynomials).reshape(-1, 2)
        # A trait's push is measured from the training mushrooms' average term.
        self.expected = [
            sum(training["shares"][t.name][v] * table[i] for i, v in enumerate(self.values[t.name]))
            for t, table in zip(self.categorical, self.tables, strict=True)
        ]
        moments = np.array([[m["mean"], m["mean_square"]] for m in measured]).reshape(-1, 2)
        self.expected_numeric = (self.polynomials * moments).sum(axis=1)
        # All traits' tables end to end, each followed by its worst value (the unknown
        # slot): one gather per row scores every trait. The pushes table likewise.
        self.flat = np.concatenate([np.append(t, t.max()) for t in self.tables])
        self.flat_pushes = np.concatenate(
            [np.append(t - e, 0.0) for t, e in zip(self.tables, self.expected, strict=True)]
        )
        self.offsets = np.cumsum([0] + [len(t) + 1 for t in self.tables])[:-1].astype(np.intp)
        # The same tables without the unknown slot, for bounds over a mask of values
        self.flat_values = np.concatenate(self.tables) if self.tables else np.zeros(0)
        self.value_offsets = np.cumsum([0] + [len(t) for t in self.tables])[:-1].astype(np.intp)
        low, high = self.domain[:, 0], self.domain[:, 1]
        c1, c2 = self.polynomials[:, 0], self.polynomials[:, 1]
        candidates = [self._poly(low), self._poly(high)]
        vertex = np.divide(-c1, 2 * c2, out=np.full_like(c1, np.nan), where=c2 < 0)
        inside = (vertex > low) & (vertex < high)
        candidates.append(np.where(inside, self._poly(np.where(inside, vertex, low)), -np.inf))
        self.worst_numeric = np.max(candidates, axis=0)
        # what summing the terms in floating point may lose, so that the bound stays one
        magnitude = abs(self.intercept) + sum(np.abs(t).max() for t in self.tables)
        magnitude += np.abs(candidates[:2]).max(axis=0).sum() if len(measured) else 0.0
        self.rounding = 4 * (len(self.tables) + len(measured) + 1) * np.finfo(float).eps * magnitude

    def _poly(self, x: np.ndarray) -> np.ndarray:
        return self.polynomials[:, 0] * x + self.polynomials[:, 1] * x**2

    def _bound_trees(self) -> None:
        n_categorical = len(self.categorical)
        owner = np.full(len(self.base_row), -1)
        for t, delta in enumerate(self.deltas):
            owner[np.flatnonzero((delta != 0).any(axis=0))] = t
        for k, column in enumerate(self.numeric_columns):
            owner[column] = n_categorical + k
        columns = self.numeric_columns
        self.trees = TreeBound(
            self.model,
            [self._scaled(self.base_row + delta) for delta in self.deltas],
            self._scaled(self.base_row),
            owner,
            (self.domain - self.mean[columns, None]) / self.scale[columns, None],
        )

    def unknown(self, value_index: np.ndarray, numbers: np.ndarray) -> np.ndarray:
        """Rows × traits (categorical, then measurements): which were not given."""
        return np.concatenate([value_index >= self.unknown_index, np.isnan(numbers)], axis=1)

    def point(self, value_index: np.ndarray, numbers: np.ndarray):
        """Unknown traits as the model scores them: ``not_recorded``, and the median."""
        index = np.where(value_index >= self.unknown_index, self.not_recorded_index, value_index)
        return index, np.where(np.isnan(numbers), self.medians, numbers)

    def _scaled_numbers(self, numbers: np.ndarray) -> np.ndarray:
        columns = self.numeric_columns
        return (numbers - self.mean[columns]) / self.scale[columns]

    def logit(self, value_index: np.ndarray, numbers: np.ndarray) -> np.ndarray:
        """Log-odds of poisonous for rows given as value indices (n, categorical traits,
        int) and measurements (n, numeric traits, float, NaN = unknown): the fitted
        pipeline's own answer (forests: its probability, clipped)."""
        index, numbers = self.point(value_index, numbers)
        if self.tabled:
            terms = self.flat[index + self.offsets].sum(axis=1)
            logit = self.intercept + terms + self._poly(numbers).sum(axis=1)
        elif self.additive or not self.trees.averaged:  # boosting sums log-odds itself
            logit = _log_odds(self.model, self._scaled_rows(index, numbers))
        else:  # a forest averages probabilities
            rows = self._scaled_rows(index, numbers)
            p = np.clip(self.model.predict_proba(rows)[:, 1], 1e-12, 1 - 1e-12)
            logit = np.log(p) - np.log1p(-p)
        return np.clip(logit, -MAX_LOGIT, MAX_LOGIT)

    def _scaled_rows(self, index: np.ndarray, numbers: np.ndarray) -> np.ndarray:
        """Rows as the model sees them (encoded and scaled), each trait's columns looked up
        by its value: every encoder we use gives a trait columns of its own."""
        rows = np.repeat(self._scaled(self.base_row)[None, :], len(index), axis=0)
        for trait, (columns, table) in enumerate(self.scaled_tables):
            rows[:, columns] = table[index[:, trait]]
        rows[:, self.numeric_columns] = self._scaled_numbers(numbers)
        return rows

    def worst_logit(self, value_index: np.ndarray, numbers: np.ndarray) -> np.ndarray:
        """The highest log-odds over every value the unknown traits may take (categorical:
        any allowed value, ``not_recorded`` included; measurements: the training range)."""
        if not self.additive:
            worst = self.trees.worst_logit(value_index, self._scaled_numbers(numbers))
            return np.clip(worst, -MAX_LOGIT, MAX_LOGIT)
        logit = self.intercept + np.where(
            np.isnan(numbers), self.worst_numeric, self._poly(np.nan_to_num(numbers))
        ).sum(axis=1)
        logit = logit + self.flat[value_index + self.offsets].sum(axis=1)
        return np.clip(logit + self.rounding, -MAX_LOGIT, MAX_LOGIT)

    def lowest_logit(self, completions) -> np.ndarray:
        """The lowest log-odds over ``completions`` (``familiarity.Completions``: each
        categorical value's cost within a budget, each measurement's interval): exact for
        additive models (the cheapest choice within the budget, trait by trait), a lower
        bound for trees (any value within the budget, each on its own)."""
        low, high = completions.low, completions.high
        if not self.additive:
            columns = self.numeric_columns
            scale = lambda x: (x - self.mean[columns]) / self.scale[columns]  # noqa: E731
            lowest = self.trees.lowest_logit(completions.mask, scale(low), scale(high))
            return np.clip(lowest, -MAX_LOGIT, MAX_LOGIT)
        logit = self.intercept + self._cheapest(completions.cost, completions.budget)
        if self.numeric:
            c1, c2 = self.polynomials[:, 0], self.polynomials[:, 1]
            vertex = np.divide(-c1, 2 * c2, out=np.full_like(c1, np.nan), where=c2 > 0)
            inside = (vertex >= low) & (vertex <= high)
            at_vertex = np.where(inside, self._poly(np.where(inside, vertex, low)), np.inf)
            ends = np.minimum(self._poly(low), self._poly(high))
            logit = logit + np.minimum(ends, at_vertex).sum(axis=1)
        return np.clip(logit - self.rounding, -MAX_LOGIT, MAX_LOGIT)

    def _cheapest(self, cost: np.ndarray, budget: np.ndarray) -> np.ndarray:
        """The least sum of one table entry per trait whose costs stay within each row's
        budget: ``least[:, b]``, the least so far spending at most b."""
        n, most = len(cost), int(budget.max(initial=0))
        spends = np.arange(most + 1)
        least = np.zeros((n, most + 1))
        for start, size in zip(self.value_offsets, [len(t) for t in self.tables], strict=True):
            after = np.full_like(least, np.inf)
            for v in range(start, start + size):
                left = spends - cost[:, v, None]  # rows × budgets: what is left to spend before
                before = np.take_along_axis(least, np.clip(left, 0, most), axis=1)
                after = np.minimum(after, np.where(left >= 0, before + self.flat_values[v], np.inf))
            least = after
        return least[np.arange(n), budget]

    def attributions(self, value_index: np.ndarray, numbers: np.ndarray) -> np.ndarray:
        """How far each trait (categorical, then measurements) pushed each row's answer
        from the average training mushroom's: positive towards poisonous. Exact terms of
        the log-odds for additive models; path credits (Saabas) for tree ensembles."""
        index, numbers = self.point(value_index, numbers)
        if not self.additive:
            rows = self._scaled_rows(index, numbers) if self.trees.apply else None
            return self.trees.attributions(index, self._scaled_numbers(numbers), rows)
        pushes = self.flat_pushes[index + self.offsets]
        if not self.numeric:
            return pushes
        return np.hstack([pushes, self._poly(numbers) - self.expected_numeric])

    def index_frame(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Value indices and measurements of a prepared (readable-name) frame; a value
        that is None or NaN is unknown."""
        numbers = frame[[t.name for t in self.numeric]].to_numpy(dtype=float)
        return value_indices(frame, self.categorical), numbers
