"""A trained answering system on disk: ``model.joblib`` (the sklearn Pipeline) and
``policy.json`` (dataset, features, calibration and thresholds, the familiarity detector,
the training descriptions' value shares and ranges, and how the policy did on held-out
folds). Train writes it, promotion copies it into the model store, and evaluate, drift,
the service and ``mushroom predict`` judge through it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import joblib
from sklearn.pipeline import Pipeline

from mushroom.core.atomic import read_json, write_json, write_with
from mushroom.core.catalogue import get_catalogue
from mushroom.model.familiarity import Familiarity
from mushroom.model.policy import Judge, Policy
from mushroom.model.scorer import FastScorer


@dataclass
class Bundle:
    """Everything that answers: written as ``model.joblib`` and ``policy.json``."""

    pipeline: Pipeline
    dataset: str
    features: list[str]
    policy: Policy
    training: dict
    familiarity: dict
    held_out: dict

    def judge(self) -> Judge:
        catalogue = get_catalogue(self.dataset)
        return Judge(
            FastScorer(self.pipeline, self.features, catalogue, self.training),
            Familiarity(self.familiarity, catalogue, self.features),
            self.policy,
            self.training,
        )

    def policy_document(self) -> dict:
        return {
            "dataset": self.dataset,
            "features": self.features,
            "policy": self.policy.to_dict(),
            "held_out": self.held_out,
            "training": self.training,
            "familiarity": self.familiarity,
        }

    def save(self, model_path: Path, policy_path: Path) -> None:
        write_with(model_path, lambda path: joblib.dump(self.pipeline, path))
        write_json(policy_path, self.policy_document())


class OutdatedBundle(ValueError):
    """A model trained before the current evidence rule: it cannot be judged by it."""


def read_policy(policy_path: Path) -> dict:
    """``policy.json``, its one reader, if written by the current train stage; else
    OutdatedBundle. Since
    issue 15 every trait is a feature and the detector holds its lookalike margin: an older
    model would be judged without them, so it is refused, never judged half-way."""
    document = read_json(policy_path)
    catalogue = get_catalogue(document["dataset"])
    if (
        document["features"] != catalogue.trait_names
        or "lookalike_traits" not in document["familiarity"]
    ):
        raise OutdatedBundle(
            f"{policy_path}: trained before every trait counted and edible answers needed a "
            "lookalike margin; train it again (dvc repro) and promote the new model"
        )
    return document


def load_bundle(model_path: Path, policy_path: Path) -> Bundle:
    document = read_policy(policy_path)
    return Bundle(
        joblib.load(model_path),
        document["dataset"],
        document["features"],
        Policy.from_dict(document["policy"]),
        document["training"],
        document["familiarity"],
        document["held_out"],
    )
