"""Names shared by promotion, the service and the batch CLI for the promoted model."""

from __future__ import annotations

from pathlib import Path

NAME = "mushroom-classifier"
"""The MLflow registered model and the BentoML store entry."""
ALIAS = "champion"
CARD_FILE, MODEL_FILE, POLICY_FILE = "model_card.json", "model.joblib", "policy.json"
VERSION_LABEL = "mlflow_version"
"""The store entry's label naming the MLflow registry version it was saved for."""
GATE_TAG = "gate"
"""MLflow model-version tag: ``passed`` once promotion checked the evaluate gate."""
JUDGEMENT_TAG = "judgement"
"""MLflow model-version tag: ``whole`` when the version is the pyfunc that answers as the
service does (mushroom.serving.mlflow_model), not the bare pipeline."""
MOVE_TAG_PREFIX = "champion_move_"
"""MLflow registered-model tags ``champion_move_<n>``: one JSON record per alias move."""


def find_entry(version: str, inputs_sha256: str | None):
    """The store entry saved for this MLflow version of this model, or None. Both must
    match: a BentoML home shared by clones holds entries of other registries' versions."""
    import bentoml

    try:
        entries = bentoml.models.list(NAME)
    except bentoml.exceptions.NotFound:
        return None
    for entry in entries:
        if (
            entry.info.labels.get(VERSION_LABEL) == version
            and entry.info.metadata.get("inputs_sha256") == inputs_sha256
        ):
            return entry
    return None


def timing_path(train_info: Path) -> Path:
    """When and how long training took: beside train_info.json, not a DVC output (it
    differs on every run)."""
    return train_info.with_name("train_timing.json")
