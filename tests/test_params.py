"""params.yaml through the typed model: every problem one line naming the key and value,
every stage refusing bad params with exit 2 before it writes anything, and the raw or
prepared data that is too small to split or to fold."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pandas as pd
import pytest
import yaml

import rawfixtures
from mushroom.cli import main as mushroom
from mushroom.core.catalogue import TARGET
from mushroom.core.params import Drift, Featurize, ParamsError, Train, flatten, load_params
from mushroom.data import prepared
from mushroom.model.estimators import ENCODERS, MODELS
from mushroom.stages import drift, evaluate, featurize, prepare, train
from servefixtures import stage_args

REPO = Path(__file__).resolve().parents[1]


def problems(tmp_path: Path, **changes) -> list[str]:
    """What load_params says about the repository's params with dotted-key ``changes``."""
    path = rawfixtures.set_params(tmp_path / "params.yaml", changes, source=REPO / "params.yaml")
    with pytest.raises(ParamsError) as caught:
        load_params(path)
    lines = str(caught.value).splitlines()
    assert all(line.startswith(f"{path}: ") for line in lines)
    return [line.removeprefix(f"{path}: ") for line in lines]


def test_the_repository_params_load_as_written():
    params = load_params(REPO / "params.yaml")
    assert params.as_dict() == yaml.safe_load((REPO / "params.yaml").read_text())
    assert params.train.logreg.C == 10.0 and params.serve.max_mushrooms == 1000
    flat = flatten(params.as_dict())  # what MLflow logs
    assert flat["train.logreg.C"] == 10.0 and flat["train.random_forest.max_depth"] is None
    assert flat["train.search.grid.logreg.C"] == [0.01, 0.1, 1.0, 10.0]


def test_the_choices_are_the_ones_the_code_builds():
    assert set(get_args(Featurize.model_fields["encoder"].annotation)) == set(ENCODERS)
    assert set(get_args(Train.model_fields["model"].annotation)) == set(MODELS)
    methods = set(get_args(Drift.model_fields["categorical_method"].annotation))
    assert methods == {"jensenshannon", "wasserstein", "hellinger", "psi", "kl_div"}


INTEGER, NUMBER = "Input should be a valid integer", "Input should be a valid number"
QUOTED = " (write numbers unquoted; in YAML an exponent needs a dot: 1.0e-9)"
UNKNOWN = "not a known key (obsolete or misspelt?); known here:"


