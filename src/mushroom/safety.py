"""The behavioural safety suite: descriptions no model may answer edible, whatever its
test-split figures. Evaluate runs it into ``reports/safety.json``; every count of edible
answers must be 0 for the gate to pass.

- ``single_trait``: every description of one trait alone (each categorical value; each
  measurement at the low end, middle and high end of the training range);
- ``random``: descriptions drawn uniformly from every trait's valid values (they
  describe no real mushroom);
- ``monotonicity``: removing traits from a description never turns a non-edible answer
  into edible; checked along chains of ever smaller descriptions, from test-split rows
  (those answered edible first) and random descriptions;
- ``poison_markers``: values the code book names as marks of poison (UCI: every odor but
  almond, anise and none) set into every test-split and random description.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mushroom.catalogue import MISSING, DatasetCatalogue
from mushroom.policy import EDIBLE, Judge

RANDOM_DESCRIPTIONS = 10_000
CHAINS = 1_000


def _verdicts(judge: Judge, frame: pd.DataFrame) -> np.ndarray:
    return judge.judge(*judge.scorer.index_frame(frame), reasons=False).verdict


def _domain(judge: Judge, trait) -> np.ndarray:
    """A measurement's training range: (low, high)."""
    return judge.scorer.domain[judge.scorer.numeric.index(trait)]


def single_traits(judge: Judge, catalogue: DatasetCatalogue) -> pd.DataFrame:
    """One row per description; the traits it does not give are NaN: unknown."""
    rows = []
    for trait in catalogue.traits:
        if trait.is_numeric:
            low, high = _domain(judge, trait)
            rows += [{trait.name: x} for x in (low, (low + high) / 2, high)]
        else:
            rows += [{trait.name: v} for v in trait.allowed_values if v != MISSING]
    return pd.DataFrame(rows, columns=catalogue.trait_names)


def random_descriptions(judge: Judge, catalogue: DatasetCatalogue, n: int, seed: int):
    rng = np.random.default_rng(seed)
    columns = {}
    for trait in catalogue.traits:
        if trait.is_numeric:
            columns[trait.name] = rng.uniform(*_domain(judge, trait), n)
        else:
            values = [v for v in trait.allowed_values if v != MISSING]
            columns[trait.name] = np.array(values, dtype=object)[rng.integers(0, len(values), n)]
    return pd.DataFrame(columns)


def monotonicity(judge: Judge, catalogue: DatasetCatalogue, starts: pd.DataFrame, seed: int):
    """Pairs (description, the same with fewer traits) where only the smaller is edible."""
    rng = np.random.default_rng(seed)
    names = [t.name for t in catalogue.traits]
    current = starts[names].astype(object).reset_index(drop=True)
    before = _verdicts(judge, current)
    pairs = violations = 0
    remaining = np.array([rng.permutation(len(names)) for _ in range(len(current))])
    dropped = 0
    for step in (1, 1, 2, 4, 8, len(names)):
        take = remaining[:, dropped : dropped + step]
        dropped += step
        if take.shape[1] == 0:
            break
        smaller = current.copy()
        for column in range(take.shape[1]):
            for trait in np.unique(take[:, column]):
                smaller.loc[take[:, column] == trait, names[trait]] = None
        after = _verdicts(judge, smaller)
        pairs += len(smaller)
        violations += int(((after == EDIBLE) & (before != EDIBLE)).sum())
        current, before = smaller, after
    return {"pairs": pairs, "violations": violations}


def suite(judge: Judge, catalogue: DatasetCatalogue, test: pd.DataFrame, seed: int) -> dict:
    names = [t.name for t in catalogue.traits]
    test = test.reindex(columns=names).astype(object)  # dropped traits come back unknown
    single = _verdicts(judge, single_traits(judge, catalogue))
    random = random_descriptions(judge, catalogue, RANDOM_DESCRIPTIONS, seed)
    random_judged = judge.judge(*judge.scorer.index_frame(random), reasons=False)
    answered_edible = _verdicts(judge, test) == EDIBLE
    rng = np.random.default_rng(seed)
    starts = pd.concat(
        [
            test[answered_edible].sample(min(CHAINS, answered_edible.sum()), random_state=seed),
            test.iloc[rng.permutation(len(test))[: CHAINS // 2]],
            random.iloc[: CHAINS // 2],
        ]
    )
    report = {
        "single_trait": {"descriptions": len(single), "edible": int((single == EDIBLE).sum())},
        "random": {
            "descriptions": len(random),
            "edible": int((random_judged.verdict == EDIBLE).sum()),
            "unfamiliar": int((~random_judged.familiar).sum()),
        },
        "monotonicity": monotonicity(judge, catalogue, starts, seed),
        "poison_markers": None,
    }
    if catalogue.poison_markers:
        marked = []
        for trait, values in catalogue.poison_markers.items():
            for value in sorted(values):
                marked += [test.assign(**{trait: value}), random.assign(**{trait: value})]
        verdicts = _verdicts(judge, pd.concat(marked, ignore_index=True))
        report["poison_markers"] = {
            "descriptions": len(verdicts),
            "edible": int((verdicts == EDIBLE).sum()),
        }
    return report


def edible_counts(report: dict) -> dict[str, int]:
    """Each check's count of edible answers (monotonicity: violations); all must be 0."""
    counts = {
        "safety.single_trait.edible": report["single_trait"]["edible"],
        "safety.random.edible": report["random"]["edible"],
        "safety.monotonicity.violations": report["monotonicity"]["violations"],
    }
    if report["poison_markers"] is not None:
        counts["safety.poison_markers.edible"] = report["poison_markers"]["edible"]
    return counts
