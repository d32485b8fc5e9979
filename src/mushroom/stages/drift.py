"""drift: have the described mushrooms or the verdicts moved away from training? (Evidently)

Reference: the training split with the model's answers on it (judged by the model's own
verdict policy, ``models/policy.json``, as the service judges). Current, as
``drift.source`` says: ``log``, the snapshot of the service's prediction log that
``mushroom monitor snapshot`` took (``data/monitoring/window.parquet``, versioned by DVC;
the last ``drift.window_rows`` rows and/or ``drift.window_days`` days up to the newest),
judged for drift only from ``drift.min_rows`` rows on; or ``scenario``, built
deterministically from the test split: ``none`` (a plain sample), ``shift`` (a trait moved
to one value in a share of rows), ``unseen_species`` (secondary, species split: the
held-out species). Value drift compares given values: how often a trait was left out
(or recorded ``missing``) is reported apart. Only distance methods are offered: a trait
drifts when its distance is at least its threshold. Chi-square p-values flag unshifted
columns at tens of thousands of rows, so the defaults (Jensen-Shannon, Wasserstein, 0.1)
judge effect size. Labelled answers in the log (all of it, not just the window), whatever
their number and the source, are scored: false edibles are named, and drift.html ends
with Evidently's classification quality. The share of unfamiliar descriptions
(``mushroom.familiarity``) is reported too. Every run is also kept, outside DVC, in an
Evidently workspace (``--history``, ``mushroom.history``): its outputs do not depend on it.
"""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path

import pandas as pd

from mushroom import dataset, history
from mushroom.bundle import load_bundle
from mushroom.fsutil import atomic_path, write_json
from mushroom.monitoring import (
    SNAPSHOT_PATH,
    drift_report,
    given_values,
    judged_traits,
    labelled_rows,
    live_quality,
    missingness,
    read_logged,
    report_lines,
    scenario_rows,
    summarise,
    window,
    with_banner,
    with_quality_section,
)
from mushroom.params import ParamsError, load_params
from mushroom.predlog import LogUnavailable, columns
from mushroom.stages import fail


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", type=Path)
    parser.add_argument("--prepared", default="data/prepared", type=Path)
    parser.add_argument("--model", default="models/model.joblib", type=Path)
    parser.add_argument("--policy", default="models/policy.json", type=Path)
    parser.add_argument(
        "--log", default=SNAPSHOT_PATH, type=Path, help="a snapshot (.parquet) or a live log"
    )
    parser.add_argument("--json", default="reports/drift.json", type=Path)
    parser.add_argument("--html", default="reports/drift.html", type=Path)
    parser.add_argument(
        "--history", default=history.default_folder(), type=Path, help="where every run is kept"
    )
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params).drift
        train, schema = dataset.load_split(args.prepared, dataset.TRAIN_FILE)
        before_any_snapshot = args.log == SNAPSHOT_PATH and not args.log.exists()
        logged = (
            pd.DataFrame(columns=columns(schema.dataset))
            if before_any_snapshot
            else read_logged(args.log, schema.dataset)
        )
        current = window(logged, params)
        source = (
            f"{args.log}: none taken yet (mushroom monitor snapshot), no answers"
            if before_any_snapshot
            else f"{args.log}: {len(current)} of {len(logged)} logged {schema.dataset} answers"
        )
        if params.source == "scenario":
            test = pd.read_parquet(args.prepared / dataset.TEST_FILE)
            current = scenario_rows(test, params, schema.split)
            source = f"{params.scenario}: {len(current)} test-split rows"
    except (ParamsError, LogUnavailable) as exc:
        return fail("drift", exc)
    judge = load_bundle(args.model, args.policy).judge()
    numeric = [f for f in schema.features if schema.catalogue.trait(f).is_numeric]

    def with_answers(frame: pd.DataFrame) -> pd.DataFrame:
        """Traits plus P(poisonous), verdict and unfamiliar; logged rows keep what was
        answered."""
        out = frame[schema.features].copy()
        answered = ["probability", "verdict", "unfamiliar"]
        if set(answered) <= set(frame.columns):
            return out.assign(**{c: frame[c].to_numpy() for c in answered})
        judgement = judge.judge(*judge.scorer.index_frame(frame), reasons=False)
        return out.assign(
            probability=judgement.probability,
            verdict=judgement.verdict,
            unfamiliar=~judgement.familiar,
        )

    reference, current = with_answers(train), with_answers(current)
    summary = {"source": params.source, "current": source, "n_reference": len(reference)}
    summary |= {"n_current": len(current), "drift_judged": len(current) >= params.min_rows}
    summary |= {"missingness": missingness(reference, current, schema.features)}
    evidently_run = None
    if summary["drift_judged"]:
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
        summary |= summarise(evidently_run, traits, params)
    else:
        summary["reason"] = (
            f"{len(current)} logged rows, fewer than drift.min_rows = {params.min_rows}"
        )
    summary |= live_quality(logged)
    page = (
        with_quality_section(evidently_run, logged).get_html_str(as_iframe=False)
        if evidently_run is not None or summary["labelled"]
        else "<html><body></body></html>"
    )
    with atomic_path(args.html) as tmp:
        tmp.write_text(with_banner(page, summary), encoding="utf-8")
    write_json(args.json, summary)
    print(f"drift: {report_lines(summary)[0]}")
    for request_id in summary.get("false_edible_request_ids", []):
        print(f"drift: FALSE EDIBLE: request {request_id} was answered edible; it is poisonous")
    judged = params.scenario if params.source == "scenario" else args.log.name
    try:
        key = history.run_key(params, [args.model, args.policy], [current, labelled_rows(logged)])
        kept = history.record(args.history, summary, key, judged)
    except OSError as exc:
        return fail("drift", f"history not kept in {args.history}: {exc}")
    print(f"drift: history: {'kept' if kept else 'already kept'} in {args.history}")
    return 0


if __name__ == "__main__":
    # Importing Evidently builds ~300k objects that live until exit; cyclic GC passes over
    # them cost ~0.6 s while it imports and ~1 s in the interpreter's final collection,
    # which skips frozen objects. Cycles made here grow with the metrics, not the rows:
    # GC off changes peak RSS by < 3 % (0.6 GB at 61k logged rows, 0.9 GB at 183k).
    gc.disable()
    code = main()
    gc.freeze()
    sys.exit(code)
