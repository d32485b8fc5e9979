"""Promote the model `dvc repro` produced: gate check, MLflow registry, BentoML store.

Only a model whose evaluate gate passed is promoted. Its whole judgement (the verdicts,
reasons and guidance the service gives, not the bare pipeline) is logged to its evaluate run
and registered in MLflow as ``mushroom-classifier`` (version tags ``gate: passed``,
``judgement: whole``); the caller hands over how it is logged (``log_judgement``, from the
serving wing, which this one may not import). It is saved to the BentoML model store
under the same name, labelled with its registry version, with its verdict policy
(``policy.json``: familiarity detector, calibration, thresholds) and a model card the
service answers ``GET /model`` from. Then the alias ``champion`` is pointed at it, which is
what the service serves at its next start; the move is kept in the alias's history
(mushroom.lifecycle.alias_moves). Before anything is registered, the logged traffic and its
feedback, and the exported labelled answers the log no longer holds, are replayed through the
model (mushroom.lifecycle.replay): it is refused if it answers edible a description labelled
poisonous, and what changes against the logged answers goes to ``reports/replay.json`` and to
the MLflow run and version as ``replay.*`` tags. Promotion is idempotent: a model is known by
the sha256 of its inputs (prepared data, model, policy, params), and promoting the same one
again reuses its registered version and store entry (a version registered before the
judgement was, holding the bare pipeline, is registered anew).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mushroom.core import paths
from mushroom.core.atomic import read_json, write_json
from mushroom.core.params import ParamsError, flatten, load_params
from mushroom.data.feedback import FeedbackError
from mushroom.data.prediction_log import LOG_HELP, Location, LogUnavailable, location, log_location
from mushroom.data.prepared import read_schema
from mushroom.lifecycle import alias_moves, replay, tracking
from mushroom.lifecycle.model_card import ModelCard
from mushroom.lifecycle.store_names import (
    ALIAS,
    GATE_TAG,
    JUDGEMENT_TAG,
    MODEL_FILE,
    NAME,
    POLICY_FILE,
    VERSION_LABEL,
    find_entry,
    timing_path,
)
from mushroom.model.bundle import read_policy
from mushroom.model.evaluation import failed_checks

BULKY = ("seen", "species", "poisonous_rows")
"""The detector's tables stay in policy.json: the card says how it was fitted."""


class PromotionRefused(RuntimeError):
    pass


def require_gate_passed(gate: dict) -> None:
    failed = failed_checks(gate)
    if failed:
        raise PromotionRefused(f"the evaluate gate failed: {'; '.join(failed)}")


def replay_traffic(
    client, run_id: str, log: Location, exported: Path, model: Path, policy: Path, out: Path
) -> dict:
    """Replay the log and the exported labels through the candidate; written to ``out`` and
    the run's tags whether or not it is refused."""
    try:
        summary = replay.replay(log, model, policy, exported)
    except LogUnavailable as exc:
        raise PromotionRefused(f"{exc}: cannot be replayed (name another with --log)") from exc
    except FeedbackError as exc:
        raise PromotionRefused(f"{exc}: cannot be replayed (name another with --feedback)") from exc
    write_json(out, summary)
    for key, value in replay.figures(summary).items():
        client.set_tag(run_id, key, value)
    refused = replay.refusals(summary, out)
    if refused:
        raise PromotionRefused("\n".join(f"replay of {log}: {line}" for line in refused))
    return summary


LogJudgement = Callable[[object, str, Path, Path, str], str]
"""(mlflow, run id, model, policy, dataset) -> the URI of the logged judgement."""


def register_in_mlflow(
    mlflow, client, judgement: Callable[[], str], digest: str, tags: dict
) -> str:
    """The registry version of the model with these inputs: the existing one, or the
    judgement ``judgement()`` logs, registered."""
    existing = [
        found
        for found in client.search_model_versions(
            f"name = '{NAME}' and tags.inputs_sha256 = '{digest}'"
        )
        if found.tags.get(JUDGEMENT_TAG) == "whole"
    ]
    if existing:
        version = existing[0].version
        # Versions registered before the tag existed passed the gate too.
        client.set_model_version_tag(NAME, version, GATE_TAG, "passed")
        for key, value in tags.items():
            if key.startswith("replay."):  # this promotion's replay, not an earlier one's
                client.set_model_version_tag(NAME, version, key, value)
    else:
        marks = {"inputs_sha256": digest, GATE_TAG: "passed", JUDGEMENT_TAG: "whole"}
        version = mlflow.register_model(judgement(), NAME, tags=tags | marks).version
    return str(version)


def save_to_bentoml(model_path: Path, policy_path: Path, card: ModelCard) -> str:
    import bentoml

    saved = find_entry(card.version, card.inputs_sha256)
    if saved is not None:
        return str(saved.tag)
    labels = {
        "dataset": card.dataset,
        "git_commit": card.git_commit[:12],
        VERSION_LABEL: card.version,
    }
    metadata = card.model_dump(include={"inputs_sha256", "version", "mlflow_run_id", "split"})
    with bentoml.models.create(NAME, labels=labels, metadata=metadata) as saved:
        Path(saved.path_of(MODEL_FILE)).write_bytes(model_path.read_bytes())
        Path(saved.path_of(POLICY_FILE)).write_bytes(policy_path.read_bytes())
        card.write(Path(saved.path))
    return str(saved.tag)


