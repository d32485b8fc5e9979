"""params.yaml as one typed model, validated once when a stage starts.

Every key is declared with its type and bounds. Numbers are strict: no "0.1" for a number,
no 2.9 or ``true`` for a whole number. A key the model does not declare is an error (an
obsolete or misspelt key would otherwise be ignored), and so is a key written twice. Rules
between sections are checked here too. ``load_params`` reports every problem as one line
naming the dotted key and its value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    model_validator,
)

from mushroom.core.catalogue import CATALOGUES, get_catalogue, measurable
from mushroom.core.paths import PARAMS

Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]  # numpy's and sklearn's seed range
Rate = Annotated[float, Field(ge=0, le=1)]
Distance = Literal["jensenshannon", "wasserstein", "hellinger", "psi", "kl_div"]


class ParamsError(ValueError):
    """One line per problem."""


class Conflict(ValueError):
    """A rule between keys: ``key`` (dotted, below the section that checks it) is wrong."""

    def __init__(self, key: str, value: Any, problem: str):
        self.key, self.value = key, value
        super().__init__(problem)


class Section(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class Data(Section):
    dataset: Literal[tuple(CATALOGUES)]  # type: ignore[valid-type]  # the catalogue's names


class Feedback(Section):
    use: bool
    live_share: Rate
    train_labels: Literal["poisonous", "all"]


class Prepare(Section):
    split: Literal["random", "species"]
    test_size: float = Field(gt=0, lt=1)
    seed: Seed
    feedback: Feedback


class Featurize(Section):
    encoder: Literal["onehot", "ordinal", "target", "count"]
    target_smoothing: float = Field(gt=0)


def _not_zero(n_jobs: int | None) -> int | None:
    if n_jobs == 0:
        raise ValueError("0 workers: use a count of at least 1, or -1 for every core")
    return n_jobs


class Logreg(Section):
    C: float = Field(gt=0)
    max_iter: int = Field(ge=1)


class RandomForest(Section):
    n_estimators: int = Field(ge=1)
    max_depth: int | None = Field(ge=1)
    min_samples_leaf: int = Field(ge=1)
    n_jobs: Annotated[int | None, Field(ge=-1), AfterValidator(_not_zero)]


class HistGb(Section):
    learning_rate: float = Field(gt=0)
    max_iter: int = Field(ge=1)
    max_leaf_nodes: int | None = Field(ge=2)


class NaiveBayes(Section):
    var_smoothing: float = Field(ge=0)


HYPERPARAMETERS: dict[str, type[Section]] = {
    "logreg": Logreg,
    "random_forest": RandomForest,
    "hist_gb": HistGb,
    "naive_bayes": NaiveBayes,
}
ModelName = Literal[tuple(HYPERPARAMETERS)]  # type: ignore[valid-type]


def grid_of(hyperparameters: type[Section]) -> type[Section]:
    """The search grid of a model: per hyperparameter, a non-empty list of candidates, each
    with the hyperparameter's own type and bounds."""
    fields = {}
    for name, field in hyperparameters.model_fields.items():
        candidate = (
            Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
        )
        fields[name] = (list[candidate] | None, Field(None, min_length=1))
    return create_model(f"{hyperparameters.__name__}Grid", __base__=Section, **fields)


Grid = create_model(
    "Grid",
    __base__=Section,
    **{name: (grid_of(section) | None, None) for name, section in HYPERPARAMETERS.items()},
)


def _scorer(name: str) -> str:
    from sklearn.metrics import get_scorer_names

    if name not in get_scorer_names():
        raise ValueError("not a scikit-learn scorer name (sklearn.metrics.get_scorer_names())")
    return name


class Search(Section):
    enabled: bool
    scoring: Annotated[str, AfterValidator(_scorer)]
    grid: Grid  # type: ignore[valid-type]


class Familiarity(Section):
    quantile: float = Field(ge=0.5, le=1)


class Abstention(Section):
    max_false_poisonous_rate: Rate
    max_edible_risk: Rate


class Train(Section):
    model: ModelName
    cv_folds: int = Field(ge=2, le=20)
    seed: Seed
    logreg: Logreg
    random_forest: RandomForest
    hist_gb: HistGb
    naive_bayes: NaiveBayes
    familiarity: Familiarity
    abstention: Abstention
    search: Search

    def hyperparameters(self) -> dict[str, Any]:
        """The chosen model's hyperparameters, as its constructor takes them."""
        return getattr(self, self.model).model_dump()

    def tuned(self, best: dict[str, Any]) -> Train:
        """These params with the chosen model's hyperparameters updated by a search."""
        section = getattr(self, self.model)
        return self.model_copy(
            update={self.model: section.model_validate(section.model_dump() | best)}
        )

    @model_validator(mode="after")
    def _grid_when_searching(self) -> Train:
        grid = getattr(self.search.grid, self.model)
        if self.search.enabled and not (grid and grid.model_dump(exclude_none=True)):
            raise Conflict(
                f"search.grid.{self.model}",
                grid.model_dump(exclude_none=True) if grid else None,
                f"search.enabled is true but train.model {self.model} has no grid to search",
            )
        return self


