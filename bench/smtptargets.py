"""Targets and probes for bench/smtp.py: a plain Postfix relay, a peak-RSS sampler."""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

from bench.measure import descendants, vm_hwm_kib
from tests.helpers.smtppeers import free_port, wait_port

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"


class PostfixRelay:
    """A plain Postfix relay in a private config dir, on loopback ports."""

    def __init__(self, work: Path, sink_port: int) -> None:
        self.dir = work
        self.conf = work / "conf"
        self.port = free_port()
        self.sink_port = sink_port

    def start(self) -> int:
        for d in (self.conf, self.dir / "queue", self.dir / "data"):
            d.mkdir(parents=True, exist_ok=True)
        master = Path("/etc/postfix/master.cf").read_text()
        master = re.sub(r"(?m)^smtp\s+inet\s.*$",
                        f"127.0.0.1:{self.port} inet n - n - - smtpd", master)
        (self.conf / "master.cf").write_text(master)
        (self.conf / "main.cf").write_text(f"""\
compatibility_level = 3.6
queue_directory = {self.dir}/queue
data_directory = {self.dir}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = relay.bench.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains = localhost
relayhost = [127.0.0.1]:{self.sink_port}
smtpd_relay_restrictions = permit_mynetworks, reject
smtp_tls_security_level = none
default_destination_concurrency_limit = 20
alias_maps =
local_recipient_maps =
maillog_file = {self.dir}/maillog
maillog_file_prefixes = {self.dir}
""")
        subprocess.run([POSTFIX, "-c", str(self.conf), "set-permissions"], check=True,
                       capture_output=True)
        subprocess.run([POSTFIX, "-c", str(self.conf), "start"], check=True,
                       capture_output=True)
        wait_port(self.port, 20)
        return self.port

    def stop(self) -> None:
        subprocess.run([POSTFIX, "-c", str(self.conf), "stop"], check=False,
                       capture_output=True)


class RSSSampler:
    """Peak RSS of a process tree, sampled every 50 ms from /proc: the daemon's own
    peak (VmHWM), the largest worker's peak, and the largest sum of VmRSS over the
    processes alive at one moment (workers are replaced every N jobs, so summing
    their peaks would count the same slot several times)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.hwm: dict[int, int] = {}
        self.total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            now = 0
            for pid in (self.pid, *descendants(self.pid)):
                peak = vm_hwm_kib(pid)
                if peak is not None:
                    self.hwm[pid] = max(peak, self.hwm.get(pid, 0))
                now += _vm_rss_kib(pid)
            self.total = max(self.total, now)
            time.sleep(0.05)

    def report(self) -> str:
        self._stop.set()
        self._thread.join()
        main = self.hwm.get(self.pid, 0)
        others = [v for k, v in self.hwm.items() if k != self.pid]
        return (f"daemon {main / 1024:.0f} MiB, largest worker "
                f"{max(others, default=0) / 1024:.0f} MiB, whole tree at once "
                f"{self.total / 1024:.0f} MiB")


def _vm_rss_kib(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0
