"""``python -m gateway`` and the ``sekisho`` command.

Before anything imports structlog, ``rich`` is hidden from this process: structlog
imports it, when installed, only to draw tracebacks (our console renderer prints one
line per error and JSON logs never use it), and that import alone costs about a
quarter of a single-file ``sekisho disarm`` run (~70 ms of ~300 ms). It is installed
here only as a dependency of development tools. Code importing gateway as a library
(the tests, a plugin's host) keeps its own modules untouched.
"""

from __future__ import annotations

import sys


def run() -> int:
    sys.modules.setdefault("rich", None)  # type: ignore[arg-type]  # "not installed"
    from gateway.cli import main  # noqa: PLC0415 - after the line above, on purpose

    return main()


if __name__ == "__main__":
    raise SystemExit(run())
