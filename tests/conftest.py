import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import rawfixtures  # noqa: E402

SLOW_FIXTURES = {
    "pulled_repo",
    "bentoml_home",
    "uci_model",
    "secondary_model",
    "mlflow_store",
    "postgres",
}
"""The real data pulled into a copy of the repository, pipelines and servers run on it, a
PostgreSQL cluster, and the evaluate stage (cross-validation, safety suite, an MLflow run)
on fixture data: a test that needs any of them is in the full tier only (``make test``),
not ``make test-fast``."""


ON_FAILURE = pytest.StashKey[list]()
"""What a test's fixtures want done when its call fails (a browser screenshot): callables
returning a line for the report."""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.when == "call" and report.failed:
        for act in item.stash.get(ON_FAILURE, []):
            report.sections.append(("on failure", act()))
    return report


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def uci_raw(tmp_path: Path) -> Path:
    raw = tmp_path / "raw"
    rawfixtures.write_uci(raw)
    return raw


@pytest.fixture
def secondary_raw(tmp_path: Path) -> Path:
    raw = tmp_path / "raw"
    rawfixtures.write_secondary(raw)
    return raw


@pytest.fixture(scope="session")
def pulled_repo(tmp_path_factory) -> Path:
    """A copy of this repository with the real raw data pulled from the DVC remote."""
    import repocopy

    env = repocopy.tool_env()
    env.pop("MLFLOW_TRACKING_URI", None)  # a copy's own mlflow.db is what tests look at
    return repocopy.copy_repository(tmp_path_factory.mktemp("repo"), env)


@pytest.fixture(scope="session")
def bentoml_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bentoml")


@pytest.fixture(scope="session")
def uci_model(pulled_repo, bentoml_home, tmp_path_factory):
    """The real UCI data through a small real pipeline run, promoted into ``bentoml_home``.
    Its thresholds are chosen on 5 held-out folds, as main's: fewer leave the familiarity
    limit at 1, and answers differ from main's (a foul odor alone is then uncertain)."""
    from servefixtures import build_and_promote

    return build_and_promote(
        tmp_path_factory.mktemp("uci") / "work",
        pulled_repo / "data" / "raw",
        bentoml_home,
        train__cv_folds=5,
    )


@pytest.fixture(scope="session")
def secondary_model(pulled_repo, bentoml_home, tmp_path_factory):
    """The real secondary data (random split, logistic regression) through a small real
    pipeline run, promoted into ``bentoml_home``. Its coverage floor is opened: at the 0.01
    risk cap logistic regression answers ~18 % of edible secondary mushrooms edible, and the
    floor is not what its tests are about."""
    from servefixtures import build_and_promote

    return build_and_promote(
        tmp_path_factory.mktemp("secondary") / "work",
        pulled_repo / "data" / "raw",
        bentoml_home,
        data__dataset="secondary",
        evaluate__gate__min_coverage=0.0,
    )


@pytest.fixture(scope="session")
def uci_server(uci_model, tmp_path_factory):
    """One server of ``uci_model`` for every module that only asks it: tests that stop,
    break or count a server's whole log start their own (``servefixtures.serving``)."""
    from servefixtures import serving

    with serving(uci_model, tmp_path_factory.mktemp("uci-log")) as server:
        yield server


@pytest.fixture(scope="session")
def secondary_server(secondary_model, tmp_path_factory):
    """One server of ``secondary_model`` for every module that only asks it."""
    from servefixtures import serving

    with serving(secondary_model, tmp_path_factory.mktemp("secondary-log")) as server:
        yield server


@pytest.fixture(scope="session")
def postgres():
    """One throwaway PostgreSQL cluster for the session (``pgcluster``); each test takes a
    fresh database of it (``Cluster.new_database``). Its folder is not under pytest's
    temporary folder, which only root may enter: the server runs as ``postgres``."""
    import shutil
    import tempfile

    from pgcluster import Cluster

    folder = Path(tempfile.mkdtemp(prefix="mushroom-postgres-"))
    cluster = Cluster(folder)
    yield cluster
    cluster.stop("immediate")
    shutil.rmtree(folder, ignore_errors=True)