@pytest.mark.parametrize(
    ("changes", "line"),
    [
        ({"serve.abstain_zone": 0.3}, f"serve.abstain_zone = 0.3: {UNKNOWN} max_mushrooms"),
        (
            {"serve.abstain_zone": ["low", "high"]},
            f"serve.abstain_zone = ['low', 'high']: {UNKNOWN} max_mushrooms",
        ),
        (
            {"train.logreg.max_iterations": 10},
            f"train.logreg.max_iterations = 10: {UNKNOWN} C, max_iter",
        ),
        (
            {"evaluate.gate.max_false_edible": "0"},
            f"evaluate.gate.max_false_edible = '0': {INTEGER}{QUOTED}",
        ),
        (
            {"evaluate.gate.max_false_edible_rate": "0.1"},
            f"evaluate.gate.max_false_edible_rate = '0.1': {NUMBER}{QUOTED}",
        ),
        (
            {"evaluate.gate.max_cv_false_edible_rate": -0.01},
            "evaluate.gate.max_cv_false_edible_rate = -0.01: "
            "Input should be greater than or equal to 0",
        ),
        (
            {"evaluate.gate.max_false_edible": -1},
            "evaluate.gate.max_false_edible = -1: Input should be greater than or equal to 0",
        ),
        ({"drift.min_rows": "many"}, f"drift.min_rows = 'many': {INTEGER}"),
        ({"train.seed": "abc"}, f"train.seed = 'abc': {INTEGER}"),
        ({"train.logreg.C": -1}, "train.logreg.C = -1: Input should be greater than 0"),
        ({"train.cv_folds": 2.9}, f"train.cv_folds = 2.9: {INTEGER}"),
        ({"train.cv_folds": True}, f"train.cv_folds = True: {INTEGER}"),
        ({"prepare.test_size": 1.0}, "prepare.test_size = 1.0: Input should be less than 1"),
        (
            {"train.naive_bayes.var_smoothing": "1e-9"},
            f"train.naive_bayes.var_smoothing = '1e-9': {NUMBER}{QUOTED}",
        ),
        (
            {"train.random_forest.n_jobs": 0},
            "train.random_forest.n_jobs = 0: "
            "0 workers: use a count of at least 1, or -1 for every core",
        ),
        ({"data.dataset": "mnist"}, "data.dataset = 'mnist': Input should be 'uci' or 'secondary'"),
        (
            {"drift.scenario": "drifty"},
            "drift.scenario = 'drifty': Input should be 'none', 'shift' or 'unseen_species'",
        ),
        ({"train.logreg": None}, "train.logreg = None: should be a section: a mapping of keys"),
        (
            {"train.search.grid.logreg.C": [0.1, -2]},
            "train.search.grid.logreg.C[1] = -2: Input should be greater than 0",
        ),
        (
            {"prepare.split": "species"},
            "prepare.split = 'species': "
            "needs data.dataset = 'secondary' (the uci data has no species ids)",
        ),
        (
            {"drift.scenario": "unseen_species"},
            "drift.scenario = 'unseen_species': "
            "needs prepare.split = 'species': a random split sees every species",
        ),
        (
            {"train.search.enabled": True, "train.search.grid.logreg": None},
            "train.search.grid.logreg = None: "
            "search.enabled is true but train.model logreg has no grid to search",
        ),
        (
            {"drift.shift_to": "town"},
            "drift.shift_to = 'town': not a value of habitat; values: grasses, leaves, meadows, "
            "paths, urban, waste, woods, not_recorded",
        ),
    ],
)
def test_a_bad_param_is_one_line_naming_key_and_value(tmp_path, changes, line):
    assert problems(tmp_path, **changes) == [line]


def test_a_shift_column_must_be_a_trait_of_the_dataset(tmp_path):
    (line,) = problems(tmp_path, **{"drift.shift_column": "colour"})
    assert line.startswith("drift.shift_column = 'colour': not a trait of uci; traits: cap_shape, ")
    (line,) = problems(
        tmp_path,
        **{
            "data.dataset": "secondary",
            "drift.shift_column": "cap_diameter",
            "drift.shift_to": "big",
        },
    )
    assert line == "drift.shift_to = 'big': cap_diameter takes a measurement >= 0 (cm)"


def test_every_problem_is_reported_each_on_its_line(tmp_path):
    assert problems(tmp_path, **{"train.seed": "abc", "drift.min_rows": "many"}) == [
        f"train.seed = 'abc': {INTEGER}",
        f"drift.min_rows = 'many': {INTEGER}",
    ]


def test_a_missing_or_repeated_key_is_named(tmp_path):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    del params["train"]["seed"]
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    with pytest.raises(ParamsError, match=r"^\S+params.yaml: train.seed: missing$"):
        load_params(path)
    text = (REPO / "params.yaml").read_text().replace("  seed: 42\n", "  seed: 42\n  seed: 7\n", 1)
    path.write_text(text)
    with pytest.raises(ParamsError) as caught:
        load_params(path)
    line = text.splitlines().index("  seed: 7") + 1
    assert (
        str(caught.value)
        == f"{path}, line {line}, column 3: not valid YAML: key 'seed' written twice"
    )


MAINS = {
    "prepare": prepare.main,
    "featurize": featurize.main,
    "train": train.main,
    "evaluate": evaluate.main,
    "drift": drift.main,
    "promote": lambda argv: mushroom(["promote", *argv]),
}


