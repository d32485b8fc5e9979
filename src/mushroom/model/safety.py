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
  almond, anise and none) set into every test-split and random description;
- ``misread``: every poisonous description of the dataset (both splits; at most
  ``MISREAD_ROWS``, a seeded sample beyond) with one trait read wrong: each other value a
  mushroom can have (a measurement: the low end, middle and high end of its training range);
- ``not_known``: every test-split description with each trait given in each spelling of
  "I don't know" the API and the CLI accept (``catalogue.NOT_KNOWN``), against the same
  description with the trait left out: never edible where left out is not;
- ``unseen``: every value a mushroom can have that no training mushroom had (and each
  measurement at 1.5 times its training maximum) set into every test-split description
  answered edible.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mushroom.core.catalogue import NOT_KNOWN, TARGET, DatasetCatalogue
from mushroom.core.progress import Progress
from mushroom.data.prepared import label
from mushroom.model.policy import EDIBLE, Judge

RANDOM_DESCRIPTIONS = 10_000
CHAINS = 1_000
MISREAD_ROWS = 4_000
"""Every poisonous UCI description (3,916); a seeded sample of the secondary data's 33,888."""
BEYOND_RANGE = 1.5


def _edible(judge: Judge, frame: pd.DataFrame) -> np.ndarray:
    return judge.edible(*judge.scorer.index_frame(frame))


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
            rows += [{trait.name: v} for v in trait.describable_values]
    return pd.DataFrame(rows, columns=catalogue.trait_names)


def random_descriptions(judge: Judge, catalogue: DatasetCatalogue, n: int, seed: int):
    rng = np.random.default_rng(seed)
    columns = {}
    for trait in catalogue.traits:
        if trait.is_numeric:
            columns[trait.name] = rng.uniform(*_domain(judge, trait), n)
        else:
            values = list(trait.describable_values)
            columns[trait.name] = np.array(values, dtype=object)[rng.integers(0, len(values), n)]
    return pd.DataFrame(columns)


def monotonicity(judge: Judge, catalogue: DatasetCatalogue, starts: pd.DataFrame, seed: int):
    """Pairs (description, the same with fewer traits) where only the smaller is edible."""
    rng = np.random.default_rng(seed)
    names = [t.name for t in catalogue.traits]
    current = starts[names].astype(object).reset_index(drop=True)
    before = _edible(judge, current)
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
        after = _edible(judge, smaller)
        pairs += len(smaller)
        violations += int((after & ~before).sum())
        current, before = smaller, after
    return {"pairs": pairs, "violations": violations}


def misread(judge: Judge, catalogue: DatasetCatalogue, described: pd.DataFrame, seed: int):
    """Poisonous descriptions with one trait read wrong, answered edible."""
    poisonous = described[label(described) == 1]
    rows = len(poisonous)
    if rows > MISREAD_ROWS:
        poisonous = poisonous.sample(MISREAD_ROWS, random_state=seed)
    index, numbers = judge.index_frame(poisonous)
    variants_index, variants_numbers = [], []
    for k, trait in enumerate(judge.scorer.categorical):
        for value in range(len(trait.describable_values)):
            wrong = index[:, k] != value
            changed = index[wrong]
            changed[:, k] = value
            variants_index.append(changed)
            variants_numbers.append(numbers[wrong])
    for k, trait in enumerate(judge.scorer.numeric):
        low, high = _domain(judge, trait)
        for value in (low, (low + high) / 2, high):
            wrong = numbers[:, k] != value
            changed = numbers[wrong]
            changed[:, k] = value
            variants_index.append(index[wrong])
            variants_numbers.append(changed)
    edible = judge.edible(np.concatenate(variants_index), np.concatenate(variants_numbers))
    return {
        "rows": len(poisonous),
        "of": rows,
        "descriptions": len(edible),
        "edible": int(edible.sum()),
    }


