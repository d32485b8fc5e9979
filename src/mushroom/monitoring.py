"""Drift between the training data and what the service sees: the computations behind the
drift stage (see ``mushroom.stages.drift`` for the method and its defaults)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from mushroom.params import ParamsError, choice, get, number
from mushroom.predlog import read_predictions

DISTANCES = ["jensenshannon", "wasserstein", "hellinger", "psi", "kl_div"]
PREDICTION = ["probability", "verdict"]


def verdicts(p: np.ndarray, policy: dict) -> np.ndarray:
    return np.where(
        p < policy["edible_below"],
        "edible",
        np.where(p >= policy["poisonous_from"], "poisonous", "uncertain"),
    )


def scenario_rows(test: pd.DataFrame, params: dict, split: str) -> pd.DataFrame:
    name = choice(params, "drift.scenario", ["none", "shift", "unseen_species"])
    if name == "unseen_species" and split != "species":
        raise ParamsError(
            "params.yaml: drift.scenario = 'unseen_species' needs a species "
            "split (prepare.split = 'species'): a random split sees every species"
        )
    rows = min(int(get(params, "drift.scenario_rows")), len(test))
    rng = np.random.default_rng(int(get(params, "drift.seed")))
    current = test.iloc[rng.choice(len(test), rows, replace=False)].copy()
    if name == "shift":
        column, value = get(params, "drift.shift_column"), get(params, "drift.shift_to")
        if column not in current:
            raise ParamsError(
                f"params.yaml: drift.shift_column = {column!r} is not a trait "
                f"of this model; traits: {', '.join(test.columns)}"
            )
        moved = rng.random(rows) < number(params, "drift.shift_fraction", 0.0, 1.0)
        current.loc[moved, column] = value
    return current


def logged_rows(log: Path, name: str, params: dict) -> pd.DataFrame:
    if not log.exists():
        return pd.DataFrame()
    rows = read_predictions(log, name)
    days = number(params, "drift.window_days", 0, 3650)
    if days:
        since = pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=days)
        rows = rows[pd.to_datetime(rows["logged_at"], utc=True) >= since]
    last = int(number(params, "drift.window_rows", 0, 10**9))
    return rows.tail(last) if last else rows


def drift_report(reference: pd.DataFrame, current: pd.DataFrame, features, numeric, params):
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    cat_method = choice(params, "drift.categorical_method", DISTANCES)
    num_method = choice(params, "drift.numerical_method", DISTANCES)
    cat_threshold = number(params, "drift.categorical_threshold", 0, 10)
    num_threshold = number(params, "drift.numerical_threshold", 0, 10)
    definition = DataDefinition(
        numerical_columns=numeric + ["probability"],
        categorical_columns=[f for f in features if f not in numeric] + ["verdict"],
    )
    report = Report(
        [
            DataDriftPreset(
                columns=features,
                cat_method=cat_method,
                num_method=num_method,
                cat_threshold=cat_threshold,
                num_threshold=num_threshold,
                include_tests=False,
            ),
            ValueDrift(
                column="probability",
                method=num_method,
                threshold=number(params, "drift.prediction_threshold", 0, 10),
            ),
            ValueDrift(
                column="verdict",
                method=cat_method,
                threshold=number(params, "drift.prediction_threshold", 0, 10),
            ),
        ]
    )
    return report.run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        reference_data=Dataset.from_pandas(reference, data_definition=definition),
    )


def summarise(snapshot, features: list[str], params: dict) -> dict:
    scores = {}
    for metric in json.loads(snapshot.json())["metrics"]:
        config = metric["config"]
        if config["type"].endswith("ValueDrift"):
            scores[config["column"]] = (float(metric["value"]), float(config["threshold"]))
    drifted = [f for f in features if scores[f][0] >= scores[f][1]]
    share = len(drifted) / len(features)
    prediction = {c: scores[c][0] >= scores[c][1] for c in PREDICTION}
    return {
        "drift_share": round(share, 4),
        "drifted_columns": drifted,
        "dataset_drift": share > number(params, "drift.share_threshold", 0, 1),
        "prediction_drift_score": round(scores["probability"][0], 6),
        "verdict_drift_score": round(scores["verdict"][0], 6),
        "prediction_drift": any(prediction.values()),
        "column_scores": {c: round(s, 6) for c, (s, _) in scores.items()},
    }


def live_quality(current: pd.DataFrame) -> dict:
    """Quality on the logged answers whose true class came back as feedback. An uncertain
    verdict counts as 'do not eat': right for a poisonous mushroom, wrong for an edible one."""
    if "true_class" not in current:
        return {}
    labelled = current[current["true_class"].notna()]
    if labelled.empty:
        return {"labelled": 0}
    said_poisonous = labelled["verdict"] != "edible"
    truly_poisonous = labelled["true_class"] == "poisonous"
    false_edible = labelled[~said_poisonous & truly_poisonous]
    return {
        "labelled": len(labelled),
        "live_accuracy": round(float((said_poisonous == truly_poisonous).mean()), 6),
        "live_false_edible": len(false_edible),
        "false_edible_request_ids": false_edible["request_id"].tolist(),
    }
