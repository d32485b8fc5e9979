"""Drift between the training data and what the service sees: the computations behind the
drift stage (see ``mushroom.stages.drift`` for the method and its defaults)."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mushroom.core import paths
from mushroom.core.catalogue import NOT_RECORDED
from mushroom.core.params import Drift, ParamsError
from mushroom.data.log_reading import reading
from mushroom.data.prediction_log import LABEL, Location, columns
from mushroom.data.prepared import TEST_FILE, Schema

if TYPE_CHECKING:  # only named in annotations: the judge is scipy's and sklearn's
    from mushroom.model.policy import Judge

PREDICTION = ["probability", "verdict"]


def scenario_rows(test: pd.DataFrame, params: Drift, split: str) -> pd.DataFrame:
    if params.scenario == "unseen_species" and split != "species":
        raise ParamsError(
            "drift.scenario = 'unseen_species' needs a model of a species split; "
            "this one was prepared with a random split: run prepare again"
        )
    rows = min(params.scenario_rows, len(test))
    rng = np.random.default_rng(params.seed)
    current = test.iloc[rng.choice(len(test), rows, replace=False)].copy()
    if params.scenario == "shift":
        moved = rng.random(rows) < params.shift_fraction
        current.loc[moved, params.shift_column] = params.shift_to
    return current


def sampled(chunks, limit: int, seed: int) -> tuple[pd.DataFrame, int]:
    """At most ``limit`` rows of the ``chunks``, a uniform sample (each row keeps a random
    key; the ``limit`` smallest keys stay) in their order, and how many rows there were:
    a window of millions of answers is judged in bounded memory."""
    rng = np.random.default_rng(seed)
    kept, keys, seen = None, np.empty(0), 0
    for chunk in chunks:
        chunk = chunk.assign(_position=np.arange(seen, seen + len(chunk)))
        seen += len(chunk)
        kept = pd.concat([kept, chunk], ignore_index=True) if kept is not None else chunk
        keys = np.concatenate([keys, rng.random(len(chunk))])
        if len(kept) > limit:
            chosen = np.sort(np.argpartition(keys, limit)[:limit])
            kept, keys = kept.iloc[chosen].reset_index(drop=True), keys[chosen]
    if kept is None:
        return pd.DataFrame(), 0
    return kept.sort_values("_position").drop(columns="_position").reset_index(drop=True), seen


def evidently_drift_share(params: Drift, n_traits: int) -> float:
    """Evidently calls a dataset drifted when the drifted share is >= its ``drift_share``;
    ``drift.share_threshold`` means "more than", 0 meaning any trait. A share of
    ``n_traits`` above the threshold, as few decimals as still tell it from the share
    below, makes the HTML's verdict agree with drift.json's and print e.g. 0.33, not 1/3."""
    above = math.floor(params.share_threshold * n_traits + 1e-9) + 1
    for decimals in range(2, 7):
        share = math.floor(above / n_traits * 10**decimals) / 10**decimals
        if share > (above - 1) / n_traits:
            return share
    return above / n_traits


def judged_traits(reference: pd.DataFrame, current: pd.DataFrame, features: list[str]):
    """Traits with a given value on both sides: value drift compares given values only
    (Evidently drops unknowns, and cannot compare a column with none)."""
    return [f for f in features if reference[f].notna().any() and current[f].notna().any()]


SIDES, KINDS = ("current", "reference"), ("unknown", "not_recorded")


def given_values(frame: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """``frame`` with the data's "not recorded" as no value: value drift compares the values
    a mushroom can have (a person can never give "not recorded"; see ``missingness``)."""
    recorded = {f: frame[f].mask(frame[f] == NOT_RECORDED) for f in features}
    return frame.assign(**{f: column for f, column in recorded.items() if column.dtype == object})


def missingness(reference: pd.DataFrame, current: pd.DataFrame, features: list[str]) -> dict:
    """Per trait with any, the share left out of the description (``unknown``: NULL in the
    log) and the share the data records as ``not_recorded`` (the training split: a served
    answer never has it), reference and current: reported apart from value drift, which a
    few partial descriptions would otherwise fake."""
    shares = {}
    for trait in features:
        figures = {
            f"{side}_{kind}": round(float(share), 4)
            for side, frame in (("reference", reference), ("current", current))
            for kind, share in (
                ("unknown", frame[trait].isna().mean() if len(frame) else 0.0),
                ("not_recorded", (frame[trait] == NOT_RECORDED).mean() if len(frame) else 0.0),
            )
        }
        if any(figures.values()):
            shares[trait] = figures
    return shares


def with_banner(page: str, summary: dict) -> str:
    """``page`` (Evidently's HTML) with what was judged (the source, or why drift was not
    judged) and the missingness at its top: Evidently's report has no place for free text."""
    cells = "".join(
        f"<tr><td>{html.escape(trait)}</td>"
        + "".join(f"<td>{s[f'{side}_{kind}']:.1%}</td>" for kind in KINDS for side in SIDES)
        + "</tr>"
        for trait, s in summary["missingness"].items()
    )
    table = (
        "<table><tr><th>trait</th><th>left out</th><th>(training)</th><th>not recorded</th>"
        f"<th>(training)</th></tr>{cells}</table>"
        if cells
        else "<p>No trait left out or not recorded.</p>"
    )
    lines = "".join(f"<p>{html.escape(line)}</p>" for line in report_lines(summary))
    box = (
        f'<div id="mushroom-drift" style="font-family:sans-serif;padding:8px">{lines}{table}</div>'
    )
    return page.replace("<body>", f"<body>{box}", 1)