def not_known(judge: Judge, catalogue: DatasetCatalogue, test: pd.DataFrame):
    """Traits given in a spelling of "I don't know", answered edible where the same
    description with the trait left out is not. A spelling read as unknown (as every one
    is) is the left-out description itself; any other is judged against it."""
    described = test[catalogue.trait_names].astype(object).reset_index(drop=True)
    spellings = sorted(NOT_KNOWN)
    checked = violations = 0
    for trait in catalogue.traits:
        read = {trait.read_value(spelling) for spelling in spellings} - {None}
        checked += len(spellings) * int(described[trait.name].notna().sum())
        if not read:
            continue
        left_out = _edible(judge, described.assign(**{trait.name: None}))
        for value in sorted(read):
            given = _edible(judge, described.assign(**{trait.name: value}))
            violations += int((given & ~left_out).sum())
    return {"spellings": spellings, "descriptions": checked, "violations": violations}


def unseen(
    judge: Judge, catalogue: DatasetCatalogue, train: pd.DataFrame, answered_edible: pd.DataFrame
):
    """Values no training mushroom had (read off the training split itself, not the model's
    own record of it), set into descriptions answered edible."""
    variants = []
    for trait in catalogue.traits:
        column = train[trait.name]
        if trait.is_numeric:
            values = [BEYOND_RANGE * column.max()]
        else:
            values = [v for v in trait.describable_values if not (column == v).any()]
        variants += [answered_edible.assign(**{trait.name: value}) for value in values]
    if not variants:
        return {"descriptions": 0, "edible": 0}
    variants = pd.concat(variants, ignore_index=True)
    return {
        "descriptions": len(variants),
        "edible": int(_edible(judge, variants).sum()),
    }


def suite(
    judge: Judge, catalogue: DatasetCatalogue, train: pd.DataFrame, test: pd.DataFrame, seed: int
) -> dict:
    names = [t.name for t in catalogue.traits]
    test = test.reindex(columns=names + [TARGET]).astype(object)
    single = _edible(judge, single_traits(judge, catalogue))
    random = random_descriptions(judge, catalogue, RANDOM_DESCRIPTIONS, seed)
    random_judged = judge.judge(*judge.scorer.index_frame(random), reasons=False)
    answered_edible = _edible(judge, test[names])
    rng = np.random.default_rng(seed)
    starts = pd.concat(
        [
            test[names][answered_edible].sample(
                min(CHAINS, answered_edible.sum()), random_state=seed
            ),
            test[names].iloc[rng.permutation(len(test))[: CHAINS // 2]],
            random.iloc[: CHAINS // 2],
        ]
    )
    described = pd.concat([train.reindex(columns=names + [TARGET]), test], ignore_index=True)
    checks = {
        "monotonicity": lambda: monotonicity(judge, catalogue, starts, seed),
        "misread": lambda: misread(judge, catalogue, described, seed),
        "not_known": lambda: not_known(judge, catalogue, test),
        "unseen": lambda: unseen(judge, catalogue, train, test[names][answered_edible]),
    }
    progress = Progress("evaluate", "safety check", len(checks) + 2)
    progress.step("single trait, random descriptions")
    report = {
        "single_trait": {"descriptions": len(single), "edible": int(single.sum())},
        "random": {
            "descriptions": len(random),
            "edible": int((random_judged.verdict == EDIBLE).sum()),
            "unfamiliar": int((~random_judged.familiar).sum()),
        },
    }
    report |= dict.fromkeys(["monotonicity", "poison_markers", *checks])  # the report's order
    for name, check in checks.items():
        report[name] = check()
        progress.step(name.replace("_", " "))
    if catalogue.poison_markers:
        marked = []
        for trait, values in catalogue.poison_markers.items():
            for value in sorted(values):
                marked += [test[names].assign(**{trait: value}), random.assign(**{trait: value})]
        edible = _edible(judge, pd.concat(marked, ignore_index=True))
        report["poison_markers"] = {"descriptions": len(edible), "edible": int(edible.sum())}
    progress.step("poison markers")
    return report


def edible_counts(report: dict) -> dict[str, int]:
    """Each check's count of edible answers (monotonicity and "not known": violations); all
    must be 0."""
    counts = {
        "safety.single_trait.edible": report["single_trait"]["edible"],
        "safety.random.edible": report["random"]["edible"],
        "safety.monotonicity.violations": report["monotonicity"]["violations"],
        "safety.misread.edible": report["misread"]["edible"],
        "safety.not_known.violations": report["not_known"]["violations"],
        "safety.unseen.edible": report["unseen"]["edible"],
    }
    if report["poison_markers"] is not None:
        counts["safety.poison_markers.edible"] = report["poison_markers"]["edible"]
    return counts
