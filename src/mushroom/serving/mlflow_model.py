"""The promoted model as an MLflow pyfunc that carries the whole judgement: for a DataFrame of
descriptions, what ``POST /classify`` answers (verdict, P(poisonous) and its range, whether
edible is still possible, what to check next, reasons, unknown traits), through the same
validation, model and verdict policy (``Classifier``).

The registry held the bare scikit-learn pipeline before: its ``predict`` said class 0
(edible) for 125 of 500 random descriptions the service answered uncertain, so
``mlflow models serve`` or a Spark job built on the registry skipped every safety rule.
Promotion registers this instead (``mushroom promote`` hands ``log_judgement`` to
mushroom.lifecycle.promotion, which may not import the serving wing).

Lists are JSON text in their columns (Spark and CSV take a string, not a nested list);
a value no trait may take stops ``predict`` with a ValueError naming row, column and value.
A column that is no trait is dropped by MLflow's schema enforcement, with its warning: that
trait is then unknown, which never makes an answer edible that knowing it would not.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import mlflow.pyfunc
import pandas as pd
from pydantic import ValidationError

from mushroom.core.catalogue import DatasetCatalogue
from mushroom.core.paths import CHECKOUT
from mushroom.core.text import quoted
from mushroom.lifecycle.store_names import MODEL_FILE, POLICY_FILE
from mushroom.serving.csv_scoring import Problems

ARTIFACT = "judgement"
"""The logged model's name in its run (the bare pipeline stays ``model``)."""
CHUNK = 1000
ANSWER_COLUMNS = {
    "verdict": "string",
    "probability_poisonous": "double",
    "probability_low": "double",
    "probability_high": "double",
    "edible_possible": "boolean",
    "check_next": "string",
    "reasons": "string",
    "unknown_traits": "string",
}
REQUIREMENTS = CHECKOUT / "src" / "requirements-serve.txt"
"""The serving pins exported from uv.lock: the model's environment is the service's, plus
MLflow itself."""


def _unknown(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


class Judgement(mlflow.pyfunc.PythonModel):
    """``mlflow.pyfunc.load_model(...).predict(frame)``: one answer row per description row."""

    def load_context(self, context) -> None:
        from mushroom.serving.classifier import Classifier

        self.classifier = Classifier(Path(context.artifacts["bundle"]), version=ARTIFACT)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        mushrooms = self.validated(model_input)
        answers = []
        for start in range(0, len(mushrooms), CHUNK):
            answers += self.classifier.classify(mushrooms[start : start + CHUNK])[0]
        return pd.DataFrame(
            {
                "verdict": [a["verdict"] for a in answers],
                "probability_poisonous": [a["probability_poisonous"] for a in answers],
                "probability_low": [a["probability_range"][0] for a in answers],
                "probability_high": [a["probability_range"][1] for a in answers],
                "edible_possible": [a["edible_possible"] for a in answers],
                "check_next": [json.dumps(a["check_next"]) for a in answers],
                "reasons": [json.dumps(a["reasons"]) for a in answers],
                "unknown_traits": [json.dumps(a["unknown_traits"]) for a in answers],
            },
            index=model_input.index,
        )

    def validated(self, frame: pd.DataFrame) -> list[dict]:
        """Each row as the API validates a mushroom: a missing cell (None, NaN) is unknown."""
        mushrooms, problems = [], Problems()
        for position, row in enumerate(frame.to_dict(orient="records")):
            given = {
                name: value.item() if hasattr(value, "item") else value
                for name, value in row.items()
                if not _unknown(value)
            }
            try:
                mushrooms.append(self.classifier.mushroom(given))
            except ValidationError as exc:
                for e in exc.errors():
                    where = ".".join(map(str, e["loc"]))
                    problems.add(f"row {position}: {where}: {quoted(e['input'])}: {e['msg']}")
        problems.raise_any()  # an InputError, a ValueError
        return mushrooms


def signature(catalogue: DatasetCatalogue):
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    inputs = Schema(
        [
            ColSpec("double" if t.is_numeric else "string", t.name, required=False)
            for t in catalogue.traits
        ]
    )
    outputs = Schema([ColSpec(kind, name) for name, kind in ANSWER_COLUMNS.items()])
    return ModelSignature(inputs=inputs, outputs=outputs)


def example(catalogue: DatasetCatalogue) -> pd.DataFrame:
    """Two descriptions: the first trait's first value alone, and nothing known."""
    first = catalogue.traits[0]
    value = 1.0 if first.is_numeric else first.describable_values[0]
    return pd.DataFrame({first.name: [value, None]})


def log_judgement(mlflow_module, run_id: str, model: Path, policy: Path, dataset: str) -> str:
    """Logs the judgement of ``model`` and ``policy`` into the evaluate run ``run_id`` and
    returns its model URI, for promotion to register."""
    from mushroom.core.catalogue import get_catalogue

    catalogue = get_catalogue(dataset)
    requirements = [
        line for line in REQUIREMENTS.read_text().splitlines() if line and line[0] != "#"
    ]
    with tempfile.TemporaryDirectory() as folder:
        shutil.copyfile(model, Path(folder, MODEL_FILE))
        shutil.copyfile(policy, Path(folder, POLICY_FILE))
        with mlflow_module.start_run(run_id=run_id):
            logged = mlflow_module.pyfunc.log_model(
                name=ARTIFACT,
                python_model=Judgement(),
                artifacts={"bundle": folder},
                code_paths=[str(Path(__file__).resolve().parents[1])],
                signature=signature(catalogue),
                input_example=example(catalogue),
                pip_requirements=[*requirements, f"mlflow=={mlflow_module.__version__}"],
            )
    return logged.model_uri
