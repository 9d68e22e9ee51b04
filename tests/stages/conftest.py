from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import corpus_dir


@pytest.fixture(scope="session")
def pdf_corpus() -> Path:
    """The shared corpus's PDF folder (a missing corpus fails the test, never skips it)."""
    return corpus_dir() / "a_pdf"
