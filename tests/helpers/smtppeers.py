"""Real SMTP peers for the relay tests: the daemon, Postfix's smtp-sink/smtp-source, swaks.

Everything listens on 127.0.0.1. The daemon listens on port 0 and reports the
port it got in its ``smtp.listening`` log line; smtp-sink cannot, so it gets a
port that was free a moment ago.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from gateway.addresses import mailbox_name
from tests.conftest import ROOT

SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
SMTP_SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
SWAKS = shutil.which("swaks") or "/usr/bin/swaks"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")


def wait_for(pred: object, timeout: float, what: str, step: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():  # type: ignore[operator]
            return
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


# --------------------------------------------------------------------------- daemon


@dataclass
class Daemon:
    """``sekisho serve --config`` in a subprocess, logging JSON lines to a file."""

    workdir: Path
    settings: dict[str, object]
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0
    starts: int = 0
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / "daemon.log"
        base: dict[str, object] = {"var_dir": str(self.workdir / "var"),
                                   "log": {"format": "json", "level": "INFO"}}
        smtp = dict(self.settings.pop("smtp", {}))  # type: ignore[call-overload]
        smtp.setdefault("listen", "127.0.0.1:0")
        smtp.setdefault("hostname", "sekisho.test")
        # the HTTP front end listens on a fixed port by default: off unless a test asks,
        # so that daemons of tests and benchmarks running side by side do not collide
        base["http"] = {"enabled": False}
        base.update(self.settings)
        base["smtp"] = smtp
        (self.workdir / "sekisho.yaml").write_text(yaml.safe_dump(base), encoding="utf-8")

    @property
    def var(self) -> Path:
        return self.workdir / "var"

    def start(self, timeout: float = 30.0) -> int:
        self.starts += 1
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        with open(self.log_path, "ab") as logf:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway", "serve", "--config",
                 str(self.workdir / "sekisho.yaml")],
                stdout=logf, stderr=logf, env=env, cwd=self.workdir, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events(offset):
                if event.get("event") == "smtp.listening":
                    self.port = int(event["port"])
                    return self.port
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {self.proc.returncode}:\n"
                                   + self._since(offset))
            time.sleep(0.05)
        raise TimeoutError(f"daemon did not log smtp.listening in {timeout:g} s:\n"
                           + self._since(offset))

    def worker_nice(self) -> list[int]:
        """The nice values of the pipeline workers: the daemon's grandchildren (daemon ->
        multiprocessing's forkserver -> the workers it forks)."""
        assert self.proc is not None
        parents: dict[int, int] = {}
        nice: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # exited meanwhile
            parents[int(entry.name)] = int(fields[1])
            nice[int(entry.name)] = int(fields[16])
        return sorted(nice[p] for p, pp in parents.items()
                      if parents.get(pp) == self.proc.pid)

    def _since(self, offset: int) -> str:
        """What this start logged (its last 3000 characters); lines that are not JSON
        marked, since only whole JSON lines are read as events."""
        with open(self.log_path, "rb") as f:
            f.seek(offset)
            lines = f.read().decode("utf-8", "replace").splitlines()
        if not lines:
            return "(nothing logged since this start)"
        out = []
        for line in lines:
            try:
                json.loads(line)
                out.append(line)
            except ValueError:
                out.append(f"[not a JSON line] {line}")
        return "\n".join(out)[-3000:]

    def events(self, offset: int = 0) -> list[dict[str, object]]:
        out = []
        with open(self.log_path, "rb") as f:
            f.seek(offset)
            for line in f:
                with contextlib.suppress(ValueError):
                    out.append(json.loads(line))
        return out

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, wait; the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self._reap_group()

    def kill9(self) -> None:
        """kill -9 of the daemon process only (its workers die with their parent pipe)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._reap_group()

    def _reap_group(self) -> None:
        assert self.proc is not None
        # the forkserver and workers were started in the daemon's own session
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def maildir(self, addr: str) -> list[bytes]:
        box = self.var / "maildir" / mailbox_name(addr) / "new"
        if not box.is_dir():
            return []
        return [p.read_bytes() for p in sorted(box.iterdir())]


@contextlib.contextmanager
def running(daemon: Daemon) -> Iterator[Daemon]:
    daemon.start()
    try:
        yield daemon
    finally:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.stop()


# ----------------------------------------------------------------------------- sink


@dataclass
class Sink:
    """Postfix smtp-sink on 127.0.0.1, dumping every transaction to a file."""

    workdir: Path
    options: Sequence[str] = ()
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    dumps: Path = field(init=False)

    def __post_init__(self) -> None:
        # smtp-sink run by root drops to nobody, who cannot enter pytest's 0700 tmp dirs
        self.dumps = Path(tempfile.mkdtemp(prefix="sekisho-sink-"))
        os.chmod(self.dumps, 0o777)

    def start(self) -> int:
        self.port = self.port or free_port()
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        self.proc = subprocess.Popen(
            [SMTP_SINK, *user, "-d", f"{self.dumps}/%H%M%S.", *self.options,
             f"127.0.0.1:{self.port}", "256"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)
        return self.port

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dumps, ignore_errors=True)

    def restart(self, options: Sequence[str], *, clear: bool = False) -> None:
        self.stop()
        if clear:
            for p in self.dumps.iterdir():
                p.unlink()
        self.options = options
        deadline = time.monotonic() + 10
        while True:  # the old socket may linger a moment
            try:
                self.start()
                return
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise

    def messages(self) -> list[bytes]:
        if not self.dumps.is_dir():
            return []
        return [p.read_bytes() for p in sorted(self.dumps.iterdir()) if p.is_file()]

    def message_ids(self) -> Counter[str]:
        ids: Counter[str] = Counter()
        for msg in self.messages():
            m = re.search(rb"(?im)^message-id:\s*(<[^>\r\n]+>)", msg)
            if m:
                ids[m.group(1).decode()] += 1
        return ids


@contextlib.contextmanager
def sink(workdir: Path, *options: str) -> Iterator[Sink]:
    s = Sink(workdir, options)
    s.start()
    try:
        yield s
    finally:
        s.close()


# ---------------------------------------------------------------------------- clients


def smtp_source(port: int, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SMTP_SOURCE, *args, f"127.0.0.1:{port}"], capture_output=True,
                          text=True, timeout=timeout, check=False)


def swaks(port: int, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SWAKS, "--server", f"127.0.0.1:{port}", "--hide-informational",
                           "--timeout", "120", *args],
                          capture_output=True, text=True, timeout=timeout, check=False)


def replies(out: str) -> list[str]:
    """Server reply lines from swaks' transcript (``<-`` ok, ``<**`` error)."""
    return [ln.split(" ", 1)[1].strip() if " " in ln else ""
            for ln in out.splitlines() if ln.startswith(("<-", "<**", "<~", "<~*"))]