@dataclass
class Promoted:
    card: ModelCard
    bento_model: str
    replay: dict
    move: dict | None
    """The alias move, or None when the model already was the champion."""


def promote(
    log_judgement: LogJudgement,
    params_path: Path,
    prepared: Path,
    model: Path,
    policy: Path,
    reports: Path,
    train_info: Path,
    reason: str = "the evaluate gate passed",
    log: Location | None = None,
    exported: Path = paths.FEEDBACK,
) -> Promoted:
    params = load_params(params_path)
    require_gate_passed(read_json(reports / "gate.json"))
    metrics = read_json(reports / "metrics.json")
    document = read_policy(policy)
    digest = tracking.inputs_digest([prepared, model, policy], params)
    run_id = tracking.find_run(digest)
    if run_id is None:
        raise PromotionRefused(
            "MLflow has no run for this model: run `make run` (or "
            "`python -m mushroom.stages.evaluate --skip-if-logged`) first"
        )
    mlflow = tracking.configure()
    client = mlflow.MlflowClient()
    log = log or log_location()
    replayed = replay_traffic(client, run_id, log, exported, model, policy, reports / "replay.json")
    schema, info = read_schema(prepared), read_json(train_info)
    timing = timing_path(train_info)
    info |= read_json(timing) if timing.exists() else {"trained_at": None, "training_seconds": None}
    tags = {"git_commit": tracking.git_commit(), "dataset": schema.dataset, "split": schema.split}
    figures = flatten({k: metrics[k] for k in ("test", "cv")})
    tags |= {k: str(v) for k, v in figures.items() if isinstance(v, int | float)}
    tags |= replay.figures(replayed)
    version = register_in_mlflow(
        mlflow,
        client,
        lambda: log_judgement(mlflow, run_id, model, policy, schema.dataset),
        digest,
        tags,
    )
    card = ModelCard(
        name=NAME,
        version=version,
        mlflow_run_id=run_id,
        inputs_sha256=digest,
        dataset=schema.dataset,
        split=schema.split,
        features=schema.features,
        git_commit=tags["git_commit"],
        model=info["model"],
        encoder=params.featurize.encoder,
        trained_at=info["trained_at"],
        training_seconds=info["training_seconds"],
        params=params.as_dict(),
        metrics=metrics,
        policy=document["policy"],
        held_out=document["held_out"],
        familiarity={k: v for k, v in document["familiarity"].items() if k not in BULKY},
    )
    bento_model = save_to_bentoml(model, policy, card)
    # Last: the alias never points at a version the service could not load.
    move = alias_moves.move_champion(client, version, "promote", reason)
    return Promoted(card, bento_model, replayed, move)


def main(argv: list[str], log_judgement: LogJudgement) -> int:
    parser = argparse.ArgumentParser(prog="mushroom promote", description=__doc__.splitlines()[0])
    inputs = {
        "--params": (paths.PARAMS, "the params the model was trained with"),
        "--prepared": (paths.PREPARED, "the prepared splits it was trained on"),
        "--model": (paths.MODEL, "the trained pipeline"),
        "--policy": (paths.POLICY, "its verdict policy"),
        "--reports": (paths.REPORTS, "evaluate's reports: gate.json, metrics.json"),
        "--train-info": (paths.TRAIN_INFO, "what train recorded about the fit"),
    }
    for option, (default, what) in inputs.items():
        parser.add_argument(option, default=default, type=Path, help=f"{what} (%(default)s)")
    parser.add_argument(
        "--log",
        type=location,
        help=f"the prediction log to replay: {LOG_HELP}",
    )
    parser.add_argument(
        "--feedback",
        default=paths.FEEDBACK,
        type=Path,
        help="the exported labelled answers replayed too (default: %(default)s)",
    )
    parser.add_argument(
        "--reason", default="the evaluate gate passed", help="why, kept in the champion history"
    )
    args = parser.parse_args(argv)
    try:
        promoted = promote(
            log_judgement,
            args.params,
            args.prepared,
            args.model,
            args.policy,
            args.reports,
            args.train_info,
            args.reason,
            args.log,
            args.feedback,
        )
    except (PromotionRefused, ParamsError) as exc:
        for line in str(exc).splitlines():  # a ParamsError: one line per problem
            print(f"promote: refused: {line}", file=sys.stderr)
        return 3
    move = promoted.move
    print(f"promote: {replay.describe(promoted.replay)}")
    was = f" (was version {move['from']})" if move and move["from"] else ""
    print(
        f"promote: {NAME} version {promoted.card.version} is '{ALIAS}' in MLflow{was}; "
        f"BentoML model {promoted.bento_model}"
    )
    if move:
        print("promote: a running server keeps its model: restart it (make serve) to serve this")
    return 0
