from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest

from gateway.models import Report

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "gateway" / "schema" / "report-v1.json").read_text())


def check_report_schema(report: Report | dict[str, object]) -> None:
    data = report.to_dict() if isinstance(report, Report) else report
    jsonschema.validate(data, SCHEMA)


def corpus_dir() -> Path:
    """The shared corpus of real public samples; required in CI."""
    path = Path(os.environ.get("SEKISHO_CORPUS", ROOT.parent / "shared" / "corpus"))
    if not path.is_dir():
        pytest.fail(f"corpus directory {path} is missing (set SEKISHO_CORPUS)")
    return path


@pytest.fixture
def repo_root() -> Path:
    return ROOT