def report_lines(summary: dict) -> list[str]:
    """What was judged against what, and the verdict, rounded as people read it."""
    lines = [
        f"source {summary['source']} ({summary['current']}) vs "
        f"{summary['n_reference']} training rows"
    ]
    if not summary["drift_judged"]:
        lines[0] += f": drift not judged: {summary['reason']}"
    else:
        drifted = ", ".join(summary["drifted_columns"])
        lines[0] += (
            f": drift share {summary['drift_share']:.2f}{f' ({drifted})' if drifted else ''}; "
            f"prediction drift {summary['prediction_drift_score']:.3g}; "
            f"unfamiliar {summary['unfamiliar_share']:.1%}"
        )
    if summary["labelled"]:
        lines.append(
            f"{summary['labelled']} labelled answers: accuracy {summary['live_accuracy']:.3g}, "
            f"{summary['live_false_edible']} poisonous answered edible"
        )
    return lines


def drift_report(reference: pd.DataFrame, current: pd.DataFrame, features, numeric, params: Drift):
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(
        numerical_columns=numeric + ["probability"],
        categorical_columns=[f for f in features if f not in numeric] + ["verdict"],
    )
    report = Report(
        [
            DataDriftPreset(
                columns=features,
                drift_share=evidently_drift_share(params, len(features)),
                cat_method=params.categorical_method,
                num_method=params.numerical_method,
                cat_threshold=params.categorical_threshold,
                num_threshold=params.numerical_threshold,
                include_tests=False,
            ),
            ValueDrift(
                column="probability",
                method=params.numerical_method,
                threshold=params.prediction_threshold,
            ),
            ValueDrift(
                column="verdict",
                method=params.categorical_method,
                threshold=params.prediction_threshold,
            ),
        ]
    )
    reference, current = shared_categories(reference, current, definition.categorical_columns)
    return report.run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        reference_data=Dataset.from_pandas(reference, data_definition=definition),
    )


