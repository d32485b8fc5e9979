"""Which project a command works on is decided in one place (mushroom.core.paths): from
the working directory, never from where the code is installed, so a copy of a checkout
running another checkout's code still uses its own MLflow and BentoML stores."""

from __future__ import annotations

from pathlib import Path

import pytest

from mushroom.core import paths
from mushroom.core.environment import print_shell_exports
from mushroom.lifecycle import champion


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A project (it has a dvc.yaml) that is not the checkout this code runs from."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("BENTOML_HOME", raising=False)
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    (tmp_path / "src" / "deep").mkdir(parents=True)
    assert paths.CHECKOUT != tmp_path
    return tmp_path


def test_the_project_is_found_from_any_folder_inside_it(project, monkeypatch):
    monkeypatch.chdir(project / "src" / "deep")
    assert paths.project_root() == project
    assert paths.mlflow_uri() == f"sqlite:///{project / 'mlflow.db'}"
    assert paths.bentoml_home() == project / ".bentoml"


def test_a_dvc_temp_copy_belongs_to_the_repository_above_it(project):
    copy = project / ".dvc" / "tmp" / "exps" / "tmpabc"
    copy.mkdir(parents=True)
    (copy / "dvc.yaml").write_text("stages: {}\n")
    assert paths.project_root(copy) == project


def test_outside_any_project_the_working_directory_is_it(tmp_path):
    assert paths.project_root(tmp_path) == tmp_path


def test_the_environment_wins(project, monkeypatch):
    monkeypatch.chdir(project)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////elsewhere/mlflow.db")
    monkeypatch.setenv("BENTOML_HOME", "/elsewhere/bentoml")
    assert paths.mlflow_uri() == "sqlite:////elsewhere/mlflow.db"
    assert paths.bentoml_home() == Path("/elsewhere/bentoml")


def test_the_service_and_env_sh_look_in_the_working_projects_stores(project, monkeypatch, capsys):
    """Not in the checkout the code is installed in: that served another project's model."""
    monkeypatch.chdir(project)
    with pytest.raises(champion.NoChampion, match=f"no MLflow store at {project / 'mlflow.db'}"):
        champion.select()
    print_shell_exports()
    assert (
        f'export BENTOML_HOME="${{BENTOML_HOME:-{project / ".bentoml"}}}"'
        in capsys.readouterr().out
    )