class Gate(Section):
    max_false_edible: int = Field(ge=0)
    max_false_edible_rate: Rate
    max_cv_false_edible_rate: Rate
    min_coverage: Rate


class CrossValidation(Section):
    folds: int = Field(ge=2, le=20)
    repeats: int = Field(ge=1, le=20)


class Evaluate(Section):
    gate: Gate
    cv: CrossValidation
    importance_repeats: int = Field(ge=1, le=50)


class Serve(Section):
    max_mushrooms: int = Field(ge=1)


class Drift(Section):
    window_rows: int = Field(ge=0)
    window_days: float = Field(ge=0, le=3650)
    max_rows: int = Field(ge=1)
    source: Literal["log", "scenario"]
    min_rows: int = Field(ge=1)
    scenario: Literal["none", "shift", "unseen_species"]
    scenario_rows: int = Field(ge=1)
    shift_column: str
    shift_to: Any  # a value of shift_column: a name, or a measurement (checked in Params)
    shift_fraction: Rate
    seed: Seed
    categorical_method: Distance
    categorical_threshold: float = Field(ge=0, le=10)
    numerical_method: Distance
    numerical_threshold: float = Field(ge=0, le=10)
    prediction_threshold: float = Field(ge=0, le=10)
    share_threshold: Rate
    max_unfamiliar_share: Rate


class Params(Section):
    data: Data
    prepare: Prepare
    featurize: Featurize
    train: Train
    evaluate: Evaluate
    serve: Serve
    drift: Drift

    @model_validator(mode="after")
    def _sections_agree(self) -> Params:
        dataset = self.data.dataset
        if self.prepare.split == "species" and dataset != "secondary":
            raise Conflict(
                "prepare.split",
                "species",
                f"needs data.dataset = 'secondary' (the {dataset} data has no species ids)",
            )
        if self.drift.scenario == "unseen_species" and self.prepare.split != "species":
            raise Conflict(
                "drift.scenario",
                "unseen_species",
                "needs prepare.split = 'species': a random split sees every species",
            )
        catalogue = get_catalogue(dataset)
        if self.drift.shift_column not in catalogue.trait_names:
            raise Conflict(
                "drift.shift_column",
                self.drift.shift_column,
                f"not a trait of {dataset}; traits: {', '.join(catalogue.trait_names)}",
            )
        trait = catalogue.trait(self.drift.shift_column)
        value = self.drift.shift_to
        if trait.is_numeric:
            is_number = isinstance(value, int | float) and not isinstance(value, bool)
            if not (is_number and measurable(value)):
                raise Conflict(
                    "drift.shift_to", value, f"{trait.name} takes a measurement >= 0 ({trait.unit})"
                )
        elif value not in trait.allowed_values:
            raise Conflict("drift.shift_to", value, trait.not_a_value())
        if self.prepare.seed + self.evaluate.cv.repeats - 1 > 2**32 - 1:
            raise Conflict(
                "prepare.seed",
                self.prepare.seed,
                "evaluate's repeats use seeds prepare.seed, +1, ...: keep them below 2**32",
            )
        return self

    def as_dict(self) -> dict[str, Any]:
        """The params as params.yaml spells them (plain data: for MLflow and model cards)."""
        return self.model_dump(exclude_unset=True)


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys; a key written twice is a mistake."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.MarkedYAMLError(
                    problem=f"key {key!r} written twice", problem_mark=key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


def load_params(path: str | Path = PARAMS) -> Params:
    path = Path(path)
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # a SafeLoader
    except FileNotFoundError:
        raise ParamsError(f"{path}: params file not found") from None
    except OSError as exc:
        raise ParamsError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ParamsError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ParamsError(f"{path}{where}: not valid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping of sections at the top level")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise ParamsError("\n".join(_describe(path, error) for error in exc.errors())) from None


def _describe(path: Path, error: dict) -> str:
    """``params.yaml: train.seed = 'abc': Input should be a valid integer``."""
    loc = error["loc"]
    key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).removeprefix(".")
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, Conflict):
        key = f"{key}.{cause.key}".removeprefix(".")
        value, problem = cause.value, str(cause)
    elif error["type"] == "missing":
        return f"{path}: {key}: missing"
    else:
        value, problem = error["input"], error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        known = ", ".join(_section(loc[:-1]).model_fields)
        problem = f"not a known key (obsolete or misspelt?); known here: {known}"
    elif error["type"] == "model_type":
        problem = "should be a section: a mapping of keys"
    elif error["type"] in ("float_type", "int_type") and _is_number_text(value):
        problem += " (write numbers unquoted; in YAML an exponent needs a dot: 1.0e-9)"
    shown = repr(value)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return f"{path}: {key} = {shown}: {problem}"


def _section(loc: tuple) -> type[BaseModel]:
    """The section class at a location of the params, e.g. ``("train", "logreg")``."""
    section: type[BaseModel] = Params
    for part in loc:
        annotation = section.model_fields[part].annotation
        section = next(
            t
            for t in (annotation, *get_args(annotation))
            if isinstance(t, type) and issubclass(t, BaseModel)
        )
    return section


def _is_number_text(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        float(value)
    except ValueError:
        return False
    return True


def flatten(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"model": "logreg"}}`` -> ``{"train.model": "logreg"}`` (for MLflow)."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat
