"""Replay before promotion: the logged traffic and its feedback judged by the candidate.

Every answer in the prediction log of the candidate's dataset, and every exported labelled
answer (``mushroom.data.feedback``, ``data/feedback/labelled.parquet``) the log no longer holds
(rotated away since), is judged again by the candidate bundle, its description as logged
(readable names, ``missing``; NULL: unknown), through the judge the service answers with.
A description whose feedback label says poisonous and that the candidate answers edible
refuses the promotion. What changes against the logged answers (given by whichever
champions served then) is counted by (logged verdict, candidate's verdict), with the
answers that become edible. Answers of another dataset are skipped and counted.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from mushroom.core.catalogue import TARGET, get_catalogue
from mushroom.data import feedback
from mushroom.data.log_reading import exists, reading
from mushroom.data.prediction_log import LABEL, Location, columns
from mushroom.model.bundle import load_bundle
from mushroom.model.policy import EDIBLE

CHUNK_ROWS = 10_000
"""Rows read and judged at once: the judge's per-row arrays stay a few MB whatever the
log's size."""
LISTED = 100
"""Request ids kept in the report per list; the counts are always whole."""


class Tally:
    """The replay's figures, added up chunk by chunk: memory stays flat as the log grows."""

    def __init__(self) -> None:
        self.replayed = self.changed = self.new_edible = self.labelled = 0
        self.logged_false_edible = self.labelled_false_edible = 0
        self.pairs: Counter[tuple[str, str]] = Counter()
        self.answered_by: Counter[str] = Counter()
        self.new_edible_ids: list[str] = []
        self.false_edible: list[dict] = []

    def add(self, logged: pd.DataFrame, new: np.ndarray) -> None:
        old = logged["verdict"].to_numpy(dtype=object)
        poisonous = (logged[LABEL] == "poisonous").to_numpy()
        became_edible = (new == EDIBLE) & (old != EDIBLE)
        false_edible = poisonous & (new == EDIBLE)
        self.replayed += len(logged)
        self.pairs.update(zip(old.tolist(), new.tolist(), strict=True))
        self.changed += int((old != new).sum())
        self.answered_by.update(logged["model_version"].tolist())
        self.new_edible += int(became_edible.sum())
        room = LISTED - len(self.new_edible_ids)
        self.new_edible_ids += logged["request_id"][became_edible].head(room).tolist()
        self.labelled += int(logged[LABEL].notna().sum())
        self.logged_false_edible += int((poisonous & (old == EDIBLE)).sum())
        self.labelled_false_edible += int(false_edible.sum())
        room = LISTED - len(self.false_edible)
        self.false_edible += (
            logged.loc[false_edible, ["request_id", "logged_at", "model_version"]]
            .assign(logged_verdict=old[false_edible])
            .head(room)
            .to_dict("records")
        )


def read_exported(exported: Path, dataset: str) -> pd.DataFrame:
    """``dataset``'s exported labelled answers, checked as prepare checks them (a bad value
    raises ``FeedbackError``), in the log's columns."""
    if not exported.exists():
        return pd.DataFrame(columns=columns(dataset))
    labelled = feedback.read_labelled(exported, get_catalogue(dataset))
    return labelled.rename(columns={TARGET: LABEL})[columns(dataset)].reset_index(drop=True)


def judge_all(judge, logged: pd.DataFrame) -> np.ndarray:
    """The candidate's verdict on every logged description, ``CHUNK_ROWS`` at a time."""
    values, numbers = judge.scorer.index_frame(logged)
    chunks = [slice(start, start + CHUNK_ROWS) for start in range(0, len(logged), CHUNK_ROWS)]
    verdicts = [
        judge.judge(values[rows], numbers[rows], reasons=False).verdict.astype(object)
        for rows in chunks
    ]
    return np.concatenate(verdicts) if verdicts else np.empty(0, dtype=object)


