"""The verdict policy: the one place that turns a model's scores into edible, poisonous or
uncertain, and says why. The service, ``mushroom predict``, evaluate and drift all judge
through ``Judge``, with the policy the model was trained with (``models/policy.json``,
copied into the promoted model's card).

A description is answered

- *edible* only if it is familiar (``mushroom.familiarity``), no poisonous species it
  fits given its known traits, and its calibrated P(poisonous) stays below
  ``edible_below`` whatever values its unknown traits take (the worst case);
- *poisonous* if it is familiar and its calibrated P(poisonous) is at least
  ``poisonous_from``;
- *uncertain* (do not eat) otherwise.

Both thresholds are chosen on out-of-fold predictions of the training split (``choose``):
``edible_below`` is the highest that keeps held-out false edibles within the gate's rate,
``poisonous_from`` the lowest that keeps held-out edible mushrooms called poisonous within
``train.abstention.max_false_poisonous_rate``. Probabilities are calibrated (Platt) on the
same held-out predictions, never on data the model was fitted on.

Reasons, in this order: why an answer is uncertain (``unfamiliar``; ``unknown:<trait>``,
unknown traits that could make it poisonous; ``poisonous_species:<name>``, a poisonous
species its known traits fit; ``borderline``, between the thresholds); the species it
fits (``species:<name>``; for an uncertain answer, only the edible ones); and up to three
known traits that pushed it most towards its verdict (``odor=foul``). Same description,
same reasons.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.metrics import roc_auc_score

from mushroom.familiarity import Familiarity
from mushroom.scoring import FastScorer

EDIBLE, POISONOUS, UNCERTAIN = "edible", "poisonous", "uncertain"
MAX_EDIBLE_BELOW = 0.5
"""Whatever the folds allow, edible is never answered at even odds of poison or above."""
PUSHERS, NAMED = 3, 3


@dataclass(frozen=True)
class Policy:
    slope: float
    intercept: float
    """Calibration: P(poisonous) = expit(slope × model log-odds + intercept)."""
    edible_below: float
    poisonous_from: float

    def calibrated(self, logit: np.ndarray) -> np.ndarray:
        return expit(self.slope * logit + self.intercept)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Policy:
        return cls(**{k: float(data[k]) for k in cls.__dataclass_fields__})


def platt(logit: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Platt scaling with his smoothed targets, so separable folds give a finite slope."""
    positives = y.sum()
    negatives = len(y) - positives
    target = np.where(y == 1, (positives + 1) / (positives + 2), 1 / (negatives + 2))

    def loss(ab):
        z = ab[0] * logit + ab[1]
        residual = expit(z) - target
        value = np.sum(np.logaddexp(0, z) - target * z)
        return value, np.array([residual @ logit, residual.sum()])

    found = minimize(
        loss, [1.0, 0.0], jac=True, method="L-BFGS-B", bounds=[(1e-6, None), (None, None)]
    )
    return float(found.x[0]), float(found.x[1])


def choose(
    y: np.ndarray,
    logit: np.ndarray,
    worst_logit: np.ndarray,
    familiar: np.ndarray,
    fits_poisonous: np.ndarray,
    max_false_edible_rate: float,
    max_false_poisonous_rate: float,
) -> tuple[Policy, dict]:
    """The policy from out-of-fold scores of the training split, and how it did there."""
    slope, intercept = platt(logit, y)
    p = expit(slope * logit + intercept)
    p_worst = expit(slope * np.maximum(worst_logit, logit) + intercept)
    poisonous, edible = y == 1, y == 0
    allowed = int(np.floor(max_false_edible_rate * poisonous.sum() + 1e-9))
    risky = np.sort(p_worst[familiar & ~fits_poisonous & poisonous])
    edible_below = min(risky[allowed] if len(risky) > allowed else 1.0, MAX_EDIBLE_BELOW)
    allowed = int(np.floor(max_false_poisonous_rate * edible.sum() + 1e-9))
    wrongly = np.sort(p[familiar & edible])[::-1]
    poisonous_from = np.nextafter(wrongly[allowed], 1.0) if len(wrongly) > allowed else 0.0
    policy = Policy(slope, intercept, float(edible_below), float(max(poisonous_from, edible_below)))
    said_edible = familiar & ~fits_poisonous & (p_worst < policy.edible_below)
    return policy, {
        "rows": len(y),
        "roc_auc": round(float(roc_auc_score(y, logit)), 6)
        if 0 < poisonous.sum() < len(y)
        else None,
        "poisonous": int(poisonous.sum()),
        "edible": int(edible.sum()),
        "false_edible": int((said_edible & poisonous).sum()),
        "coverage": round(float((said_edible & edible).sum() / max(edible.sum(), 1)), 6),
        "unfamiliar": int((~familiar).sum()),
        # familiar poisonous rows the edible threshold was tested on: few means weak evidence
        "poisonous_tested": len(risky),
    }


