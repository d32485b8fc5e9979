"""The model card has one reader and its fields declared: a card that lacks one, or holds
one the code does not know, is refused naming it, never half-read."""

from __future__ import annotations

import json

import pytest

from mushroom.lifecycle.model_card import INTERNAL, InvalidCard, ModelCard
from mushroom.lifecycle.store_names import CARD_FILE

CARD = {
    "name": "mushroom-classifier",
    "version": "3",
    "mlflow_run_id": "abc",
    "inputs_sha256": "0" * 64,
    "dataset": "uci",
    "split": "random",
    "features": ["odor"],
    "git_commit": "f" * 40,
    "model": "logreg",
    "encoder": "onehot",
    "trained_at": None,
    "training_seconds": None,
    "params": {"serve": {"max_mushrooms": 1000}},
    "metrics": {"test": {}},
    "policy": {},
    "held_out": {},
    "familiarity": {},
}


def test_a_card_round_trips_and_shows_everything_but_bookkeeping(tmp_path):
    ModelCard(**CARD).write(tmp_path)
    card = ModelCard.read(tmp_path)
    assert card.model_dump() == CARD and card.full_version == "mushroom-classifier:3"
    assert set(card.shown()) == set(CARD) - INTERNAL and INTERNAL < set(CARD)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"policy": None}, "policy: Input should be a valid dictionary"),
        ({"surprise": 1}, "surprise: Extra inputs are not permitted"),
        ({"version": None}, "version: Input should be a valid string"),
    ],
)
def test_a_card_with_a_wrong_missing_or_unknown_field_is_refused_naming_it(tmp_path, change, named):
    (tmp_path / CARD_FILE).write_text(json.dumps(CARD | change))
    with pytest.raises(InvalidCard, match=f"{CARD_FILE}: .*{named}"):
        ModelCard.read(tmp_path)


def test_a_card_missing_a_field_is_refused_naming_it(tmp_path):
    (tmp_path / CARD_FILE).write_text(json.dumps({k: v for k, v in CARD.items() if k != "split"}))
    with pytest.raises(InvalidCard, match="split: Field required"):
        ModelCard.read(tmp_path)