def replay(log: Location, model: Path, policy: Path, exported: Path) -> dict:
    """What the candidate (``model``, ``policy``) answers to the log at ``log``, read in
    chunks, and to the labelled answers ``exported`` holds that the log does not: the
    figures ``reports/replay.json`` holds. Raises ``LogUnavailable`` for a log that cannot
    be read, ``FeedbackError`` for an exported dataset that cannot."""
    if not exists(log) and not exported.exists():
        return {"log": str(log), "replayed": 0, "note": "no prediction log: nothing to replay"}
    bundle = load_bundle(model, policy)
    judge, tally, others = bundle.judge(), Tally(), {}
    kept = read_exported(exported, bundle.dataset)
    in_log = np.zeros(len(kept), dtype=bool)
    if exists(log):
        with reading(log) as logged:
            counts = logged.count_by_dataset()
            others = {name: n for name, n in counts.items() if name != bundle.dataset}
            for chunk in logged.chunks(bundle.dataset, chunk_rows=CHUNK_ROWS):
                in_log |= kept["request_id"].isin(chunk["request_id"]).to_numpy()
                tally.add(chunk, judge_all(judge, chunk))
    gone = kept[~in_log]
    if len(gone):
        tally.add(gone, judge_all(judge, gone))
    return {
        "log": str(log),
        "dataset": bundle.dataset,
        "replayed": tally.replayed,
        "feedback_dataset": str(exported),
        "only_in_feedback_dataset": len(gone),
        "skipped_other_datasets": others,
        "answered_by": dict(tally.answered_by.most_common()),
        "changes": {f"{o} -> {n}": c for (o, n), c in sorted(tally.pairs.items())},
        "changed": tally.changed,
        "changed_share": round(tally.changed / tally.replayed, 6) if tally.replayed else 0.0,
        "new_edible": tally.new_edible,
        "new_edible_request_ids": tally.new_edible_ids,
        "labelled": tally.labelled,
        "logged_false_edible": tally.logged_false_edible,
        "labelled_false_edible": tally.labelled_false_edible,
        "false_edible": tally.false_edible,
    }


def figures(summary: dict) -> dict[str, str]:
    """The replay as MLflow tags, ``replay.<figure>``; ``replay.changes`` as JSON."""
    counts = {
        k: summary.get(k, 0)
        for k in (
            "replayed",
            "only_in_feedback_dataset",
            "changed",
            "changed_share",
            "new_edible",
            "labelled",
        )
    }
    counts |= {
        "labelled_false_edible": summary.get("labelled_false_edible", 0),
        "skipped": sum(summary.get("skipped_other_datasets", {}).values()),
        "changes": json.dumps(summary.get("changes", {})),
        "log": summary["log"],
    }
    return {f"replay.{k}": str(v) for k, v in counts.items()}


def describe(summary: dict) -> str:
    """One line: what was replayed and what changed."""
    if not summary["replayed"]:
        note = summary.get("note", f"no logged {summary.get('dataset')} answers")
        line = f"replay of {summary['log']}: {note}"
    else:
        moved = ", ".join(
            f"{pair} {n}"
            for pair, n in summary["changes"].items()
            if pair.split(" -> ")[0] != pair.split(" -> ")[1]
        )
        exported = summary["only_in_feedback_dataset"]
        source = summary["log"] + (
            f" and {summary['feedback_dataset']} ({exported} labelled answers only there)"
            if exported
            else ""
        )
        line = (
            f"replay of {source}: {summary['replayed']} logged {summary['dataset']} "
            f"answers judged again: {summary['changed']} changed "
            f"({summary['changed_share']:.1%}){f': {moved}' if moved else ''}; "
            f"{summary['new_edible']} newly edible; {summary['labelled']} labelled, "
            f"{summary['labelled_false_edible']} poisonous answered edible"
        )
    skipped = summary.get("skipped_other_datasets")
    if skipped:
        line += "; skipped " + ", ".join(f"{n} {name}" for name, n in skipped.items())
    return line


def refusals(summary: dict, report: Path, named: int = 10) -> list[str]:
    """One line per labelled poisonous description the candidate answers edible, the first
    ``named`` of them; ``report`` lists more."""
    lines = [
        f"request {row['request_id']} (logged {row['logged_at']}, answered "
        f"{row['logged_verdict']} by {row['model_version']}) is labelled poisonous and the "
        "candidate answers it edible"
        for row in summary.get("false_edible", [])[:named]
    ]
    more = summary.get("labelled_false_edible", 0) - len(lines)
    if more > 0:
        lines.append(
            f"and {more} more labelled poisonous descriptions it answers edible (see {report})"
        )
    return lines
