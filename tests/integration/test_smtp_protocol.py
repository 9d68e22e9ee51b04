"""The SMTP front end against swaks: relay tricks, size, STARTTLS, SMTPUTF8, hops, blocks.

One daemon (queue mode, Maildir delivery, self-signed certificate) serves the
whole module; each test talks to it with swaks, a real SMTP client.
"""

from __future__ import annotations

import base64
import email
import json
import re
import smtplib
import subprocess
import time
from collections.abc import Iterator
from email.header import decode_header, make_header
from pathlib import Path

import pytest

from gateway.store.audit import verify
from gateway.store.quarantine import Quarantine
from gateway.store.sealed import load_keyring
from tests.helpers.smtppeers import Daemon, replies, swaks, wait_for

pytestmark = pytest.mark.xdist_group("smtp")

DOMAINS = ["localhost", "city.example.lg.jp", ".pref.example.lg.jp"]


def make_cert(where: Path) -> tuple[Path, Path]:
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=sekisho.test", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    work = tmp_path_factory.mktemp("smtp-proto")
    cert, key = make_cert(work)
    policy = work / "blockmail.yaml"
    policy.write_text("name: blockmail\nextends: default\nformats:\n  mail: {action: block}\n",
                      encoding="utf-8")
    base = work / "routed.yaml"
    base.write_text("name: routed\nextends: default\nrules:\n"
                    "  - match: {recipient: blocked@localhost}\n    policy: blockmail\n",
                    encoding="utf-8")
    d = Daemon(work, {"policy": str(base),
                      "smtp": {"domains": DOMAINS, "max_message_size": 200_000,
                               "max_recipients": 5, "max_hops": 10,
                               "tls": {"cert": str(cert), "key": str(key)}},
                      "queue": {"retry_min": "1s", "retry_max": "2s"}})
    d.start()
    yield d
    assert d.stop() == 0


def _decoded_subject(raw: bytes) -> str:
    return str(make_header(decode_header(email.message_from_bytes(raw)["Subject"])))


def _text(raw: bytes) -> str:
    msg = email.message_from_bytes(raw)
    for part in msg.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    return ""


def delivered(d: Daemon, addr: str, n: int = 1, timeout: float = 20) -> list[bytes]:
    wait_for(lambda: len(d.maildir(addr)) >= n, timeout, f"{n} message(s) for {addr}")
    return d.maildir(addr)


@pytest.mark.parametrize("rcpt", [
    "someone@example.com",                   # not ours
    "user%example.com@localhost",            # percent hack
    "example.com!user@localhost",            # bang path
    "@localhost:user@example.com",           # source route
    "@localhost,@x.test:user@example.com",   # source route, two hops
    "user@localhost.",                       # trailing dot
    "user@localhost.example.com",            # look-alike: ours as a prefix
    "user@evil-localhost",                   # look-alike
    "user@city.example.lg.jp.evil.test",     # look-alike
    "user@xcity.example.lg.jp",              # suffix without a dot boundary
    "user@pref.example.lg.jp",               # ".pref..." takes subdomains only
    '"user@example.com"@localhost',          # quoted local part hiding an @
    "user@[127.0.0.1]",                      # address literal
    "user@localhost@example.com",            # two @
])
def test_relay_tricks_refused_at_rcpt(daemon: Daemon, rcpt: str) -> None:
    out = swaks(daemon.port, "--to", rcpt, "--from", "a@example.com", "--quit-after", "RCPT")
    rcpt_reply = replies(out.stdout)[-2]  # ..., RCPT reply, QUIT reply
    assert rcpt_reply.startswith(("550 5.7.1", "553", "501")), out.stdout


