import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def adr_folder(tmp_path) -> Path:
    """A writable copy of the six real ADRs in tests/interchange/fixtures."""
    target = tmp_path / "adr"
    shutil.copytree(FIXTURES, target)
    return target
