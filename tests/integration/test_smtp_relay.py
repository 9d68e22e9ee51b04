"""Delivery against real peers: smtp-source upstream, smtp-sink (with faults) downstream.

through mode: the client's reply follows the downstream's (250 after its 250,
4xx or unreachable -> 451, 5xx -> 5xx, mixed per recipient -> 250 + bounce +
retry). queue mode: 250 once on disk; faults downstream only delay delivery,
nothing is lost.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.store.audit import verify
from gateway.store.quarantine import Quarantine
from gateway.store.sealed import load_keyring
from tests.helpers.smtppeers import (
    Daemon,
    Picky,
    Sink,
    free_port,
    replies,
    sink,
    smtp_source,
    swaks,
    wait_for,
)

pytestmark = pytest.mark.xdist_group("smtp")

FAST_RETRY = {"retry_min": "0.5s", "retry_max": "1s"}


def relay(work: Path, port: int, mode: str, **extra: object) -> Daemon:
    settings: dict[str, object] = {
        "delivery": {"mode": mode, "target": "smtp",
                     "smtp": {"port": port, "starttls": "no", "timeout": "20s"}},
        "queue": dict(FAST_RETRY, **extra.pop("queue", {})),  # type: ignore[arg-type]
    }
    settings.update(extra)
    return Daemon(work, settings)


def spool_entries(d: Daemon) -> list[Path]:
    root = d.var / "spool"
    return [e for q in ("incoming", "active", "deferred") for e in (root / q).iterdir()]


@pytest.fixture
def downstream(tmp_path: Path) -> Iterator[Sink]:
    with sink(tmp_path / "sink") as s:
        yield s


# ------------------------------------------------------------------------ through


@pytest.mark.parametrize(("faults", "want"), [
    ((), "250 2.0.0 Ok"),
    (("-r", "RCPT"), "451 4.3.0"),                                    # 450 4.3.0 at RCPT
    (("-f", "RCPT", "-B", "550 5.1.1 No such user"), "550 5.1.1 No such user"),
    (("-r", "."), "451 4.3.0"),                                       # 4xx after the data
    (("-f", ".", "-B", "554 5.7.1 Content rejected"), "554 5.7.1 Content rejected"),
    (("-q", "RCPT"), "451 4.4.1"),                                    # drop at RCPT
    (("-q", "."), "451 4.4.1"),                                       # drop after the data
    (("-Q", "MAIL"), "451 4.4.1"),                                    # 421 and hang up
    (("-w", "3"), "250 2.0.0 Ok"),                                    # slow DATA: no timeout
], ids=["ok", "rcpt-4xx", "rcpt-5xx", "dot-4xx", "dot-5xx", "rcpt-drop", "dot-drop",
        "mail-421", "slow"])
def test_through_mode_passes_downstream_verdict(tmp_path: Path, faults: tuple[str, ...],
                                                want: str) -> None:
    with sink(tmp_path / "sink", *faults) as s:
        d = relay(tmp_path / "d", s.port, "through", smtp={"timeout": "2s"})
        d.start()
        try:
            out = swaks(d.port, "--to", "user@localhost", "--from", "a@example.com",
                        "--header", "Message-Id: <through-1@test>")
            reply = replies(out.stdout)[-2]
            assert reply.startswith(want), out.stdout
            if want.startswith("250"):
                assert s.message_ids() == {"<through-1@test>": 1}
            # no responsibility taken unless 250: nothing left in our spool
            assert spool_entries(d) == []
        finally:
            assert d.stop() == 0


def test_through_mode_unreachable_downstream(tmp_path: Path) -> None:
    d = relay(tmp_path / "d", free_port(), "through")
    d.start()
    try:
        out = swaks(d.port, "--to", "user@localhost", "--from", "a@example.com")
        assert replies(out.stdout)[-2].startswith("451 4.4.1"), out.stdout
        assert spool_entries(d) == []
    finally:
        d.stop()


def test_through_mode_load_with_smtp_source(tmp_path: Path, downstream: Sink) -> None:
    d = relay(tmp_path / "d", downstream.port, "through")
    d.start()
    try:
        r = smtp_source(d.port, "-s", "20", "-m", "400", "-f", "a@example.com",
                        "-t", "user@localhost", "-l", "3000", "-S", "through load")
        assert r.returncode == 0, r.stderr
        ids = downstream.message_ids()
        assert len(ids) == 400 and set(ids.values()) == {1}
        assert spool_entries(d) == []
    finally:
        d.stop()


def test_through_mode_mixed_recipients(tmp_path: Path) -> None:
    picky = Picky()
    picky.start()
    d = relay(tmp_path / "d", picky.port, "through")
    d.start()
    try:
        out = swaks(d.port, "--to", "ok@localhost,bad5@localhost,bad4@localhost",
                    "--from", "sender@localhost", "--header", "Message-Id: <mixed@test>")
        reply = replies(out.stdout)[-2]
        assert reply.startswith("250 2.0.0 Ok: 1 delivered, 1 queued for retry, 1 bounced")
        assert len(picky.to("ok@localhost")) == 1
        wait_for(lambda: picky.to("sender@localhost"), 10, "the bounce")
        [(frm, _, dsn)] = [m for m in picky.messages if "sender@localhost" in m[1]]
        assert frm in ("", "<>")
        assert b"multipart/report; report-type=delivery-status" in dsn
        assert b"Final-Recipient: rfc822; bad5@localhost" in dsn
        assert b"Status: 5.1.1" in dsn and b"Action: failed" in dsn
        status = dsn.split(b"message/delivery-status")[1].split(b"text/rfc822-headers")[0]
        assert b"bad4@localhost" not in status
        assert b"Message-ID: <mixed@test>" in dsn  # text/rfc822-headers of our copy
        picky.tempfail = False
        wait_for(lambda: picky.to("bad4@localhost"), 15, "the retry of bad4")
        wait_for(lambda: spool_entries(d) == [], 5, "an empty spool")
    finally:
        d.stop()
        picky.stop()


def test_backpressure_451_when_busy(tmp_path: Path) -> None:
    with sink(tmp_path / "sink", "-w", "4") as s:
        d = relay(tmp_path / "d", s.port, "through", queue={"max_backlog": 2})
        d.start()
        try:
            outs: list[str] = []

            def one(i: int) -> None:
                outs.append(swaks(d.port, "--to", f"u{i}@localhost", "--from",
                                  "a@example.com").stdout)

            threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            codes = sorted(replies(o)[-2][:9] for o in outs)
            assert codes.count("451 4.3.2") >= 1, outs
            assert codes.count("250 2.0.0") >= 2, outs
        finally:
            d.stop()


# -------------------------------------------------------------------------- queue


def test_queue_mode_load_with_smtp_source(tmp_path: Path, downstream: Sink) -> None:
    d = relay(tmp_path / "d", downstream.port, "queue")
    d.start()
    try:
        r = smtp_source(d.port, "-s", "20", "-m", "2000", "-f", "a@example.com",
                        "-t", "user@localhost", "-l", "2000", "-S", "queue load")
        assert r.returncode == 0, r.stderr
        wait_for(lambda: len(downstream.messages()) >= 2000, 180, "2000 messages at the sink",
                 step=0.5)
        ids = downstream.message_ids()
        assert len(ids) == 2000 and set(ids.values()) == {1}
        wait_for(lambda: spool_entries(d) == [], 10, "an empty spool")
    finally:
        assert d.stop() == 0
    # every original was quarantined and audited by the worker that sanitized it (several
    # processes writing the same log and quarantine): all there, readable, one chain
    q = Quarantine(d.var / "quarantine", load_keyring(d.var / "quarantine.key"))
    try:
        entries = q.list(limit=5000)
        assert len(entries) == 2000 and {e.verdict for e in entries} == {"clean"}
        assert q.count() == 2000
    finally:
        q.close()
    jobs = [e for e in map(json.loads, (d.var / "audit.log").read_text().splitlines())
            if e["event"] == "job"]
    assert sorted(j["job_id"] for j in jobs) == sorted(e.job_id for e in entries)
    assert verify(d.var / "audit.log") == []


@pytest.mark.parametrize("faults", [("-r", "RCPT"), ("-q", "."), ("-r", "."),
                                    ("-W", "RCPT:1:50")],
                         ids=["rcpt-4xx", "dot-drop", "dot-4xx", "rcpt-delays"])
def test_queue_mode_downstream_faults_lose_nothing(tmp_path: Path,
                                                   faults: tuple[str, ...]) -> None:
    s = Sink(tmp_path / "sink", faults)
    s.start()
    d = relay(tmp_path / "d", s.port, "queue")
    d.start()
    try:
        r = smtp_source(d.port, "-s", "20", "-m", "300", "-f", "a@example.com",
                        "-t", "user@localhost", "-l", "1000")
        assert r.returncode == 0, r.stderr  # every message got 250: on disk
        if faults[0] != "-W":
            wait_for(lambda: any(e.get("event") == "delivery.attempt" for e in d.events()),
                     20, "a failed attempt")
            s.restart((), clear=True)  # what the faulty sink dumped was not accepted
        wait_for(lambda: len(s.message_ids()) >= 300, 120, "300 messages", step=0.5)
        ids = s.message_ids()
        assert len(ids) == 300
        assert set(ids.values()) == {1}
        wait_for(lambda: spool_entries(d) == [], 20, "an empty spool")
    finally:
        d.stop()
        s.close()


def test_queue_mode_bounce_and_expiry(tmp_path: Path) -> None:
    picky = Picky()
    picky.start()
    d = relay(tmp_path / "d", picky.port, "queue", queue={"lifetime": "3s"})
    d.start()
    try:
        out = swaks(d.port, "--to", "ok@localhost,bad5@localhost,bad4@localhost",
                    "--from", "sender@localhost")
        assert "250 2.0.0 Ok: queued as" in out.stdout
        # bad5 bounces at once; bad4 keeps failing until the lifetime runs out
        wait_for(lambda: len(picky.to("sender@localhost")) >= 2, 20, "two bounces")
        first, second = picky.to("sender@localhost")[:2]
        assert b"Final-Recipient: rfc822; bad5@localhost" in first
        assert b"Final-Recipient: rfc822; bad4@localhost" in second
        assert b"Status: 4.2.1" in second and b"Message expired" in second
        # a bounce to <> is never sent: a message from <> to bad5 just ends
        out = swaks(d.port, "--to", "bad5@localhost", "--from", "<>")
        assert "250 2.0.0 Ok: queued as" in out.stdout
        wait_for(lambda: any(e.get("event") == "bounce.dropped" for e in d.events()), 10,
                 "the dropped bounce")
        wait_for(lambda: spool_entries(d) == [], 10, "an empty spool")
        assert len(picky.to("sender@localhost")) == 2
    finally:
        d.stop()
        picky.stop()


def test_queue_survives_restart(tmp_path: Path) -> None:
    s = Sink(tmp_path / "sink")
    s.port = free_port()
    d = relay(tmp_path / "d", s.port, "queue")
    d.start()
    r = smtp_source(d.port, "-s", "5", "-m", "50", "-f", "a@example.com",
                    "-t", "user@localhost")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: len(list((d.var / "spool" / "deferred").iterdir())) == 50, 30,
             "50 deferred entries (downstream is down)")
    # queue mode: sanitizing is background work, the SMTP sessions come first
    assert d.worker_nice() == [19, 19]
    assert d.stop() == 0  # SIGTERM: graceful
    s.start()
    try:
        d.start()
        wait_for(lambda: len(s.message_ids()) == 50, 30, "50 messages after the restart")
        assert set(s.message_ids().values()) == {1}
    finally:
        d.stop()
        s.close()


def test_spool_quota_answers_452(tmp_path: Path) -> None:
    d = relay(tmp_path / "d", free_port(), "queue", queue={"quota": "40KiB"})
    d.start()
    try:
        body = tmp_path / "body.txt"
        body.write_text(("x" * 70 + "\n") * 60)
        got = []
        for i in range(20):
            out = swaks(d.port, "--to", "user@localhost", "--from", "a@example.com",
                        "--body", f"@{body}", "--header", f"Message-Id: <q{i}@test>")
            got.append(replies(out.stdout)[-2])
        assert any(g.startswith("452 4.3.1") for g in got), got
        assert all(g.startswith(("250 2.0.0 Ok: queued", "452 4.3.1")) for g in got), got
        accepted = sum(g.startswith("250 2.0.0 Ok: queued") for g in got)
        assert 0 < accepted < 20 and len(spool_entries(d)) == accepted
    finally:
        d.stop()


def test_through_reply_text_passed_on(tmp_path: Path) -> None:
    picky = Picky()
    picky.start()
    d = relay(tmp_path / "d", picky.port, "through")
    d.start()
    try:
        out = swaks(d.port, "--to", "ok@localhost", "--from", "a@example.com")
        assert replies(out.stdout)[-2] == "250 2.0.0 Ok: queued as PICKY"
        out = swaks(d.port, "--to", "bad5@localhost", "--from", "a@example.com")
        assert replies(out.stdout)[-2] == "550 5.1.1 No such user here"
        assert re.search(r"451 4\.2\.1 Mailbox busy",
                         swaks(d.port, "--to", "bad4@localhost").stdout)
        # the client waits for the sanitizing: the workers are not put behind the sessions
        assert d.worker_nice() == [0, 0]
    finally:
        d.stop()
        picky.stop()


def test_egress_reuses_connections_and_survives_a_dropped_one(tmp_path: Path) -> None:
    import asyncio

    from gateway.config import DownstreamConfig
    from gateway.egress.smtp import SMTPEgress

    msg = tmp_path / "m.eml"
    msg.write_bytes(b"Subject: x\r\nMessage-ID: <reuse@test>\r\n\r\nbody\r\n")
    picky = Picky()
    picky.start()
    egress = SMTPEgress(DownstreamConfig(port=picky.port, starttls="no", timeout=10), "me.test")
    again = Picky(picky.port)

    async def three() -> list[dict[str, object]]:
        out = [await egress.send("a@x.test", ["ok@localhost"], msg)]
        out.append(await egress.send("a@x.test", ["ok@localhost", "bad5@localhost"], msg))
        assert len(egress._idle) == 1  # one connection, kept for the next message
        picky.stop()  # the downstream restarts: our idle connection dies
        again.start()
        await asyncio.sleep(0.2)
        out.append(await egress.send("a@x.test", ["ok@localhost"], msg))
        await egress.close()
        return out  # type: ignore[return-value]

    try:
        first, second, third = asyncio.run(three())
        assert str(first["ok@localhost"]).startswith("250")
        assert str(second["bad5@localhost"]).startswith("550 5.1.1")
        assert str(third["ok@localhost"]).startswith("250")
        assert len(picky.to("ok@localhost")) == 2 and len(again.to("ok@localhost")) == 1
    finally:
        again.stop()


def _mount_tmpfs(where: Path, size: str) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    import subprocess

    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, check=False).returncode == 0


def test_full_disk_answers_452_never_250(tmp_path: Path) -> None:
    import subprocess

    var = tmp_path / "d" / "var"
    if not _mount_tmpfs(var, "3m"):
        pytest.fail("cannot mount a 3 MB tmpfs to fill the disk for real: run the suite as "
                    "root, as CI does")
    try:
        # min_free 0: the disk really fills up, writes fail with ENOSPC
        d = relay(tmp_path / "d", free_port(), "queue", queue={"min_free": 0})
        d.start()
        body = tmp_path / "body.txt"
        body.write_text(("y" * 70 + "\n") * 3000)  # ~213 kB
        got = []
        for i in range(30):
            out = swaks(d.port, "--to", "user@localhost", "--from", "a@example.com",
                        "--body", f"@{body}", "--header", f"Message-Id: <full{i}@test>")
            got.append(replies(out.stdout)[-2])
        assert all(g.startswith(("250 2.0.0 Ok: queued", "452 4.3.1", "451 4.3.0"))
                   for g in got), got
        assert any(not g.startswith("250") for g in got)
        accepted = sum(g.startswith("250") for g in got)
        assert len(spool_entries(d)) == accepted  # every 250 is in the spool, nothing else
        assert list((d.var / "spool" / "tmp").iterdir()) == []
        d.stop()
        # the default min_free (256 MiB) refuses at MAIL, before any data is sent
        d = relay(tmp_path / "d2", free_port(), "queue")
        d.settings = {}
        cfg = (tmp_path / "d2" / "sekisho.yaml")
        cfg.write_text(cfg.read_text().replace(str(tmp_path / "d2" / "var"), str(var)))
        d.start()
        out = swaks(d.port, "--to", "user@localhost", "--from", "a@example.com")
        assert replies(out.stdout)[-2].startswith("452 4.3.1"), out.stdout
        d.stop()
    finally:
        subprocess.run(["umount", "-l", str(var)], check=False)


def test_sigterm_finishes_the_message_in_flight(tmp_path: Path) -> None:
    with sink(tmp_path / "sink", "-w", "3") as s:  # the downstream takes 3 s per DATA
        d = relay(tmp_path / "d", s.port, "through")
        d.start()
        result: list[str] = []
        client = threading.Thread(target=lambda: result.append(swaks(
            d.port, "--to", "user@localhost", "--from", "a@example.com",
            "--header", "Message-Id: <inflight@test>").stdout))
        client.start()
        wait_for(lambda: any(e.get("event") == "relay.sanitized" or
                             e.get("event") == "job.done" for e in d.events()), 20,
                 "the message to be in the pipeline")
        assert d.stop() == 0  # SIGTERM while the client waits for its reply
        client.join(30)
        assert replies(result[0])[-2].startswith("250 2.0.0"), result[0]
        assert s.message_ids() == {"<inflight@test>": 1}
        assert spool_entries(d) == []


def test_no_delivery_while_the_original_cannot_be_quarantined(tmp_path: Path,
                                                              downstream: Sink) -> None:
    """The worker quarantines the original after sanitizing: when that fails, nothing is
    delivered, the message stays in the queue and goes out once the quarantine works."""
    d = relay(tmp_path / "d", downstream.port, "queue")
    d.start()
    try:
        tmp = d.var / "quarantine" / ".tmp"
        shutil.rmtree(tmp)
        tmp.write_bytes(b"")  # entries are assembled in .tmp/: now they cannot be (even as root)
        out = swaks(d.port, "--to", "user@localhost", "--from", "a@example.com",
                    "--header", "Message-Id: <kept@example.com>")
        assert "250 2.0.0 Ok: queued as" in out.stdout
        wait_for(lambda: any(e.get("event") == "queue.entry_error" for e in d.events()), 20,
                 "the failed quarantine")
        assert any(e.get("event") == "job.then_failed" for e in d.events())
        time.sleep(1.5)  # FAST_RETRY: at least one more attempt has failed meanwhile
        assert downstream.messages() == []
        assert [e.parent.name for e in spool_entries(d)] == ["deferred"]
        tmp.unlink()
        tmp.mkdir()
        wait_for(lambda: len(downstream.messages()) == 1, 20, "the delivery")
        assert list(downstream.message_ids()) == ["<kept@example.com>"]
        q = Quarantine(d.var / "quarantine", load_keyring(d.var / "quarantine.key"))
        try:
            assert q.count() == 1
        finally:
            q.close()
        wait_for(lambda: spool_entries(d) == [], 10, "an empty spool")
    finally:
        assert d.stop() == 0
