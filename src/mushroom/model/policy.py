"""The verdict policy: the one place that turns a model's scores into edible, poisonous or
uncertain, and says why. The service, ``mushroom predict``, evaluate and drift all judge
through ``Judge``, with the policy the model was trained with (``models/policy.json``,
copied into the promoted model's card).

A description is answered

- *edible* only if it is familiar (``mushroom.model.familiarity``) whatever its unknown traits
  are, holds no value the training mushrooms never had, no known poisonous mushroom lies
  within one known trait of it (a *lookalike*), and its calibrated P(poisonous) stays below
  ``edible_below`` whatever values its unknown traits, and its known values no fitting
  species documents, take (the worst case);
- *poisonous* if even its most edible familiar completion (every unknown trait at the
  value, among those some familiar completion could take, that makes it most edible) has a
  calibrated P(poisonous) of at least ``poisonous_from``, familiar or not;
- *uncertain* (do not eat) otherwise.

Both thresholds are chosen on out-of-fold predictions of the training split (``choose``):
``edible_below`` is the highest that keeps held-out false edibles within the gate's rate,
never above ``train.abstention.max_edible_risk``; ``poisonous_from`` the lowest that keeps
held-out edible mushrooms called poisonous within
``train.abstention.max_false_poisonous_rate``. Probabilities are calibrated (Platt) on the
same held-out predictions, never on data the model was fitted on. The edible rule needs
evidence: the familiar held-out poisonous mushrooms it was tested on must be enough for the
one-sided 95 % upper bound of its false-edible rate to meet the gate's cross-validated
rate; else there is no edible region (``edible_below`` = 0) and ``held_out`` says why.

Reasons, in this order: why an answer is uncertain (``unfamiliar``; ``unseen:<trait>=<value>``,
a value no training mushroom had; ``unknown:<trait>``, unknown traits that could make it
poisonous; ``undocumented:<trait>``, a known value no species it fits documents;
``poisonous_species:<name>``, a poisonous species its known traits fit; ``lookalike:<which>``,
a poisonous species, or how the nearest poisonous training mushroom differs, within one
trait; ``borderline``, between the thresholds; ``no_edible_region``); the species it fits
(``species:<name>``; for an uncertain answer, only the edible ones); and up to three known
traits that pushed it most towards its verdict (``odor=foul``). Same description, same
reasons. With ``guidance``, each answer also says how far it is from another one:
``probability_range``, whether an edible answer is still possible, and which unknown
traits to check next.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit
from scipy.stats import beta
from sklearn.metrics import roc_auc_score

from mushroom.model.familiarity import Assessment, Familiarity
from mushroom.model.scorer import FastScorer

EDIBLE, POISONOUS, UNCERTAIN = "edible", "poisonous", "uncertain"
PUSHERS, NAMED = 3, 3
CONFIDENCE = 0.95
JUDGED_AT_ONCE = 50_000
MEASUREMENT_PROBES = 9
"""An unknown measurement is checked at this many points across its training range."""


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


def rate_high(errors: int, n: int) -> float:
    """One-sided 95 % upper bound of a rate seen as ``errors`` in ``n`` (Clopper-Pearson;
    0 in n is about 3/n); 1 with nothing seen."""
    if n <= 0 or errors >= n:
        return 1.0
    return float(beta.ppf(CONFIDENCE, errors + 1, n - errors))


def rate_low(successes: int, n: int) -> float:
    """One-sided 95 % lower bound of a rate seen as ``successes`` in ``n``."""
    return 1.0 - rate_high(n - successes, n) if n > 0 else 0.0


def needed_without_error(rate: float) -> int | None:
    """How many trials without an error make ``rate_high`` meet ``rate`` (None: never)."""
    if rate <= 0:
        return None
    if rate >= 1:
        return 1
    return int(np.ceil(np.log(1 - CONFIDENCE) / np.log1p(-rate) - 1e-9))


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


@dataclass(frozen=True)
class Limits:
    """What the thresholds must meet on held-out folds (params.yaml)."""

    max_false_edible_rate: float  # evaluate.gate.max_false_edible_rate
    max_false_poisonous_rate: float  # train.abstention.max_false_poisonous_rate
    max_edible_risk: float  # train.abstention.max_edible_risk
    max_cv_false_edible_rate: float  # evaluate.gate.max_cv_false_edible_rate


def choose(
    y: np.ndarray,
    logit: np.ndarray,
    worst_logit: np.ndarray,
    familiar: np.ndarray,
    lookalike: np.ndarray,
    limits: Limits,
) -> tuple[Policy, dict]:
    """The policy from out-of-fold scores of the training split (complete descriptions:
    ``worst_logit`` differs from ``logit`` only by values no fitting species documents),
    and how it did there, with the evidence behind its edible threshold."""
    slope, intercept = platt(logit, y)
    p = expit(slope * logit + intercept)
    p_worst = expit(slope * np.maximum(worst_logit, logit) + intercept)
    poisonous, edible = y == 1, y == 0
    allowed = int(np.floor(limits.max_false_edible_rate * poisonous.sum() + 1e-9))
    risky = np.sort(p_worst[familiar & ~lookalike & poisonous])
    edible_below = min(risky[allowed] if len(risky) > allowed else 1.0, limits.max_edible_risk)
    allowed = int(np.floor(limits.max_false_poisonous_rate * edible.sum() + 1e-9))
    wrongly = np.sort(p[edible])[::-1]  # a poisonous answer needs no familiarity
    poisonous_from = np.nextafter(wrongly[allowed], 1.0) if len(wrongly) > allowed else 0.0
    said_edible = familiar & ~lookalike & (p_worst < edible_below)
    # Tested: the familiar poisonous mushrooms, which only the lookalike margin and the
    # threshold stood between and an edible answer.
    tested, false_edible = int((familiar & poisonous).sum()), int((said_edible & poisonous).sum())
    high = rate_high(false_edible, tested)
    needed = needed_without_error(limits.max_cv_false_edible_rate)
    evidence = {
        "poisonous_tested": tested,
        "false_edible": false_edible,
        "false_edible_rate_high_95": round(high, 6),
        "needed": needed,
        "edible_region": high <= limits.max_cv_false_edible_rate,
    }
    if not evidence["edible_region"]:
        edible_below, said_edible = 0.0, np.zeros_like(said_edible)
        evidence["why"] = (
            f"no edible answers: the edible rule was tested on {tested} familiar held-out "
            f"poisonous mushrooms ({false_edible} answered edible), so the 95 % upper bound "
            f"of its false-edible rate is {high:.4g}, above evaluate.gate."
            f"max_cv_false_edible_rate {limits.max_cv_false_edible_rate:g}"
            + (f"; {needed} with no error would be needed" if needed else "")
        )
    policy = Policy(slope, intercept, float(edible_below), float(max(poisonous_from, edible_below)))
    return policy, {
        "rows": len(y),
        "roc_auc": round(float(roc_auc_score(y, logit)), 6)
        if 0 < poisonous.sum() < len(y)
        else None,
        "poisonous": int(poisonous.sum()),
        "edible": int(edible.sum()),
        "false_edible": false_edible,
        "coverage": round(float((said_edible & edible).sum() / max(edible.sum(), 1)), 6),
        "unfamiliar": int((~familiar).sum()),
        "lookalike": int(lookalike.sum()),
        "edible_evidence": evidence,
    }


@dataclass
class Judgement:
    verdict: np.ndarray  # str
    probability: np.ndarray  # calibrated P(poisonous), unknown traits scored as not recorded
    familiar: np.ndarray
    unknown: np.ndarray  # rows × traits not given, in ``Judge.trait_names`` order
    reasons: list[list[str]] | None = None
    guidance: list[dict] | None = None
    """With ``guidance``: per row ``probability_range``, ``edible_possible``, ``check_next``."""

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


def _slices(n: int) -> list[slice]:
    return [slice(i, i + JUDGED_AT_ONCE) for i in range(0, n, JUDGED_AT_ONCE)]


@dataclass
class _Evidence:
    """What the model and the detector say of each row, before any threshold."""

    logit: np.ndarray
    unknown: np.ndarray  # rows × traits not given
    unseen: np.ndarray  # rows × traits: a known value no training mushroom had
    assessment: Assessment
    familiar: np.ndarray  # familiar whatever the unknown traits are, no unseen value
    eligible: np.ndarray  # familiar, and every given value documented: may be edible
    ranged_index: np.ndarray  # value indices, unseen and undocumented values as unknown
    ranged_numbers: np.ndarray  # measurements, unseen ones as unknown
    ranged: np.ndarray  # rows with a trait taken over its values: unknown, unseen, undocumented
    worst_logit: np.ndarray | None = None
    poisonous_distance: np.ndarray | None = None

    @property
    def distance(self) -> np.ndarray:
        return self.assessment.distance


@dataclass
class _Bounds:
    """Everything a verdict is decided from, per row."""

    verdict: np.ndarray
    p: np.ndarray
    p_best: np.ndarray
    p_worst: np.ndarray  # exact where it decides; elsewhere p unless asked for in full
    familiar: np.ndarray
    unknown: np.ndarray
    unseen: np.ndarray  # rows × traits: a known value no training mushroom had
    assessment: Assessment
    lookalike: np.ndarray  # a known poisonous mushroom within the margin (where it matters)


class Judge:
    def __init__(
        self, scorer: FastScorer, familiarity: Familiarity, policy: Policy, training: dict
    ):
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
        # Each value's share of the training mushrooms; whether it was seen, every trait's
        # values end to end (as in familiarity.Completions); per trait, whether a value a
        # mushroom could have (not "not recorded") never occurred.
        self.value_shares = [
            np.array([training["shares"][t.name][v] for v in scorer.values[t.name]])
            for t in scorer.categorical
        ]
        self.seen = np.concatenate([np.zeros(0, bool)] + [s > 0 for s in self.value_shares])
        # every value slot (each trait's values, then unknown, as ``labels``): never seen
        self.unseen_slot = np.concatenate(
            [np.zeros(0, bool)] + [np.append(shares == 0, False) for shares in self.value_shares]
        )
        self.may_be_unseen = np.array(
            [
                not (shares[: len(t.describable_values)] > 0).all()
                for t, shares in zip(scorer.categorical, self.value_shares, strict=True)
            ],
            dtype=bool,
        )
        # Every (trait, value) a guidance variant may set: each categorical trait's
        # describable values, then each measurement's probes, trait by trait.
        probes = [
            (k, np.arange(len(t.describable_values), dtype=float))
            for k, t in enumerate(scorer.categorical)
        ] + [
            (len(scorer.categorical) + j, np.linspace(*scorer.domain[j], MEASUREMENT_PROBES))
            for j in range(len(scorer.numeric))
        ]
        self.probe_trait = np.concatenate(
            [np.zeros(0, int)] + [np.full(len(values), k) for k, values in probes]
        )
        self.probe_value = np.concatenate([np.zeros(0)] + [values for _, values in probes])

    def index_frame(self, frame):
        return self.scorer.index_frame(frame)

    def _unseen(self, value_index: np.ndarray, numbers: np.ndarray) -> np.ndarray:
        """Rows × traits: a known value (a measurement outside the training range) that no
        training mushroom had."""
        categorical = self.unseen_slot[value_index + self.label_offsets]
        low, high = self.scorer.domain[:, 0], self.scorer.domain[:, 1]
        measured = ~np.isnan(numbers) & ((numbers < low) | (numbers > high))
        return np.hstack([categorical, measured])

    def _evidence(self, value_index: np.ndarray, numbers: np.ndarray) -> _Evidence:
        scorer = self.scorer
        logit = scorer.logit(value_index, numbers)
        unknown = scorer.unknown(value_index, numbers)
        assessment = self.familiarity.assess(value_index, numbers)
        n_categorical = value_index.shape[1]
        # A value no training mushroom had, given or among an unknown trait's values, makes
        # a description unfamiliar: the model cannot read it.
        unseen = self._unseen(value_index, numbers)
        open_to_unseen = (unknown[:, :n_categorical] & self.may_be_unseen).any(axis=1)
        familiar = assessment.familiar & ~unseen.any(axis=1) & ~open_to_unseen
        # Scored at their worst (and best), never as the model would read them: unknown
        # traits, unseen values, and values no species the description fits documents.
        unread = unseen[:, :n_categorical].copy()
        # A value only a blank of the species it fits accepts is undocumented: the species is
        # recognised, but the data cannot vouch for the value, so it is never edible.
        eligible = familiar.copy()
        if assessment.unvouched is not None:
            unread |= assessment.unvouched
            eligible &= ~assessment.unvouched.any(axis=1)
        index = np.where(unread, scorer.unknown_index, value_index)
        measured = np.where(unseen[:, n_categorical:], np.nan, numbers)
        ranged = unknown.any(axis=1) | unread.any(axis=1) | unseen.any(axis=1)
        return _Evidence(
            logit, unknown, unseen, assessment, familiar, eligible, index, measured, ranged
        )

    def held_out(self, value_index: np.ndarray, numbers: np.ndarray) -> _Evidence:
        """What choosing the thresholds needs of held-out descriptions, with the worst case
        of every row (``worst_logit``) and how far the nearest known poisonous mushroom is
        (``poisonous_distance``); the thresholds of this judge are not used."""
        evidence = self._evidence(value_index, numbers)
        evidence.poisonous_distance = self.familiarity.poisonous_distance(value_index, numbers)
        rows = np.flatnonzero(evidence.ranged)
        evidence.worst_logit = evidence.logit.copy()
        if len(rows):
            worst = self.scorer.worst_logit(
                evidence.ranged_index[rows], evidence.ranged_numbers[rows]
            )
            evidence.worst_logit[rows] = np.maximum(worst, evidence.logit[rows])
        return evidence

    def edible(self, value_index: np.ndarray, numbers: np.ndarray) -> np.ndarray:
        """Which rows are answered edible: the verdict's edible half alone, without the
        best cases a poisonous answer needs (the safety suite judges ~10⁶ descriptions)."""
        parts = [
            self._bounds(value_index[r], numbers[r], full=False, poisonous=False).verdict == EDIBLE
            for r in _slices(len(value_index))
        ]
        return np.concatenate(parts or [np.zeros(0, bool)])

    def _bounds(
        self, value_index: np.ndarray, numbers: np.ndarray, full: bool, poisonous: bool = True
    ) -> _Bounds:
        """Verdicts and what they rest on; ``full``: the worst case of every row with an
        unknown trait, not only where it decides (for ``probability_range``); without
        ``poisonous``, no best case: a verdict is edible or not (uncertain)."""
        policy, scorer, detector = self.policy, self.scorer, self.familiarity
        evidence = self._evidence(value_index, numbers)
        logit, unknown, familiar = evidence.logit, evidence.unknown, evidence.familiar
        assessment = evidence.assessment
        p = policy.calibrated(logit)
        lookalike = np.zeros(len(p), bool)
        eligible = evidence.eligible
        near = np.flatnonzero(eligible & (p < policy.edible_below))  # where a margin matters
        if len(near):
            lookalike[near] = detector.lookalike(value_index[near], numbers[near])
        could_be_edible = eligible & ~lookalike & (p < policy.edible_below)
        worst_rows = np.flatnonzero((full | could_be_edible) & evidence.ranged)
        p_worst = p.copy()
        if len(worst_rows):
            worst = scorer.worst_logit(
                evidence.ranged_index[worst_rows], evidence.ranged_numbers[worst_rows]
            )
            p_worst[worst_rows] = policy.calibrated(np.maximum(worst, logit[worst_rows]))
        edible = could_be_edible & (p_worst < policy.edible_below)
        p_best = p.copy()
        # the best case is below the score: it matters only where the score is poisonous
        may_be_poisonous = (p >= policy.poisonous_from) & assessment.known_fit & poisonous
        partial = np.flatnonzero((full | may_be_poisonous) & evidence.ranged)
        if len(partial):
            index, measured = evidence.ranged_index[partial], evidence.ranged_numbers[partial]
            completions = detector.completions(index, measured, scorer.domain)
            given = np.repeat(index < scorer.unknown_index, detector.sizes, axis=1)
            completions.cost[~(self.seen | given)] = completions.NEVER  # unseen: unfamiliar
            p_best[partial] = policy.calibrated(scorer.lowest_logit(completions))
        # poisonous needs the given traits to be those of some known mushroom: else the
        # model's score of them is an extrapolation (the answer is uncertain: unfamiliar)
        said_poisonous = (p_best >= policy.poisonous_from) & assessment.known_fit & poisonous
        verdict = np.where(edible, EDIBLE, np.where(said_poisonous, POISONOUS, UNCERTAIN))
        return _Bounds(
            verdict, p, p_best, p_worst, familiar, unknown, evidence.unseen, assessment, lookalike
        )

    def judge(
        self,
        value_index: np.ndarray,
        numbers: np.ndarray,
        reasons: bool = True,
        guidance: bool = False,
    ) -> Judgement:
        """Verdicts for rows of value indices and measurements (``FastScorer`` layout), in
        slices of ``JUDGED_AT_ONCE`` rows: a secondary row costs ~1 KB of working tables."""
        if len(value_index) > JUDGED_AT_ONCE:
            rows = [
                slice(i, i + JUDGED_AT_ONCE) for i in range(0, len(value_index), JUDGED_AT_ONCE)
            ]
            parts = [self.judge(value_index[r], numbers[r], reasons, guidance) for r in rows]
            judgement = Judgement.pooled(parts)
            if reasons:
                judgement.reasons = [r for part in parts for r in part.reasons]
            if guidance:
                judgement.guidance = [g for part in parts for g in part.guidance]
            return judgement
        bounds = self._bounds(value_index, numbers, full=guidance)
        judgement = Judgement(bounds.verdict, bounds.p, bounds.familiar, bounds.unknown)
        if reasons:
            causes = self._causes(bounds, value_index, numbers)
            # the model's reading of an unseen or undocumented value is not a reason
            silent = bounds.unknown | bounds.unseen
            if bounds.assessment.unvouched is not None:
                silent[:, : value_index.shape[1]] |= bounds.assessment.unvouched
            pushers = self._pushers(bounds.verdict, silent, value_index, numbers)
            named = self._named(bounds)
            judgement.reasons = [c + s + q for c, s, q in zip(causes, named, pushers, strict=True)]
        if guidance:
            judgement.guidance = self._guidance(bounds, value_index, numbers)
        return judgement

    def _causes(self, bounds: _Bounds, value_index, numbers):
        verdict, familiar, unknown = bounds.verdict, bounds.familiar, bounds.unknown
        assessment, uncertain = bounds.assessment, bounds.verdict == UNCERTAIN
        causes: list[list[str]] = [[] for _ in verdict]
        for i in np.flatnonzero(~familiar).tolist():
            causes[i].append("unfamiliar")
        n_categorical = value_index.shape[1]
        for i, k in zip(*np.nonzero(bounds.unseen), strict=True):
            if k < n_categorical:
                causes[i].append(f"unseen:{self.labels[value_index[i, k] + self.label_offsets[k]]}")
            else:
                causes[i].append(f"unseen:{self.trait_names[k]}={numbers[i, k - n_categorical]:g}")
        # An uncertain answer with unknown traits names those that matter most: whatever
        # else holds it back, knowing them could change it.
        flips = np.flatnonzero(uncertain & unknown.any(axis=1))
        named = self._flippers(flips, unknown, value_index, numbers)
        for i, traits in zip(flips.tolist(), named, strict=True):
            causes[i] += [f"unknown:{t}" for t in traits]
        if assessment.unvouched is not None:
            undocumented = assessment.unvouched & familiar[:, None] & uncertain[:, None]
            for i in np.flatnonzero(undocumented.any(axis=1)).tolist():
                traits = np.flatnonzero(undocumented[i])[:NAMED]
                causes[i] += [f"undocumented:{self.trait_names[k]}" for k in traits]
        fits_poisonous = np.zeros(len(verdict), bool)
        if assessment.fits is not None:
            suspects = assessment.fits & self.familiarity.poisonous
            fits_poisonous = suspects.any(axis=1)
            for i in np.flatnonzero(uncertain & fits_poisonous).tolist():
                names = [self.species[j] for j in np.flatnonzero(suspects[i])[:NAMED]]
                causes[i] += [f"poisonous_species:{name}" for name in names]
        near = np.flatnonzero(uncertain & bounds.lookalike & ~fits_poisonous)
        if len(near):
            names = self.familiarity.lookalike_names(value_index[near], numbers[near])
            for i, name in zip(near.tolist(), names, strict=True):
                causes[i].append(f"lookalike:{name}")
        between = (bounds.p >= self.policy.edible_below) & (bounds.p < self.policy.poisonous_from)
        for i in np.flatnonzero(uncertain & familiar & between).tolist():
            causes[i].append("borderline")
        if self.policy.edible_below <= 0:
            for i in np.flatnonzero(uncertain).tolist():
                causes[i].append("no_edible_region")
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

    def _pushers(self, verdict, silent, value_index, numbers) -> list[list[str]]:
        """Up to three known traits (not ``silent``) that pushed most towards the verdict."""
        pushes = self.scorer.attributions(value_index, numbers)
        pushes = np.where(verdict[:, None] == EDIBLE, -pushes, pushes)
        pushes[silent] = 0.0
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

    def _named(self, bounds: _Bounds) -> list[list[str]]:
        """The species a description fits: when familiar, or complete (a value no training
        mushroom had does not stop a whole description being recognised)."""
        fits, familiar = bounds.assessment.fits, bounds.familiar
        if fits is None:
            return [[] for _ in familiar]
        recognised = familiar | ~bounds.unknown.any(axis=1)
        # an uncertain answer has named its poisonous species among its causes
        shown = fits & ~((bounds.verdict == UNCERTAIN)[:, None] & self.familiarity.poisonous)
        return [
            [f"species:{self.species[j]}" for j in np.flatnonzero(shown[i])[:NAMED]]
            if recognised[i]
            else []
            for i in range(len(familiar))
        ]

    def _guidance(self, bounds: _Bounds, value_index, numbers) -> list[dict]:
        """How far each answer is from another: the range its P(poisonous) may take over
        its unknown traits' values, whether an edible answer is still possible, and the
        unknown traits to check next, best first, each with the verdicts knowing it alone
        could give and the values that would."""
        n, n_categorical = len(value_index), value_index.shape[1]
        unknown = bounds.unknown
        # one variant per unknown trait and value a mushroom could have: row by row, each
        # row's traits and values in the probe table's order
        row_of, probe = np.nonzero(unknown[:, self.probe_trait])
        trait_of, value_of = self.probe_trait[probe], self.probe_value[probe]
        index, measured = value_index[row_of].copy(), numbers[row_of].copy()
        categorical = trait_of < n_categorical
        index[categorical, trait_of[categorical]] = value_of[categorical].astype(int)
        numeric = ~categorical
        measured[numeric, trait_of[numeric] - n_categorical] = value_of[numeric]
        variants = self._bounds(index, measured, full=True) if len(row_of) else None
        possible = self._edible_possible(bounds)
        ends = np.searchsorted(row_of, np.arange(n + 1)).tolist()  # each row's variants
        p_best, p_worst, verdict = bounds.p_best.tolist(), bounds.p_worst.tolist(), bounds.verdict
        answers = []
        for i, (edible_possible, start, end) in enumerate(
            zip(possible.tolist(), ends[:-1], ends[1:], strict=True)
        ):
            answers.append(
                {
                    "probability_range": [p_best[i], p_worst[i]],
                    "edible_possible": edible_possible,
                    "check_next": self._check_next(
                        verdict[i], np.arange(start, end), trait_of, value_of, variants
                    )
                    if end > start
                    else [],
                }
            )
        return answers

    def _check_next(self, verdict, mine, trait_of, value_of, variants) -> list[dict]:
        """The unknown traits of one answer (its variants ``mine``), ranked."""
        scorer, n_categorical = self.scorer, len(self.scorer.categorical)
        entries = []
        for k in np.unique(trait_of[mine]).tolist():
            own = mine[trait_of[mine] == k]
            changes: dict[str, list[str]] = {}
            changed_share = 0.0
            for position in own.tolist():
                other = variants.verdict[position]
                if other == verdict:
                    continue
                if k < n_categorical:
                    trait = scorer.categorical[k]
                    value = trait.allowed_values[int(value_of[position])]
                    share = self.value_shares[k][int(value_of[position])]
                else:
                    value, share = f"{value_of[position]:g}", 1 / MEASUREMENT_PROBES
                changes.setdefault(str(other), []).append(value)
                changed_share += share
            spread = float(np.ptp(variants.p_worst[own]) + np.ptp(variants.p_best[own]))
            entries.append(
                (
                    (-changed_share, -spread, k),
                    {
                        "trait": self.trait_names[k],
                        "could_make": sorted(changes),
                        "values": changes,
                    },
                )
            )
        return [entry for _, entry in sorted(entries, key=lambda e: e[0])]

    def _edible_possible(self, bounds: _Bounds) -> np.ndarray:
        """False only where no completion of the unknown traits could be answered edible:
        no edible region, a known unseen or undocumented value (knowing more only narrows
        the species that could vouch for it), known traits no familiar mushroom has, no
        completion scoring low enough, or nothing left unknown and not edible now."""
        if self.policy.edible_below <= 0:
            return np.zeros(len(bounds.verdict), bool)
        assessment = bounds.assessment
        undocumented = (
            assessment.unvouched.any(axis=1)
            if assessment.unvouched is not None
            else np.zeros(len(bounds.verdict), bool)
        )
        partial = bounds.unknown.any(axis=1)
        return (bounds.verdict == EDIBLE) | (
            partial
            & assessment.known_fit
            & ~bounds.unseen.any(axis=1)
            & ~undocumented
            & (bounds.p_best < self.policy.edible_below)
        )
