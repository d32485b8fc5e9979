"""Promote the model `dvc repro` produced: gate check, MLflow registry, BentoML store.

Only a model whose evaluate gate passed is promoted. It is registered in MLflow as
``mushroom-classifier`` with alias ``champion`` and saved to the BentoML model store under
the same name, with its verdict policy (``policy.json``: familiarity detector,
calibration, thresholds) and a model card the service answers ``GET /model`` from.
Promotion is idempotent: a model is known by the sha256 of its inputs (prepared data,
model, policy, params),
and promoting the same one again reuses its registered version and store entry.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mushroom import dataset, tracking
from mushroom.fsutil import read_json
from mushroom.modelstore import (
    ALIAS,
    CARD_FILE,
    DEFAULT_TAG,
    MODEL_FILE,
    NAME,
    POLICY_FILE,
    timing_path,
)
from mushroom.params import ParamsError, flatten, load_params

BULKY = ("seen", "species")
"""The detector's tables stay in policy.json: the card says how it was fitted."""


class PromotionRefused(RuntimeError):
    pass


def require_gate_passed(gate: dict) -> None:
    failed = [c for c in gate["checks"] if not c["passed"]]
    if failed:
        reasons = "; ".join(
            f"{c['metric']} = {c['value']:g} exceeds the limit {c['limit']:g} by {c['excess']:g}"
            for c in failed
        )
        raise PromotionRefused(f"the evaluate gate failed: {reasons}")


def register_in_mlflow(run_id: str, digest: str, tags: dict) -> str:
    mlflow = tracking.configure()
    client = mlflow.MlflowClient()
    existing = client.search_model_versions(f"name = '{NAME}' and tags.inputs_sha256 = '{digest}'")
    if existing:
        version = existing[0].version
    else:
        version = mlflow.register_model(
            f"runs:/{run_id}/model", NAME, tags=tags | {"inputs_sha256": digest}
        ).version
    client.set_registered_model_alias(NAME, ALIAS, version)
    return str(version)


def save_to_bentoml(model_path: Path, policy_path: Path, card: dict) -> str:
    import bentoml

    try:
        latest = bentoml.models.get(DEFAULT_TAG)
    except bentoml.exceptions.NotFound:
        latest = None
    if latest is not None and latest.info.metadata.get("inputs_sha256") == card["inputs_sha256"]:
        return str(latest.tag)
    labels = {
        "dataset": card["dataset"],
        "git_commit": card["git_commit"][:12],
        "mlflow_version": card["version"],
    }
    metadata = {k: card[k] for k in ("inputs_sha256", "version", "mlflow_run_id", "split")}
    with bentoml.models.create(NAME, labels=labels, metadata=metadata) as saved:
        Path(saved.path_of(MODEL_FILE)).write_bytes(model_path.read_bytes())
        Path(saved.path_of(POLICY_FILE)).write_bytes(policy_path.read_bytes())
        Path(saved.path_of(CARD_FILE)).write_text(json.dumps(card, indent=2, default=str))
    return str(saved.tag)


def promote(
    params_path: Path, prepared: Path, model: Path, policy: Path, reports: Path, train_info: Path
) -> dict:
    params = load_params(params_path)
    require_gate_passed(read_json(reports / "gate.json"))
    metrics = read_json(reports / "metrics.json")
    document = read_json(policy)
    digest = tracking.inputs_digest([prepared, model, policy], params)
    run_id = tracking.find_run(digest)
    if run_id is None:
        raise PromotionRefused(
            "MLflow has no run for this model: run `make run` (or "
            "`python -m mushroom.stages.evaluate --skip-if-logged`) first"
        )
    schema, info = dataset.read_schema(prepared), read_json(train_info)
    timing = timing_path(train_info)
    info |= read_json(timing) if timing.exists() else {"trained_at": None, "training_seconds": None}
    tags = {"git_commit": tracking.git_commit(), "dataset": schema.dataset, "split": schema.split}
    figures = flatten({k: metrics[k] for k in ("test", "cv")})
    tags |= {k: str(v) for k, v in figures.items() if isinstance(v, int | float)}
    version = register_in_mlflow(run_id, digest, tags)
    card = {
        "name": NAME,
        "version": version,
        "mlflow_run_id": run_id,
        "inputs_sha256": digest,
        "dataset": schema.dataset,
        "split": schema.split,
        "features": schema.features,
        "git_commit": tags["git_commit"],
        "model": info["model"],
        "encoder": params.featurize.encoder,
        "trained_at": info["trained_at"],
        "training_seconds": info["training_seconds"],
        "params": params.as_dict(),
        "metrics": metrics,
        "policy": document["policy"],
        "held_out": document["held_out"],
        "familiarity": {k: v for k, v in document["familiarity"].items() if k not in BULKY},
    }
    card["bento_model"] = save_to_bentoml(model, policy, card)
    return card


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", type=Path)
    parser.add_argument("--prepared", default="data/prepared", type=Path)
    parser.add_argument("--model", default="models/model.joblib", type=Path)
    parser.add_argument("--policy", default="models/policy.json", type=Path)
    parser.add_argument("--reports", default="reports", type=Path)
    parser.add_argument("--train-info", default="models/train_info.json", type=Path)
    args = parser.parse_args(argv)
    try:
        card = promote(
            args.params, args.prepared, args.model, args.policy, args.reports, args.train_info
        )
    except (PromotionRefused, ParamsError) as exc:
        for line in str(exc).splitlines():  # a ParamsError: one line per problem
            print(f"promote: refused: {line}", file=sys.stderr)
        return 3
    print(
        f"promote: {NAME} version {card['version']} is '{ALIAS}' in MLflow; "
        f"BentoML model {card['bento_model']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