def test_lookalike_unicode_domain_refused(daemon: Daemon) -> None:
    # Cyrillic "о" in "lоcalhost": never the same domain as ASCII localhost
    out = swaks(daemon.port, "--to", "user@l\u043ecalhost", "--from", "a@example.com",
                "--quit-after", "RCPT", "--protocol", "ESMTP")
    assert any(r.startswith(("550 5.7.1", "553 5.6.7")) for r in replies(out.stdout)), out.stdout


@pytest.mark.parametrize("rcpt", ["user@localhost", "User@LOCALHOST", "x@city.example.lg.jp",
                                  "y@kikaku.pref.example.lg.jp"])
def test_allowed_recipients(daemon: Daemon, rcpt: str) -> None:
    out = swaks(daemon.port, "--to", rcpt, "--from", "a@example.com", "--quit-after", "RCPT")
    assert replies(out.stdout)[-2].startswith("250 2.1.5"), out.stdout


def test_ehlo_advertises_size_8bitmime_smtputf8_starttls(daemon: Daemon) -> None:
    out = swaks(daemon.port, "--quit-after", "EHLO", "--to", "user@localhost")
    text = out.stdout
    assert "SIZE 200000" in text and "8BITMIME" in text and "SMTPUTF8" in text
    assert "STARTTLS" in text and "AUTH" not in text


def test_size_limit(daemon: Daemon, tmp_path: Path) -> None:
    body = tmp_path / "body.txt"
    body.write_text(("x" * 70 + "\n") * 3000)  # ~213 kB > 200 kB
    out = swaks(daemon.port, "--to", "user@localhost", "--from", "a@example.com",
                "--body", f"@{body}")
    assert replies(out.stdout)[-2].startswith("552"), out.stdout[-500:]


def test_size_parameter_refused_at_mail(daemon: Daemon, tmp_path: Path) -> None:
    script = tmp_path / "s.py"
    script.write_text(
        "import smtplib,sys\n"
        "s=smtplib.SMTP('127.0.0.1',int(sys.argv[1]))\n"
        "s.ehlo('t')\n"
        "print(s.docmd('MAIL','FROM:<a@example.com> SIZE=900000'))\n"
        "s.quit()\n")
    out = subprocess.run(["python3", str(script), str(daemon.port)], capture_output=True,
                         text=True, check=True)
    assert "(552" in out.stdout


def test_starttls_delivery(daemon: Daemon) -> None:
    out = swaks(daemon.port, "--to", "tls@localhost", "--from", "a@example.com", "--tls",
                "--header", "Subject: over tls")
    assert "250 2.0.0 Ok: queued as" in out.stdout, out.stdout + out.stderr
    [msg] = delivered(daemon, "tls@localhost")
    assert re.search(rb"with\s+ESMTPS\s+id", msg)


