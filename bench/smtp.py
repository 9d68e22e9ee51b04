"""SMTP relay benchmark: Sekisho against smtp-sink direct and a plain Postfix relay.

    .venv/bin/python -m bench.smtp [--source N] [--mix N] [--sessions 20] [--write-results]

Every target gets the same two loads, from 127.0.0.1, at ``--sessions`` concurrent
sessions (connections are reused, as MTAs do):

- **smtp-source** (Postfix's load generator): ``-s 20 -m N -l 2000 -d``, one 2 kB
  text message shape; messages/s accepted.
- **mix**: a realistic mix of mail (bench/smtpmix.py: Japanese text, HTML, PDF and
  image attachments up to 1 MB) sent by an asyncio client (aiosmtplib) that times
  each transaction: MAIL to the final reply (p50/p99).

Targets, each delivering to its own smtp-sink (which dumps every message, so the
end-to-end time of each message can be read off the dump file's mtime):

- ``direct``: smtp-sink itself (the ceiling of the load generators);
- ``postfix``: a plain Postfix relay (private config dir, loopback ports, no
  content filter) — what an MTA hop costs;
- ``sekisho-queue`` / ``sekisho-through``: the daemon in each delivery mode;
  ``sekisho-queue-nice0``: queue mode with the workers at the daemon's priority
  (``worker_nice: 0``, what queue mode did before 2026-11-27), the A/B in one run.

Peak RSS is sampled from /proc (VmHWM) for the daemon and its worker processes.
``--write-results`` appends (or, same day, replaces) a section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiosmtplib

from bench import smtpmix
from bench.smtptargets import POSTFIX, PostfixRelay, RSSSampler
from tests.helpers.smtppeers import SMTP_SOURCE, Daemon, Sink

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "smtp"
RESULTS = ROOT / "bench" / "RESULTS.md"


@dataclass
class Row:
    target: str
    load: str
    messages: int
    accepted_per_s: float
    delivered_per_s: float
    client_ms: list[float] = field(default_factory=list)
    e2e_ms: list[float] = field(default_factory=list)
    failed: int = 0
    rss: str = ""

    def cells(self) -> tuple[str, ...]:
        return (self.target, self.load, str(self.messages), f"{self.accepted_per_s:.0f}",
                f"{self.delivered_per_s:.0f}", _pct(self.client_ms, 50),
                _pct(self.client_ms, 99), _pct(self.e2e_ms, 50), _pct(self.e2e_ms, 99),
                str(self.failed), self.rss or "-")


HEADERS = ("target", "load", "msgs", "accepted/s", "delivered/s", "client p50 ms",
           "client p99 ms", "end-to-end p50 ms", "end-to-end p99 ms", "failed", "peak RSS")


def _pct(values: list[float], p: int) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.0f}"
    return f"{statistics.quantiles(values, n=100, method='inclusive')[p - 1]:.0f}"


# ----------------------------------------------------------------------- targets


# ------------------------------------------------------------------------- loads


def run_source(port: int, count: int, sessions: int) -> float:
    started = time.perf_counter()
    proc = subprocess.run([SMTP_SOURCE, "-s", str(sessions), "-m", str(count), "-l", "2000",
                           "-d", "-f", "sender@example.com", "-t", "user@localhost",
                           "-S", "bench", f"127.0.0.1:{port}"], capture_output=True, text=True,
                          timeout=1800, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"smtp-source failed: {proc.stderr[-500:]}")
    return time.perf_counter() - started


async def _session(port: int, work: list[tuple[int, bytes]], sent: dict[str, float],
                   client_ms: list[float], failures: list[int]) -> None:
    smtp: aiosmtplib.SMTP | None = None
    while work:
        i, data = work.pop()
        mid = f"bench-{i}-{os.getpid()}@bench.test"
        data = data.replace(smtpmix.MID, mid.encode())
        try:
            if smtp is None:
                smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=600)
                await smtp.connect()
            t0 = time.perf_counter()
            sent[f"<{mid}>"] = time.time()
            await smtp.sendmail("sender@example.com", [f"user{i % 50}@localhost"], data)
            client_ms.append((time.perf_counter() - t0) * 1000)
        except aiosmtplib.SMTPException:
            failures.append(i)
            if smtp is not None:
                smtp.close()
            smtp = None
    if smtp is not None:
        try:
            await smtp.quit()
        except aiosmtplib.SMTPException:
            smtp.close()


def run_mix(port: int, count: int, sessions: int) -> tuple[float, dict[str, float],
                                                           list[float], list[int]]:
    tpl = smtpmix.templates()
    work = [(i, tpl[name]) for i, name in enumerate(smtpmix.mix(count))][::-1]
    sent: dict[str, float] = {}
    client_ms: list[float] = []
    failures: list[int] = []

    async def main() -> None:
        await asyncio.gather(*(_session(port, work, sent, client_ms, failures)
                               for _ in range(sessions)))

    started = time.perf_counter()
    asyncio.run(main())
    return time.perf_counter() - started, sent, client_ms, failures


def arrivals(sink: Sink) -> dict[str, float]:
    out: dict[str, float] = {}
    for p in sink.dumps.iterdir():
        with open(p, "rb") as f:
            head = f.read(8192)
        m = re.search(rb"(?im)^message-id:\s*(<[^>\r\n]+>)", head)
        if m:
            out[m.group(1).decode()] = p.stat().st_mtime
    return out


def wait_count(sink: Sink, n: int, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(1 for _ in sink.dumps.iterdir()) >= n:
            return time.monotonic()
        time.sleep(0.05)
    raise TimeoutError(f"sink got {sum(1 for _ in sink.dumps.iterdir())} of {n}")


# --------------------------------------------------------------------- scenarios


Start = Callable[[int, Path], tuple[int, Callable[[], object], int | None]]


def _direct(sink_port: int, work: Path) -> tuple[int, Callable[[], object], int | None]:
    return sink_port, lambda: None, None


def _postfix(sink_port: int, work: Path) -> tuple[int, Callable[[], object], int | None]:
    relay = PostfixRelay(work, sink_port)
    return relay.start(), relay.stop, None


def _sekisho(mode: str, nice: int | None = None) -> Start:
    def start(sink_port: int, work: Path) -> tuple[int, Callable[[], object], int | None]:
        settings: dict[str, object] = {
            "delivery": {"mode": mode, "target": "smtp",
                         "smtp": {"port": sink_port, "starttls": "no"}},
            "smtp": {"max_sessions": 200}}
        if nice is not None:
            settings["worker_nice"] = nice
        d = Daemon(work, settings)
        port = d.start()
        assert d.proc is not None
        return port, lambda: d.stop(), d.proc.pid  # noqa: PLW0108 - returns the exit code
    return start


def run_dir() -> Path:
    """A new directory for this run's targets, spread to its own ext4 block group.

    Nothing is deleted while targets are measured: without a journal, ext4 skips
    every inode freed in the last minutes when it allocates one and looks each up on
    the way, so files created near thousands just deleted (the previous run's spool,
    quarantine and sink dumps) cost 4-30 times the kernel CPU (see NOTES). ``chattr +T``
    makes OUT a top directory: each run's directory goes to a group of its own. Old
    runs are deleted after this one is measured.
    """
    OUT.mkdir(parents=True, exist_ok=True)
    subprocess.run(["chattr", "+T", str(OUT)], capture_output=True, check=False)
    work = OUT / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    work.mkdir()
    return work


def clean_old_runs(keep: Path) -> None:
    for old in OUT.iterdir():
        if old != keep:
            shutil.rmtree(old, ignore_errors=True)


def scenario(name: str, start: Start, args: argparse.Namespace, base: Path) -> list[Row]:
    work = base / name
    work.mkdir(parents=True)
    sink = Sink(work / "sink")
    sink.start()
    rows = []
    port, stop, pid = start(sink.port, work / "target")
    sampler = RSSSampler(pid) if pid else None
    try:
        if args.source:
            t0 = time.monotonic()
            took = run_source(port, args.source, args.sessions)
            done = wait_count(sink, args.source, 900)
            rows.append(Row(name, "smtp-source 2 kB", args.source, args.source / took,
                            args.source / (done - t0)))
            print(f"{name}: smtp-source {args.source} in {took:.1f} s", flush=True)
        if args.mix:
            before = sum(1 for _ in sink.dumps.iterdir())  # kept: deleting costs (run_dir)
            t0 = time.monotonic()
            took, sent, client_ms, failures = run_mix(port, args.mix, args.sessions)
            done = wait_count(sink, before + args.mix - len(failures), 900)
            got = arrivals(sink)
            e2e = [(got[m] - t) * 1000 for m, t in sent.items() if m in got]
            rows.append(Row(name, "mix", args.mix, args.mix / took, args.mix / (done - t0),
                            client_ms, e2e, len(failures)))
            print(f"{name}: mix {args.mix} in {took:.1f} s ({len(failures)} failed)",
                  flush=True)
    finally:
        if sampler is not None:
            rss = sampler.report()
            for row in rows:
                row.rss = rss
        stop()
        sink.close()
    return rows


# ------------------------------------------------------------------------ report


def _facts(args: argparse.Namespace, load_before: str) -> list[tuple[str, str]]:
    def out(*cmd: str) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, check=False,
                                  cwd=ROOT).stdout.strip()
        except OSError:
            return "?"

    cpu = next((ln.split(":", 1)[1].strip() for ln in
                Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name")),
               "?")
    mem = int(Path("/proc/meminfo").read_text().split()[1]) / 1024**2
    commit = out("git", "rev-parse", "--short", "HEAD")
    dirty = " + uncommitted changes" if out("git", "status", "--porcelain", "gateway") else ""
    import aiosmtpd

    return [
        ("command", f"`.venv/bin/python -m bench.smtp {' '.join(sys.argv[1:])}` (in /work/main)"),
        ("date", time.strftime("%a %b %d %H:%M:%S %Z %Y")),
        ("machine", f"nproc {os.cpu_count()}, {cpu}, {mem:.1f} GiB RAM, "
                    f"{platform.system()} {platform.release()}"),
        ("versions", f"Python {platform.python_version()}, aiosmtpd {aiosmtpd.__version__}, "
                     f"aiosmtplib {aiosmtplib.__version__}, "
                     f"Postfix {out('postconf', '-dh', 'mail_version')}"),
        ("sekisho", f"commit {commit}{dirty}; default policy; daemon logs at INFO (JSON)"),
        ("load", f"{args.sessions} concurrent sessions; smtp-source {args.source} messages, "
                 f"mix {args.mix} messages ({', '.join(f'{n} {s}%' for n, s in smtpmix.SHARES)})"),
        ("load average (1/5/15 min)", f"{load_before} before, {_loadavg()} after"),
    ]


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def markdown(rows: list[Row], facts: list[tuple[str, str]], notes: list[str]) -> str:
    day = time.strftime("%Y-%m-%d")
    lines = [f"<!-- bench-smtp:begin {day} -->", f"## SMTP relay — {day}", ""]
    lines += [f"- {k}: {v}" for k, v in facts]
    lines += ["", "| " + " | ".join(HEADERS) + " |",
              "|" + "|".join("---" if i < 2 else "---:" for i in range(len(HEADERS))) + "|"]
    lines += ["| " + " | ".join(r.cells()) + " |" for r in rows]
    lines += ["", *[f"- {n}" for n in notes], "", "<!-- bench-smtp:end -->", ""]
    return "\n".join(lines)


def write_results(text: str) -> None:
    current = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    day = time.strftime("%Y-%m-%d")
    pattern = re.compile(rf"<!-- bench-smtp:begin {day} -->\n.*?<!-- bench-smtp:end -->\n*",
                         re.DOTALL)
    if pattern.search(current):
        current = pattern.sub(lambda _: text + "\n", current)
    else:
        current = current.rstrip("\n") + "\n\n" + text
    RESULTS.write_text(current, encoding="utf-8")


NOTES = [
    "accepted/s: messages / time until the load generator finished (the SMTP replies); "
    "delivered/s: messages / time until the last one reached smtp-sink.",
    "client p50/p99: one transaction, MAIL to the reply after the data. In queue mode "
    "(Sekisho and Postfix) that is \"on disk\"; in through mode it includes sanitizing "
    "and the downstream's reply.",
    "end-to-end: from the client starting the transaction to the dump file at smtp-sink "
    "(its mtime); messages blocked outright (delivered as a notice with a new "
    "Message-ID) are not in it.",
    "smtp-sink dumps every message to disk in every row, so all targets pay the same sink cost.",
    "queue mode: while accepted/s exceeds delivered/s the backlog grows, and end-to-end "
    "times grow with it (they measure the queue, not one message).",
    "a plain Postfix relay has no content filter: the gap to it is the price of sanitizing "
    "(pipeline in worker processes, quarantine of every original, fsyncs) and of Python.",
    "first run (commit 46183ac, same machine, a quiet hour: load 0.05 before): sekisho-queue "
    "smtp-source accepted 258/s, delivered 149/s, against Postfix 736/s and 579/s (35% and "
    "26%); mix accepted 179/s, delivered 106/s, against 335/s and 318/s.",
    "changed since (session 1): DATA is read in chunks and streamed to the spool (aiosmtpd "
    "read it line by line into memory); PIPELINING is advertised; a plain <local@domain> "
    "skips the email package's RFC 5322 parser; the replies to pipelined commands leave in "
    "one send; received mail is committed in the acceptor's own threads with one shared "
    "fsync of incoming/ for concurrent commits; at most workers + 1 messages are sanitized "
    "at once. Then quarantine encryption at rest, the audit log, PPAP and metrics landed "
    "(more work per message): the same command gave accepted 38-48% and delivered 14% of "
    "Postfix (daemon 7-10 ms CPU per message, half of it GIL hand-offs to the threads "
    "doing file work).",
    "changed since (session 2, this table): the original is quarantined and the audit line "
    "written in the worker process that sanitized the message, right after the pipeline "
    "(gateway/relay/custody.py), not in daemon threads; the audit anchor is rewritten in "
    "place (no new file per line); the front end hands its envelope to the queue (no read "
    "back) and the incoming -> active rename runs in the loop; a message delivered to every "
    "recipient at its first attempt is removed without writing its sanitized state "
    "(envelope rewrite, output fsync, original unlink: only when it stays for a retry or a "
    "bounce); small messages are read for delivery without a thread. Daemon CPU per "
    "message 10.2 -> 3.5-3.9 ms (/proc accounting over 2000 smtp-source messages), "
    "workers 2.4 -> 4.5-5.3 ms (pipeline ~1.1 ms, quarantine sealing ~2 ms, audit "
    "~0.3 ms, pebble); delivered/s about 1.6x (88-108 -> 150-184 in runs of that script). "
    "Then: no uuencode scan of text without \"begin\", the quarantine's JSON sealed "
    "compact (json's C encoder), the A-label form of domains cached: daemon 3.2-3.5 ms, "
    "workers 3.6-4.2 ms, delivered/s 182-199 in two runs of the script.",
    "where the time goes now: the machine is CPU-bound (about 88% busy over both cores "
    "during the 2 kB run: daemon, two workers, smtp-source and smtp-sink share 2 cores). "
    "Creating a file costs 0.25-0.35 ms of kernel CPU on this root file system (ext4 "
    "without a journal, mounted with discard) and a message creates 8: spool directory, "
    "message and envelope, the output, the quarantine entry's directory and its three "
    "sealed files; and about a dozen fsyncs (spool commit 4, quarantine 5, audit 2, "
    "removal 1, some shared between concurrent messages), each an I/O submission that "
    "exits to the hypervisor here (virtio kick), against one per message for Postfix. A "
    "system-wide perf profile still puts most of the time in the Python interpreter "
    "(daemon: aiosmtpd, asyncio, aiosmtplib, logging; workers: MIME parse, rebuild and "
    "verify, sealing). The daemon's event loop thread is only about 35% busy; the front "
    "end's latency comes from waiting for a CPU and for its commit thread (fsyncs, then "
    "the GIL).",
    "tried and not kept (A/B, alternating runs of the same script): pipeline workers at nice "
    "10 — accepted/s +10-20%, delivered/s -10-20% (sustained throughput matters more; "
    "taken up again in session 9 with more runs: delivered/s does not drop, see below); "
    "sys.setswitchinterval 1 ms or 20 ms instead of 5 ms — both slower; 2 or 8 commit "
    "threads instead of 4 — both slower.",
    "verdict on the issue's targets: memory is bounded (large messages go to disk, no "
    "per-session buffer grows with the message). Throughput: the 2 kB smtp-source load is "
    "accepted at 30-49% of Postfix in this session's runs (Postfix itself measured "
    "587-992/s across them; Sekisho 276-337/s) and delivered at 22-26% (14% before); not "
    "yet the 50% asked for. The mix is accepted at 62-70%. Making the pipeline cheaper "
    "raised delivered/s but not accepted/s: the workers then finish more messages in the "
    "same CPU share. Why the front end lags under load: its 20 sessions "
    "are served by one event-loop thread, which competes for the two cores with the two "
    "busy worker processes (Postfix runs one smtpd process per session); lowering the "
    "workers' priority buys accepted/s with delivered/s (above). Next steps: "
    "the SMTP front end in its own processes (SO_REUSEPORT; its own GIL, handing qids to "
    "the queue manager), fewer files per message (spool entry and quarantine entry as "
    "single files: committing a received message as one file instead of a directory with "
    "message and envelope measured 0.54 instead of 1.35 ms wall and 0.36 instead of 0.80 ms "
    "CPU here, and that commit is on the path to every 250: with one session and no "
    "load, a whole smtp-source transaction takes 5-6 ms against Postfix's 1.2 ms, and 3.4 ms "
    "of it (median) is the wait from the end of DATA to our 250).",
    "session 3 (2026-11-27), what durability costs, measured to choose the next step: an "
    "experiment build with every fsync taken out (spool commit, quarantine, audit; never a "
    "setting) against the real one, alternating, three runs each of 2000 smtp-source "
    "messages: accepted 306-335/s against 223-310/s, delivered 161-181/s against "
    "122-158/s, about +20%. So fsyncs are not what keeps the relay below half of Postfix, "
    "and the single-file spool and quarantine entries named above would buy part of that "
    "20% at most; they were not built. Quarantining only blocked originals "
    "(quarantine.keep: blocked instead of the default all) raised delivered/s by 13-46% "
    "in four alternating runs (the worker's CPU per message 3.9-5.2 -> 2.3-2.8 ms): the "
    "sealing of every clean original is the largest single cost after the pipeline, kept "
    "by default because the design keeps every original. The lever left is CPU in Python "
    "per message: the front end in its own process and a cheaper quarantine write.",
    "session 4 (2026-11-27), why consecutive runs drifted: creating a file on this "
    "machine's root file system costs 0.02-0.8 ms of kernel CPU, depending on what was "
    "deleted nearby in the last minutes. perf puts the time in ext4's inode allocator "
    "(find_inode_bit -> recently_deleted -> find_get_block_common): without a journal, "
    "ext4 skips inodes freed in the last 60 s (360 s while their inode table block is "
    "dirty) and looks each one up on the way. The worker's CPU per message (pipeline and "
    "quarantine, an in-process loop of 1000 messages) measured 3.0 ms in a fresh "
    "directory, 6.4 ms right after deleting a previous loop's files in the same place, "
    "1.8 ms on tmpfs. This script used to delete the previous run's files (and the "
    "sink's dumps between the two loads) before measuring; each run now gets a new "
    "directory in a block group of its own (chattr +T on bench/out/smtp) and old runs "
    "are deleted afterwards. Tried and not kept: spool entries recycled instead of "
    "deleted (the relay itself then frees no inode): delivered/s +15% in three "
    "alternating runs, no difference in two more. A whole-machine perf profile during a "
    "run: Python user code 46% of all CPU, kernel work of the Python processes 26% "
    "(virtio notifications for fsyncs 4%, context switches 3%, inode allocation 2%, the "
    "rest spread thin), smtp-sink 7%, idle 14%.",
    "session 5 (2026-11-27), the remaining levers priced before building them: the "
    "quarantine entry as one sealed file instead of a directory of three (in-process "
    "loop of 1000 entries, fresh directory, alternating): 0.33-0.39 ms CPU and "
    "0.57-0.72 ms wall per entry against 0.86-0.90 and 1.51-1.65 ms, i.e. about 0.5 ms of "
    "the ~8 ms of CPU a text message costs in daemon and worker together (6%); the "
    "daemon's event-loop thread (cProfile, wall time, 2000 messages) spends 2.9 s in "
    "16088 socket sends (8 per message: the SMTP replies and the unpipelined "
    "MAIL/RCPT/DATA/body towards the downstream), most of it waiting to run again after "
    "waking the peer on a 2-core machine, not CPU. Neither reaches the factor of about 2 "
    "that 50% of Postfix needs; not built.",
    "session 7 (2026-11-27), CPU per message by process (/proc of the daemon and of "
    "every worker sampled every 50 ms, 2000 smtp-source messages, four runs): daemon "
    "3.4-3.8 ms (user 2.0-2.3, system 1.4-1.6), workers 4.2-4.7 ms (user 3.0-3.5, "
    "system 1.1-1.3), machine 80-86% busy; a worker's job alone, in process: pipeline "
    "1.6 ms CPU, pipeline with quarantine and audit 3.5 ms CPU (4.5 ms wall, 7 fsyncs). "
    "Half of Postfix's delivered/s needs about 4 ms for both together. Tried and not "
    "kept: uvloop as the daemon's event loop (daemon -0.3 ms CPU per message, "
    "accepted/delivered within the noise in two alternating pairs), 3 or 4 workers "
    "instead of 2 (no gain; slower in one run).",
    "session 9 (2026-11-27): the front end alone (queue mode, no queue workers running, "
    "an experiment build) accepted smtp-source's 2000 messages at 736-769/s with 1.6 ms "
    "of daemon CPU per message, so the front end was not the limit: the two worker "
    "processes, at the daemon's priority, took the CPU it needed. Queue mode now runs them "
    "at nice 19 (worker_nice; through mode keeps 0, its client waits for the pipeline). "
    "Alternating runs before the change (workers nice 0 / 19, accepted/delivered per s): "
    "313/152 375/134, 269/147 473/154, 263/136 340/117, 321/158 523/170; nice 5 and 10 "
    "gave about half the gain, SCHED_BATCH none. Then three runs with the row "
    "sekisho-queue-nice0 of this script beside it: accepted 480 / 446 / 411 against "
    "294 / 286 / 273 (about 1.55x), delivered 162 / 161 / 156 against 172 / 163 / 151 "
    "(the same); against Postfix's 711 / 1009 / 1039 accepted in those runs that is "
    "68%, 44%, 40%. Postfix's own figure moves by up to 2x between runs on this machine. "
    "Through mode with the workers at nice 19 was 7-10% slower (one run), hence 0 "
    "there. A job's time limit now counts its own time, not waiting for a CPU "
    "(gateway/pipeline/jobclock.py), so the lower priority cannot time documents out.",
    "memory: a 30 MB message raises the daemon's RSS by about 2 MiB "
    "(tests/integration/test_smtp_memory.py); before, aiosmtpd held it whole in memory "
    "(about twice its size while joining the lines).",
]


def ratios(rows: list[Row]) -> list[str]:
    """sekisho-queue (and its nice0 variant) against Postfix, per load, from this run."""
    out = []
    for target in ("sekisho-queue", "sekisho-queue-nice0"):
        for load in dict.fromkeys(r.load for r in rows):
            mine = next((r for r in rows if r.target == target and r.load == load), None)
            base = next((r for r in rows if r.target == "postfix" and r.load == load), None)
            if mine and base and base.accepted_per_s and base.delivered_per_s:
                out.append(f"{target} / postfix, {load}: accepted "
                           f"{100 * mine.accepted_per_s / base.accepted_per_s:.0f}%, delivered "
                           f"{100 * mine.delivered_per_s / base.delivered_per_s:.0f}% "
                           f"(target for text mail: >= 50%)")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.smtp", description=__doc__.split("\n")[0])
    p.add_argument("--source", type=int, default=2000, help="smtp-source messages (0: skip)")
    p.add_argument("--mix", type=int, default=1000, help="mixed messages (0: skip)")
    p.add_argument("--sessions", type=int, default=20)
    p.add_argument("--targets",
                   default="direct,postfix,sekisho-queue,sekisho-queue-nice0,sekisho-through")
    p.add_argument("--write-results", action="store_true")
    args = p.parse_args(argv)
    load_before = _loadavg()
    starts: dict[str, Start] = {"direct": _direct, "postfix": _postfix,
                                "sekisho-queue": _sekisho("queue"),
                                # the workers at the daemon's priority (before 2026-11-27)
                                "sekisho-queue-nice0": _sekisho("queue", nice=0),
                                "sekisho-through": _sekisho("through")}
    rows: list[Row] = []
    notes = list(NOTES)
    base = run_dir()
    for name in args.targets.split(","):
        if name == "postfix" and not Path(POSTFIX).exists():
            notes.append("postfix: not installed, row skipped")
            continue
        try:
            rows += scenario(name, starts[name], args, base)
        except (RuntimeError, subprocess.CalledProcessError, TimeoutError) as exc:
            notes.append(f"{name}: failed: {str(exc)[:200]}")
            print(f"{name}: failed: {exc}", file=sys.stderr)
    clean_old_runs(keep=base)
    notes[:0] = ratios(rows)
    text = markdown(rows, _facts(args, load_before), notes)
    print(text)
    if args.write_results:
        write_results(text)
        print(f"written to {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
