import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import rawfixtures  # noqa: E402


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