def test_smtputf8_address_and_header(daemon: Daemon) -> None:
    # swaks (20201014) cannot send SMTPUTF8; smtplib can
    msg = ("From: 差出人 <送信@example.com>\r\nTo: 山田@localhost\r\nSubject: 見積書\r\n"
           "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
           "\r\n本文です\r\n").encode()
    with smtplib.SMTP("127.0.0.1", daemon.port) as s:
        s.ehlo("client.test")
        assert s.has_extn("smtputf8") and s.has_extn("8bitmime")
        s.sendmail("送信@example.com", ["山田@localhost"], msg,
                   mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    [got] = delivered(daemon, "山田@localhost")
    assert re.search(rb"with\s+UTF8SMTP\s+id", got)
    assert "見積書" in _decoded_subject(got)
    assert "本文です" in _text(got)


def test_non_ascii_without_smtputf8_refused(daemon: Daemon) -> None:
    out = swaks(daemon.port, "--to", "\u5c71\u7530@localhost", "--from", "a@example.com",
                "--quit-after", "RCPT")
    assert replies(out.stdout)[-2].startswith("553 5.6.7"), out.stdout


def test_hop_limit(daemon: Daemon) -> None:
    hops = [f"Received: from h{i}.example (h{i}.example [192.0.2.{i}]) by x; "
            f"Thu, 1 Jan 2026 00:00:{i:02d} +0000" for i in range(10)]
    args = [a for h in hops for a in ("--add-header", h)]
    out = swaks(daemon.port, "--to", "loop@localhost", "--from", "a@example.com", *args)
    assert replies(out.stdout)[-2].startswith("554 5.4.6"), out.stdout
    out = swaks(daemon.port, "--to", "loop@localhost", "--from", "a@example.com", *args[:-2])
    assert "250 2.0.0 Ok: queued as" in out.stdout, out.stdout


def test_too_many_recipients(daemon: Daemon) -> None:
    rcpts = ",".join(f"r{i}@localhost" for i in range(6))
    out = swaks(daemon.port, "--to", rcpts, "--from", "a@example.com", "--quit-after", "RCPT")
    assert "452 4.5.3" in out.stdout, out.stdout


def test_own_received_header_and_sanitized_copy(daemon: Daemon) -> None:
    out = swaks(daemon.port, "--to", "plain@localhost", "--from", "a@example.com",
                "--header", "X-Sekisho: verdict=clean; job=forged",
                "--header", "Subject: hello")
    qid = re.search(r"queued as (\w+)", out.stdout)
    assert qid, out.stdout
    [msg] = delivered(daemon, "plain@localhost")
    assert re.search(rb"Received: from \S+ \(\[127\.0\.0\.1\]\)\s+by\s+sekisho\.test\s+"
                     rb"\(Sekisho\)\s+with\s+ESMTP\s+id\s+" + qid.group(1).encode(), msg)
    assert b"job=forged" not in msg  # our verdict header cannot be faked
    assert msg.count(b"X-Sekisho:") == 1


def test_whole_message_blocked_gives_notice_and_quarantine(daemon: Daemon,
                                                            tmp_path: Path) -> None:
    out = swaks(daemon.port, "--to", "blocked@localhost", "--from", "a@example.com",
                "--header", "Subject: secret plans", "--body", "original body text")
    assert "250 2.0.0 Ok: queued as" in out.stdout
    [notice] = delivered(daemon, "blocked@localhost")
    assert b"original body text" not in notice and b"secret plans" not in notice
    job = re.search(rb"job=([\w-]+)", notice)
    assert job, notice
    job_id = job.group(1).decode()
    assert b"Auto-Submitted: auto-generated" in notice
    text = base64.b64decode(email.message_from_bytes(notice).get_payload()).decode()
    assert job_id in text and "受付番号" in text and "reference" in text
    stored = (daemon.var / "quarantine" / job_id).read_bytes()
    assert b"original body text" not in stored  # encrypted at rest: neither body
    assert b"secret plans" not in stored        # nor subject readable
    q = Quarantine(daemon.var / "quarantine", load_keyring(daemon.var / "quarantine.key"))
    q.read_original(job_id, tmp_path / "original.eml")
    assert b"original body text" in (tmp_path / "original.eml").read_bytes()
    report = q.read_report(job_id)
    assert report["verdict"] == "blocked" and report["job_id"] == job_id
    assert report["source"] == "smtp" and report["policy"] == "blockmail"
    entry = q.get(job_id)
    assert entry.origin == "smtp" and entry.state == "held" and entry.verdict == "blocked"
    assert entry.destination == {"sender": "a@example.com", "recipients": ["blocked@localhost"]}
    q.close()
    audit = daemon.var / "audit.log"
    [job] = [e for e in map(json.loads, audit.read_text().splitlines())
             if e.get("job_id") == job_id]
    assert (job["event"], job["origin"], job["verdict"], job["policy"]) == (
        "job", "smtp", "blocked", "blockmail")
    assert job["sha256"] == entry.sha256 and job["quarantined"] is True
    assert b"secret plans" not in audit.read_bytes() and b"original body" not in audit.read_bytes()
    assert verify(audit) == []


def test_headerless_text_is_rebuilt_not_passed(daemon: Daemon) -> None:
    out = swaks(daemon.port, "--to", "text@localhost", "--from", "a@example.com",
                "--data", "just some text\nwithout any headers\n")
    assert "250 2.0.0 Ok: queued as" in out.stdout
    [msg] = delivered(daemon, "text@localhost")
    assert b"X-Sekisho: verdict=" in msg and b"without any headers" not in msg  # base64


def test_binary_data_is_blocked_not_passed(daemon: Daemon) -> None:
    # DATA that is no RFC 5322 message at all: fail closed, notice instead
    noise = bytes(b for b in range(256) if b not in (10, 13))
    junk = b"\x89PNG\r\n\x1a\n" + b"\r\n".join([noise] * 20) + b"\r\nMARKER-\x00-JUNK\r\n"
    with smtplib.SMTP("127.0.0.1", daemon.port) as s:
        s.sendmail("a@example.com", ["junk@localhost"], junk, mail_options=["BODY=8BITMIME"])
    [notice] = delivered(daemon, "junk@localhost")
    assert b"verdict=blocked" in notice and b"MARKER" not in notice


def test_split_per_policy_group(daemon: Daemon) -> None:
    before = len(daemon.maildir("blocked@localhost"))  # other tests of the module write there
    out = swaks(daemon.port, "--to", "blocked@localhost,open@localhost", "--from",
                "a@example.com", "--body", "group split body")
    assert "250 2.0.0 Ok: queued as" in out.stdout
    [copy] = delivered(daemon, "open@localhost")
    notices = delivered(daemon, "blocked@localhost", before + 1, timeout=60)
    assert len(notices) == before + 1
    [notice] = [m for m in notices if b"verdict=blocked" in m and b"job=" in m
                and re.search(rb"job=[\w-]+-[12]\b", m)]
    assert b"verdict=clean" in copy
    assert b"verdict=blocked" in notice
    jobs = {re.search(rb"job=([\w-]+)", m).group(1) for m in (copy, notice)}  # type: ignore[union-attr]
    assert len(jobs) == 2 and all(j.endswith((b"-1", b"-2")) for j in jobs)


def test_rset_and_pipelined_transactions(daemon: Daemon, tmp_path: Path) -> None:
    script = tmp_path / "s.py"
    script.write_text(
        "import smtplib,sys\n"
        "s=smtplib.SMTP('127.0.0.1',int(sys.argv[1]))\n"
        "for i in range(3):\n"
        "    s.sendmail('a@example.com',['multi@localhost'],"
        "f'Subject: n{i}\\r\\nMessage-ID: <m{i}@t>\\r\\n\\r\\nbody {i}\\r\\n')\n"
        "    s.rset()\n"
        "s.quit()\n")
    subprocess.run(["python3", str(script), str(daemon.port)], check=True, timeout=60)
    msgs = delivered(daemon, "multi@localhost", 3)
    assert sorted(re.search(rb"Message-ID: (<m\d@t>)", m).group(1)  # type: ignore[union-attr]
                  for m in msgs) == [b"<m0@t>", b"<m1@t>", b"<m2@t>"]


def test_transaction_log_is_one_json_line(daemon: Daemon) -> None:
    out = swaks(daemon.port, "--to", "log@localhost", "--from", "a@example.com")
    qid = re.search(r"queued as (\w+)", out.stdout).group(1)  # type: ignore[union-attr]
    delivered(daemon, "log@localhost")
    time.sleep(0.2)
    events = daemon.events()
    tx = [e for e in events if e.get("event") == "smtp.transaction" and e.get("qid") == qid]
    assert len(tx) == 1 and str(tx[0]["reply"]).startswith("250")
    attempts = [e for e in events if e.get("event") == "delivery.attempt" and e.get("qid") == qid]
    assert len(attempts) == 1 and attempts[0]["codes"] == [250]
