"""The ``sekisho`` command run as users and scripts run it, and its one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def sekisho(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "gateway", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=120, check=False)


def one_clear_line(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    """No traceback, exactly one ``sekisho: `` line on stderr, holding every needle."""
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("sekisho: ")]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