@dataclass
class Judgement:
    verdict: np.ndarray  # str
    probability: np.ndarray  # calibrated P(poisonous), unknown traits scored as missing
    familiar: np.ndarray
    unknown: np.ndarray  # rows × traits not given, in ``Judge.trait_names`` order
    reasons: list[list[str]] | None = None

    ARRAYS = ("verdict", "probability", "familiar", "unknown")

    def take(self, rows: np.ndarray) -> Judgement:
        """The judgements of ``rows`` (a mask or positions), without reasons."""
        return Judgement(*(getattr(self, field)[rows] for field in self.ARRAYS))

    @staticmethod
    def pooled(judgements: list[Judgement]) -> Judgement:
        """Judgements of several frames as one, in order, without reasons."""
        return Judgement(
            *(np.concatenate([getattr(j, field) for j in judgements]) for field in Judgement.ARRAYS)
        )


class Judge:
    def __init__(self, scorer: FastScorer, familiarity: Familiarity, policy: Policy):
        self.scorer, self.familiarity, self.policy = scorer, familiarity, policy
        traits = scorer.categorical + scorer.numeric
        self.trait_names = [t.name for t in traits]
        # "trait=value" of every categorical value (and unknown), all traits in one table
        spelled = [
            [f"{t.name}={v}" for v in scorer.values[t.name]] + [""] for t in scorer.categorical
        ]
        self.labels = np.array([label for trait in spelled for label in trait], dtype=object)
        self.label_offsets = np.cumsum([0] + [len(trait) for trait in spelled])[:-1]
        self.species = getattr(familiarity, "species_names", None)

    def judge(
        self, value_index: np.ndarray, numbers: np.ndarray, reasons: bool = True
    ) -> Judgement:
        """Verdicts for rows of value indices and measurements (``FastScorer`` layout)."""
        policy, scorer = self.policy, self.scorer
        logit = scorer.logit(value_index, numbers)
        p = policy.calibrated(logit)
        _, familiar, fits = self.familiarity.assess(value_index, numbers)
        fits_poisonous = (
            (fits & self.familiarity.poisonous).any(axis=1)
            if fits is not None
            else np.zeros(len(p), bool)
        )
        unknown = scorer.unknown(value_index, numbers)
        # The worst case matters only where an answer could otherwise be edible.
        doubt = np.flatnonzero((p < policy.edible_below) & unknown.any(axis=1))
        p_worst = p.copy()
        if len(doubt):
            worst = scorer.worst_logit(value_index[doubt], numbers[doubt])
            p_worst[doubt] = policy.calibrated(np.maximum(worst, logit[doubt]))
        edible = familiar & ~fits_poisonous & (p_worst < policy.edible_below)
        poisonous = familiar & (p >= policy.poisonous_from)
        verdict = np.where(edible, EDIBLE, np.where(poisonous, POISONOUS, UNCERTAIN))
        judgement = Judgement(verdict, p, familiar, unknown)
        if reasons:
            causes = self._causes(verdict, familiar, fits, p, unknown, value_index, numbers)
            pushers = self._pushers(verdict, unknown, value_index, numbers)
            named = self._named(verdict, familiar, fits)
            judgement.reasons = [c + s + q for c, s, q in zip(causes, named, pushers, strict=True)]
        return judgement

    def _causes(self, verdict, familiar, fits, p, unknown, value_index, numbers):
        causes: list[list[str]] = [[] for _ in verdict]
        for i in np.flatnonzero(~familiar).tolist():
            causes[i].append("unfamiliar")
        # An uncertain answer with unknown traits names those that matter most: whatever
        # else holds it back, knowing them could change it.
        flips = np.flatnonzero((verdict == UNCERTAIN) & unknown.any(axis=1))
        named = self._flippers(flips, unknown, value_index, numbers)
        for i, traits in zip(flips.tolist(), named, strict=True):
            causes[i] += [f"unknown:{t}" for t in traits]
        if fits is not None:
            suspects = fits & self.familiarity.poisonous
            for i in np.flatnonzero((verdict == UNCERTAIN) & suspects.any(axis=1)).tolist():
                names = [self.species[j] for j in np.flatnonzero(suspects[i])[:NAMED]]
                causes[i] += [f"poisonous_species:{name}" for name in names]
        between = (p >= self.policy.edible_below) & (p < self.policy.poisonous_from)
        for i in np.flatnonzero((verdict == UNCERTAIN) & familiar & between).tolist():
            causes[i].append("borderline")
        return causes

    def _flippers(self, rows, unknown, value_index, numbers) -> list[list[str]]:
        """For each row, up to three unknown traits that, alone, raise its worst case most."""
        if not len(rows):
            return []
        scorer = self.scorer
        n_categorical = len(scorer.categorical)
        row_of, trait_of = np.nonzero(unknown[rows])
        index, measured = scorer.point(value_index[rows], numbers[rows])
        one_index, one_numbers = index[row_of], measured[row_of]
        categorical = np.flatnonzero(trait_of < n_categorical)
        numeric = np.flatnonzero(trait_of >= n_categorical)
        one_index[categorical, trait_of[categorical]] = scorer.unknown_index[trait_of[categorical]]
        one_numbers[numeric, trait_of[numeric] - n_categorical] = np.nan
        worst = scorer.worst_logit(one_index, one_numbers)
        named: list[list[str]] = [[] for _ in rows]
        for k in np.lexsort((trait_of, -worst, row_of)).tolist():
            if len(named[row_of[k]]) < NAMED:
                named[row_of[k]].append(self.trait_names[trait_of[k]])
        return named

    def _pushers(self, verdict, unknown, value_index, numbers) -> list[list[str]]:
        """Up to three known traits that pushed most towards the verdict."""
        pushes = self.scorer.attributions(value_index, numbers)
        pushes = np.where(verdict[:, None] == EDIBLE, -pushes, pushes)
        pushes[unknown] = 0.0
        top = np.argsort(-pushes, axis=1, kind="stable")[:, :PUSHERS]
        rows = np.arange(len(top))[:, None]
        n_categorical = value_index.shape[1]
        chosen = np.full(top.shape, None, dtype=object)
        categorical = top < n_categorical
        if n_categorical:
            spelled = value_index + self.label_offsets
            column = np.minimum(top, n_categorical - 1)
            chosen = np.where(categorical, self.labels[spelled[rows, column]], None)
        for i, k in zip(*np.nonzero(~categorical), strict=True):
            t = top[i, k]
            chosen[i, k] = f"{self.trait_names[t]}={numbers[i, t - n_categorical]:g}"
        chosen[pushes[rows, top] <= 0] = None
        return [list(filter(None, row)) for row in chosen.tolist()]

    def _named(self, verdict, familiar, fits) -> list[list[str]]:
        if fits is None:
            return [[] for _ in familiar]
        # an uncertain answer has named its poisonous species among its causes
        shown = fits & ~((verdict == UNCERTAIN)[:, None] & self.familiarity.poisonous)
        return [
            [f"species:{self.species[j]}" for j in np.flatnonzero(shown[i])[:NAMED]]
            if familiar[i]
            else []
            for i in range(len(familiar))
        ]