@pytest.mark.parametrize("stage", MAINS)
def test_every_stage_refuses_bad_params_first_and_writes_nothing(tmp_path, capsys, stage):
    bad = rawfixtures.set_params(
        tmp_path / "bad.yaml", {"train.seed": "abc"}, source=REPO / "params.yaml"
    )
    work = tmp_path / "work"  # no data at all: the params are checked before anything is read
    paths = stage_args(work) | {
        "drift": ["--prepared", f"{work}", "--json", f"{work}/d.json", "--html", f"{work}/d.html"],
        "promote": ["--reports", f"{work}"],
    }
    code = MAINS[stage](["--params", str(bad), *paths[stage]])
    captured = capsys.readouterr()
    refused = "promote: refused" if stage == "promote" else stage  # promote refuses with 3
    assert (code, captured.out) == (3 if stage == "promote" else 2, "")
    assert captured.err == f"{refused}: {bad}: train.seed = 'abc': {INTEGER}\n"
    assert not work.exists()


def run_prepare(tmp_path: Path, capsys, **params) -> tuple[int, str]:
    rawfixtures.write_params(tmp_path / "params.yaml", **params)
    code = prepare.main(
        ["--params", str(tmp_path / "params.yaml"), *stage_args(tmp_path)["prepare"]]
    )
    err = capsys.readouterr().err
    if code:  # a refusal writes nothing
        assert not (tmp_path / "prepared").exists() and not (tmp_path / "reports").exists()
    return code, err


def test_raw_data_of_three_rows_is_refused_naming_the_file(tmp_path, capsys):
    path = rawfixtures.write_uci(tmp_path / "raw", n_rows=3)
    assert run_prepare(tmp_path, capsys) == (
        2,
        f"prepare: {path}: 3 distinct mushrooms (1 edible, 2 poisonous): "
        "a train/test split needs at least 2 of each class\n",
    )


def test_raw_data_of_one_class_is_refused_naming_the_file(tmp_path, capsys):
    path = rawfixtures.write_uci(tmp_path / "raw", n_rows=100)
    path.write_text("".join(f"e{line[1:]}\n" for line in path.read_text().splitlines()))
    rawfixtures.recount_uci(path)
    assert run_prepare(tmp_path, capsys) == (
        2,
        f"prepare: {path}: 100 distinct mushrooms (100 edible, 0 poisonous): "
        "a train/test split needs at least 2 of each class\n",
    )


def test_too_few_to_split_at_the_test_size_is_refused(tmp_path, capsys):
    path = rawfixtures.write_uci(tmp_path / "raw", n_rows=4)
    path.write_text(
        "".join(
            f"{'ep'[i % 2]}{line[1:]}\n" for i, line in enumerate(path.read_text().splitlines())
        )
    )
    rawfixtures.recount_uci(path)
    code, err = run_prepare(tmp_path, capsys)
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith(
        f"prepare: {path}: 4 distinct mushrooms cannot be split with prepare.test_size = 0.2: "
    )


def test_a_species_split_needs_two_species_of_each_class(tmp_path, capsys):
    path = rawfixtures.write_secondary(
        tmp_path / "raw", n_species=3
    )  # poisonous, edible, poisonous
    code, err = run_prepare(tmp_path, capsys, data__dataset="secondary", prepare__split="species")
    assert (code, err) == (
        2,
        f"prepare: {path}: 3 species (1 edible, 2 poisonous): "
        "a train/test split needs at least 2 of each class\n",
    )


@pytest.mark.parametrize("poisonous", [0, 3])
def test_a_training_split_too_small_to_fold_is_refused_naming_the_file(tmp_path, capsys, poisonous):
    rawfixtures.write_uci(tmp_path / "raw", n_rows=100)
    assert run_prepare(tmp_path, capsys) == (0, "")
    split = tmp_path / "prepared" / prepared.TRAIN_FILE
    frame = pd.read_parquet(split)
    frame[TARGET] = ["poisonous"] * poisonous + ["edible"] * (len(frame) - poisonous)
    frame.to_parquet(split, index=False)
    code = train.main(["--params", str(tmp_path / "params.yaml"), *stage_args(tmp_path)["train"]])
    assert code == 2
    assert capsys.readouterr().err == (
        f"train: {split}: train.cv_folds = 5 needs at least 5 mushrooms of each class; "
        f"{len(frame)} rows hold {len(frame) - poisonous} edible and {poisonous} poisonous "
        "mushrooms: fewer folds or more data\n"
    )
    assert not (tmp_path / "models").exists()
