"""kill -9 in the middle of 2000 messages (queue mode), restart: every message arrives.

20 client sessions (smtplib, each a real SMTP client that keeps a message until
it gets 250, as an MTA does) send 2000 messages with distinct Message-IDs. When
about a third have been accepted the daemon gets SIGKILL; it is restarted and
the clients carry on against the new port. At the end smtp-sink must hold every
Message-ID. Duplicates may only come from the two documented windows (README,
"SMTP relay"): a message committed to the spool whose 250 never reached the
client (at most one per client session), and a message the downstream accepted
whose envelope was not yet updated (at most one per delivery slot).
"""

from __future__ import annotations

import contextlib
import queue
import smtplib
import threading
import time
from pathlib import Path

import pytest

from tests.helpers.smtppeers import Daemon, sink, wait_for

pytestmark = [pytest.mark.xdist_group("smtp"), pytest.mark.slow]

TOTAL = 2000
SESSIONS = 20
DELIVERY_SLOTS = 20


class Clients:
    def __init__(self, port: int) -> None:
        self.port = port
        self.todo: queue.Queue[int] = queue.Queue()
        for i in range(TOTAL):
            self.todo.put(i)
        self.accepted: set[int] = set()
        self.unsure: set[int] = set()   # sent the data, no reply seen (connection died)
        self.lock = threading.Lock()
        self.stop = False

    def run(self) -> None:
        conn: smtplib.SMTP | None = None
        while not self.stop:
            try:
                i = self.todo.get(timeout=0.2)
            except queue.Empty:
                if len(self.accepted) >= TOTAL:
                    break
                continue
            msg = (f"From: a@example.com\r\nTo: u{i % 50}@localhost\r\n"
                   f"Message-ID: <crash-{i}@test>\r\nSubject: crash test {i}\r\n\r\n"
                   f"body {i}\r\n" + "line of text\r\n" * 20)
            try:
                if conn is None:
                    conn = smtplib.SMTP("127.0.0.1", self.port, timeout=30)
                conn.sendmail("a@example.com", [f"u{i % 50}@localhost"], msg)
            except (smtplib.SMTPException, OSError) as exc:
                with self.lock:
                    if isinstance(exc, smtplib.SMTPServerDisconnected | OSError):
                        self.unsure.add(i)
                conn = None
                self.todo.put(i)
                time.sleep(0.05)
                continue
            with self.lock:
                self.accepted.add(i)
        if conn is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                conn.quit()


def test_kill9_mid_stream_loses_nothing(tmp_path: Path) -> None:
    with sink(tmp_path / "sink") as s:
        d = Daemon(tmp_path / "d", {
            "delivery": {"mode": "queue", "target": "smtp", "concurrency": DELIVERY_SLOTS,
                         "smtp": {"port": s.port, "starttls": "no"}},
            "queue": {"retry_min": "0.5s", "retry_max": "1s"}})
        clients = Clients(d.start())
        threads = [threading.Thread(target=clients.run) for _ in range(SESSIONS)]
        for t in threads:
            t.start()
        try:
            wait_for(lambda: len(clients.accepted) >= TOTAL // 3, 120, "a third accepted")
            wait_for(lambda: len(s.messages()) > 100, 60, "deliveries under way")
            d.kill9()
            at_kill = len(clients.accepted)
            spool = d.var / "spool"
            left = sum(len(list((spool / q).iterdir()))
                       for q in ("incoming", "active", "deferred"))
            assert left > 0  # the kill really hit a queue with work in it
            time.sleep(0.5)
            clients.port = d.start()
            for t in threads:
                t.join(300)
            assert len(clients.accepted) == TOTAL
            wait_for(lambda: len(s.message_ids()) >= TOTAL, 240, "all Message-IDs at the sink",
                     step=0.5)
            ids = s.message_ids()
            want = {f"<crash-{i}@test>" for i in range(TOTAL)}
            assert set(ids) == want
            dups = {mid: n for mid, n in ids.items() if n > 1}
            upstream = {m for m in dups if int(m[7:-6]) in clients.unsure}
            downstream = set(dups) - upstream
            print(f"accepted before the kill: {at_kill}; spool entries at the kill: {left}; "
                  f"duplicates: {len(dups)} ({len(upstream)} upstream window, "
                  f"{len(downstream)} delivery window)")
            assert all(n == 2 for n in dups.values())
            assert len(upstream) <= SESSIONS
            assert len(downstream) <= DELIVERY_SLOTS
            wait_for(lambda: not any(list((spool / q).iterdir())
                                     for q in ("incoming", "active", "deferred")),
                     30, "an empty spool")
        finally:
            clients.stop = True
            if d.proc is not None and d.proc.poll() is None:
                d.stop()
