"""Names shared by promotion, the service and the batch CLI for the promoted model."""

from __future__ import annotations

from pathlib import Path

NAME = "mushroom-classifier"
"""The MLflow registered model and the BentoML store entry."""
ALIAS = "champion"
CARD_FILE, MODEL_FILE, POLICY_FILE = "model_card.json", "model.joblib", "policy.json"
DEFAULT_TAG = f"{NAME}:latest"
"""Promotion saves a new store entry whenever the champion changes, so latest is it."""


def timing_path(train_info: Path) -> Path:
    """When and how long training took: beside train_info.json, not a DVC output (it
    differs on every run)."""
    return train_info.with_name("train_timing.json")