def shared_categories(reference: pd.DataFrame, current: pd.DataFrame, columns: list[str]):
    """Both frames with ``columns`` as categoricals over the union of their values: Evidently
    counts, deduplicates and NaN-checks each column several times: ~1.3 s faster on integer
    codes than on Python strings for 61k rows against 49k; the counts, so the scores, match."""
    ref = {c: reference[c].astype("category") for c in columns}
    cur = {c: current[c].astype("category") for c in columns}
    union = {c: ref[c].cat.categories.union(cur[c].cat.categories) for c in columns}
    return (
        reference.assign(**{c: ref[c].cat.set_categories(union[c]) for c in columns}),
        current.assign(**{c: cur[c].cat.set_categories(union[c]) for c in columns}),
    )


def summarise(snapshot, features: list[str], params: Drift) -> dict:
    """Value drift of the judged ``features`` and of the answers, as drift.json says it."""
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
        "dataset_drift": share > params.share_threshold,
        "prediction_drift_score": round(scores["probability"][0], 6),
        "verdict_drift_score": round(scores["verdict"][0], 6),
        "prediction_drift": any(prediction.values()),
        "column_scores": {c: round(s, 6) for c, (s, _) in scores.items()},
        # what each alarm is judged against, so the alert line can say it
        "thresholds": {
            "prediction": params.prediction_threshold,
            "share": params.share_threshold,
            "unfamiliar": params.max_unfamiliar_share,
        },
    }


def answered_class(verdicts: pd.Series) -> pd.Series:
    """The class an answer acted on: an uncertain verdict means 'do not eat', right for a
    poisonous mushroom and wrong for an edible one."""
    return verdicts.where(verdicts == "edible", "poisonous")


def live_quality(labelled: pd.DataFrame) -> dict:
    """Quality on the labelled answers, the figures the report's quality section shows."""
    if labelled.empty:
        return {"labelled": 0, "live_false_edible": 0}
    said_poisonous = answered_class(labelled["verdict"]) == "poisonous"
    truly_poisonous = labelled[LABEL] == "poisonous"
    false_edible = labelled[~said_poisonous & truly_poisonous]
    return {
        "labelled": len(labelled),
        "live_accuracy": round(float((said_poisonous == truly_poisonous).mean()), 6),
        "live_false_edible": len(false_edible),
        "false_edible_request_ids": false_edible["request_id"].tolist(),
    }


def with_quality_section(snapshot, labelled: pd.DataFrame):
    """The drift snapshot (None if drift was not judged) followed by Evidently's
    classification quality on the labelled answers, if any. Evidently 0.7 runs a report on
    one pair of datasets and has no call to join two, so the second report's results and
    widgets are appended to the first's snapshot model, which the public ``Run.load_model``
    turns back into one HTML."""
    if labelled.empty or snapshot is None:
        return snapshot if labelled.empty else quality_report(labelled)
    from evidently import Run

    joined, quality = snapshot.to_snapshot_model(), quality_report(labelled).to_snapshot_model()
    joined.metric_results |= quality.metric_results
    joined.top_level_metrics += quality.top_level_metrics
    joined.widgets += quality.widgets
    joined.tests_widgets += quality.tests_widgets
    return Run.load_model(joined)


def quality_report(labelled: pd.DataFrame):
    """Scores the answers given, not P(poisonous): given probabilities, Evidently would cut
    them at its own threshold. Poisonous is the positive class: recall is the share of
    poisonous mushrooms told not to eat, FNR the share answered edible. Evidently's binary
    rates need both classes among truths and answers; with one, accuracy and the per-class
    table are what it can compute."""
    import warnings

    from evidently import BinaryClassification, DataDefinition, Dataset, Report
    from evidently.metrics import Accuracy
    from evidently.presets import ClassificationPreset, ClassificationQualityByLabel
    from sklearn.exceptions import UndefinedMetricWarning

    frame = pd.DataFrame(
        {"true_class": labelled["true_class"], "answered": answered_class(labelled["verdict"])}
    )
    definition = DataDefinition(
        categorical_columns=["true_class", "answered"],
        classification=[
            BinaryClassification(
                target="true_class", prediction_labels="answered", pos_label="poisonous"
            )
        ],
    )
    both = len(set(frame["true_class"]) | set(frame["answered"])) == 2
    report = Report(
        [ClassificationPreset()] if both else [Accuracy(), ClassificationQualityByLabel()]
    )
    with warnings.catch_warnings():
        # Expected with few labels, and shown in the report: a class never answered has no
        # precision (Evidently shows 0); one class only makes a one-cell confusion matrix.
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        warnings.filterwarnings("ignore", "A single label was found", UserWarning)
        return report.run(Dataset.from_pandas(frame, data_definition=definition), None)


