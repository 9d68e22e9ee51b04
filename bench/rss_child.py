"""Child process for the peak-RSS figures.

    python -m bench.rss_child idle POLICY [PLUGIN...]
    python -m bench.rss_child disarm POLICY SRC OUT [PLUGIN...]

Both modes import the pipeline, pikepdf and the built-in stages and load the policy;
``idle`` stops there (the baseline), ``disarm`` then runs ``process_file`` once in this
process. Either prints one JSON line: the peak RSS of this process (``VmHWM`` from
/proc/self/status, KiB — see bench/measure.py for why not ``ru_maxrss``) and, for
``disarm``, the verdict and the processing time.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pikepdf  # noqa: F401 - part of the baseline being measured

from bench.measure import vm_hwm_kib
from gateway.log import configure
from gateway.pipeline import registry
from gateway.pipeline.run import process_file
from gateway.policy import Policy, load_file


def _prepare(policy_file: Path, plugins: list[str]) -> Policy:
    configure(json=False, level="WARNING")
    registry.known_types()  # imports the built-in stages
    registry.load_plugins(plugins)
    return load_file(policy_file)


def _disarm(policy_file: Path, src: Path, out: Path, plugins: list[str]) -> dict[str, object]:
    pol = _prepare(policy_file, plugins)
    started = time.perf_counter()
    report = process_file(src, out, policy=pol, source="bench")
    seconds = time.perf_counter() - started
    reason = next((i.error for i in report.items if i.error), None)
    return {"verdict": report.verdict.value, "seconds": seconds, "reason": reason,
            "vm_hwm_kib": vm_hwm_kib(os.getpid())}


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "idle":
        _prepare(Path(argv[1]), argv[2:])
        print(json.dumps({"vm_hwm_kib": vm_hwm_kib(os.getpid())}))
        return 0
    if len(argv) >= 4 and argv[0] == "disarm":
        print(json.dumps(_disarm(Path(argv[1]), Path(argv[2]), Path(argv[3]), argv[4:])))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