# ------------------------------------------------------------------ picky downstream


class Picky:
    """A downstream MTA that answers per recipient (smtp-sink answers all alike).

    Local parts starting ``bad5`` get 550 5.1.1 at RCPT, ``bad4`` 450 4.2.1 while
    ``tempfail`` is set; everything else is accepted and kept in ``messages``.
    """

    def __init__(self, port: int = 0) -> None:
        from aiosmtpd.controller import Controller

        self.tempfail = True
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.port = port or free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_RCPT(self, server: object, session: object, envelope: object,
                          address: str, rcpt_options: list[str]) -> str:
        local = address.split("@", maxsplit=1)[0]
        if local.startswith("bad5"):
            return "550 5.1.1 No such user here"
        if local.startswith("bad4") and self.tempfail:
            return "450 4.2.1 Mailbox busy, try later"
        envelope.rcpt_tos.append(address)  # type: ignore[attr-defined]
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        env = envelope
        self.messages.append((env.mail_from, list(env.rcpt_tos),  # type: ignore[attr-defined]
                              bytes(env.original_content)))  # type: ignore[attr-defined]
        return "250 2.0.0 Ok: queued as PICKY"

    def to(self, addr: str) -> list[bytes]:
        return [m for _, rcpts, m in self.messages if addr in rcpts]

    def start(self) -> int:
        self._controller.start()
        return self.port

    def stop(self) -> None:
        self._controller.stop()