def current_rows(
    params: Drift, log: Location, prepared_dir: Path, schema: Schema
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """The labelled answers (all of them, wherever they fall), the window judged for drift
    (the log's, or the scenario's), and what it is. The log is read in chunks: only the
    labelled answers and the window (at most ``drift.max_rows``: a uniform sample of a
    larger one) are held."""
    empty = pd.DataFrame(columns=columns(schema.dataset))
    if log == paths.SNAPSHOT and not log.exists():
        labelled, current = empty, empty
        source = f"{log}: none taken yet (mushroom monitor snapshot), no answers"
    else:
        with reading(log) as logged:
            total = logged.count_by_dataset().get(schema.dataset, 0)
            labelled = list(logged.chunks(schema.dataset, labelled_only=True))
            labelled = pd.concat(labelled, ignore_index=True) if labelled else empty
            window = logged.chunks(schema.dataset, days=params.window_days, last=params.window_rows)
            current, in_window = sampled(window, params.max_rows, params.seed)
        current = current if len(current) else empty
        source = f"{log}: {len(current)} of {total} logged {schema.dataset} answers"
        if in_window > len(current):
            source += f" (a uniform sample of the {in_window} in the window)"
    if params.source == "scenario":
        test = pd.read_parquet(prepared_dir / TEST_FILE)
        current = scenario_rows(test, params, schema.split)
        source = f"{params.scenario}: {len(current)} test-split rows"
    return labelled, current, source


def answered(judge: Judge, frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """Traits plus P(poisonous), verdict and unfamiliar; logged rows keep what was answered."""
    out = frame[schema.features].copy()
    columns_answered = ["probability", "verdict", "unfamiliar"]
    if set(columns_answered) <= set(frame.columns):
        return out.assign(**{c: frame[c].to_numpy() for c in columns_answered})
    judgement = judge.judge(*judge.scorer.index_frame(frame), reasons=False)
    return out.assign(
        probability=judgement.probability,
        verdict=judgement.verdict,
        unfamiliar=~judgement.familiar,
    )


def judged(
    params: Drift, schema: Schema, reference: pd.DataFrame, current: pd.DataFrame, source: str
):
    """drift.json's figures, and Evidently's run when there were rows enough to judge."""
    numeric = [f for f in schema.features if schema.catalogue.trait(f).is_numeric]
    summary = {"source": params.source, "current": source, "n_reference": len(reference)}
    summary |= {"n_current": len(current), "drift_judged": len(current) >= params.min_rows}
    summary |= {"missingness": missingness(reference, current, schema.features)}
    if not summary["drift_judged"]:
        summary["reason"] = (
            f"{len(current)} logged rows, fewer than drift.min_rows = {params.min_rows}"
        )
        return summary, None
    given = [given_values(f, schema.features) for f in (reference, current)]
    traits = judged_traits(*given, schema.features)
    frames = [f[[*traits, "probability", "verdict"]] for f in given]
    evidently_run = drift_report(*frames, traits, [f for f in numeric if f in traits], params)
    summary |= {
        "reference_unfamiliar_share": round(float(reference["unfamiliar"].mean()), 6),
        "unfamiliar_share": round(float(current["unfamiliar"].astype(bool).mean()), 6),
        "traits_without_values": [f for f in schema.features if f not in traits],
    }
    summary["unfamiliar_alarm"] = summary["unfamiliar_share"] > params.max_unfamiliar_share
    return summary | summarise(evidently_run, traits, params), evidently_run
