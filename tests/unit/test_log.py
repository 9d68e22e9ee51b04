"""Log lines from several processes sharing one stderr stay whole lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import sys, structlog
from gateway.log import configure
configure(json=True)
log = structlog.get_logger("t")
for i in range(int(sys.argv[1])):
    log.info("t.line", proc=sys.argv[2], i=i, pad="x" * 200)
"""


def test_lines_from_processes_sharing_stderr_are_not_interleaved(tmp_path: Path) -> None:
    path = tmp_path / "daemon.log"
    procs, lines = 4, 3000
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with open(path, "ab") as logf:  # as the daemon's stderr: O_APPEND, shared by children
        children = [subprocess.Popen([sys.executable, "-c", CHILD, str(lines), str(n)],
                                     stderr=logf, env=env) for n in range(procs)]
        assert [c.wait(120) for c in children] == [0] * procs
    seen: dict[str, int] = {}
    for raw in path.read_text().splitlines():
        event = json.loads(raw)  # a line another process's write split does not parse
        assert event["event"] == "t.line"
        seen[event["proc"]] = seen.get(event["proc"], 0) + 1
    assert seen == {str(n): lines for n in range(procs)}


def test_console_format_writes_one_line_per_event(tmp_path: Path) -> None:
    code = CHILD.replace("configure(json=True)", "configure(json=False)")
    out = subprocess.run([sys.executable, "-c", code, "3", "c"], capture_output=True,
                         text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=60)
    assert out.returncode == 0
    rows = out.stderr.splitlines()
    assert len(rows) == 3 and all("t.line" in r and "proc=c" in r for r in rows)


def test_a_child_forked_while_a_line_is_written_can_log(tmp_path: Path) -> None:
    code = """
import os, sys, threading, structlog
from gateway.log import configure, LineLogger
configure(json=True)
log = structlog.get_logger("t")
logger = structlog.get_config()["logger_factory"]()
assert isinstance(logger, LineLogger)
with logger._lock:  # another thread is in the middle of a line when the fork happens
    pid = os.fork()
    if pid == 0:
        log.info("t.child")  # would wait forever on the inherited lock
        os._exit(0)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=30)
    assert out.returncode == 0, out.stderr
    assert '"event": "t.child"' in out.stderr
