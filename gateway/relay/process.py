"""Sanitize, deliver, finish: the steps every spooled message goes through.

- ``sanitize``: one pipeline job per policy group, in the worker pool. The MIME
  stage rebuilds the whole message into ``out-N.eml``. Delivered verdicts
  (clean, disarmed) deliver that copy; blocked and failed ones (and anything
  that turned out not to be a mail message at all) deliver a block notice
  instead, from ``<>``. The original and the report go to quarantine (by the
  ``quarantine.keep`` setting; blocked and failed ones always) and the audit
  log gets its line — both in the worker, right after the pipeline
  (gateway/relay/custody.py). The envelope changes in memory only.
- ``deliver``: each group's pending recipients through the egress; every
  recipient's reply is recorded (2xx sent, 5xx failed, anything else pending).
- ``persist`` (only when the entry stays: something to retry or bounce): the
  outputs are fsynced, the envelope says "sanitized", the original leaves the
  spool.
- ``finish``: bounce what failed for good (never to ``<>``, never for a message
  we wrote), then remove the entry, or schedule the next attempt with
  exponential backoff; past the queue lifetime pending recipients fail too.

Every state change is written to the envelope (atomically, fsynced) before the
next step relies on it. The one shortcut: a message delivered to every
recipient at its first attempt is removed without its "sanitized" state ever
being written — that saves an envelope rewrite and two fsyncs per message, and a
crash before the removal only repeats what a crash after the downstream's 250
repeated anyway (README, "Duplicates", window 2): it is sanitized and delivered
again.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from gateway.config import QueueConfig
from gateway.egress import Egress, Reply
from gateway.models import Report
from gateway.pipeline.run import new_job_id
from gateway.pipeline.workers import JobSpec, WorkerPool
from gateway.relay import notices
from gateway.relay.custody import Custody, Settled, settle
from gateway.relay.ppap import PPAP
from gateway.relay.routing import Router
from gateway.store import durable
from gateway.store.audit import AuditLog
from gateway.store.envelope import Envelope, Group, RcptStatus, Recipient, State
from gateway.store.quarantine import Quarantine
from gateway.store.spool import ACTIVE, DEFERRED, INCOMING, MESSAGE, Spool, new_qid

log = structlog.get_logger("sekisho.relay")


@dataclass(slots=True)
class Processor:
    spool: Spool
    quarantine: Quarantine
    pool: WorkerPool
    router: Router
    egress: Egress
    queue: QueueConfig
    hostname: str
    keep: str = "all"                 # quarantine.keep: all | changed | blocked
    delivery_slots: asyncio.Semaphore | None = None
    #: told the qid of each message ``inject`` queued (the queue manager schedules it)
    on_inject: Callable[[str], None] | None = None
    #: told every sanitized group's report and final verdict (metrics; must not raise)
    on_report: Callable[[Report, str], None] | None = None
    #: takes password-protected attachments out for the recipient to open (PPAP)
    ppap: PPAP | None = None
    #: one "job" line per sanitized group (no content: verdict, findings by kind, sha256)
    audit: AuditLog | None = None
    #: messages sanitized at once; None: the pool's workers + 1 (one waits ready for the
    #: next free worker). More would only wait for a worker, while their spool and
    #: quarantine work in this process crowds out the SMTP sessions (bench/RESULTS.md:
    #: accepted/s up ~1.2x on 2 x workers, ~1.8x on 20, delivered/s the same).
    #: Deliveries are not limited by it (delivery_slots).
    sanitize_slots: asyncio.Semaphore | None = None

    # ------------------------------------------------------------------ sanitize

    async def sanitize(self, entry: Path, env: Envelope) -> None:
        if self.sanitize_slots is None:
            self.sanitize_slots = asyncio.Semaphore(self.pool.workers + 1)
        async with self.sanitize_slots:
            await self._sanitize(entry, env)

    async def _sanitize(self, entry: Path, env: Envelope) -> None:
        original = entry / MESSAGE
        groups = self.router.groups(env.sender, [r.addr for r in env.recipients])
        out_groups: list[Group] = []
        for gi, (pol, members) in enumerate(groups):
            job_id = env.job_id if len(groups) == 1 else f"{env.job_id}-{gi + 1}"
            out = entry / f"out-{gi}.eml"  # the pipeline truncates a crashed run's leftover
            spec = JobSpec(job_id, original, out, "message.eml", "smtp")
            recipients = [env.recipients[i].addr for i in members]
            meta = {"origin": "smtp", "qid": env.qid, "job_id": job_id, "policy": pol.name,
                    "sender": env.sender, "recipients": recipients, "client": env.client,
                    "helo": env.helo, "received": env.received, "size": env.size}
            started = time.monotonic()
            custody = Custody(self.quarantine.root, self.quarantine.keys,
                              self.quarantine.retention, self.keep,
                              self.audit.path if self.audit is not None else None, meta)
            done = await asyncio.wrap_future(self.pool.submit_then(spec, pol, custody))
            if done.error:
                raise RuntimeError(f"quarantine or audit failed in the worker: {done.error}")
            report = done.report
            settled = done.after
            if not isinstance(settled, Settled):  # the worker did not get that far
                settled = await asyncio.to_thread(
                    settle, report, original, keep=self.keep, meta=meta,
                    quarantine=self.quarantine, audit=self.audit)
            verdict, reason = settled.verdict, settled.reason
            if self.on_report is not None:
                try:
                    self.on_report(report, verdict.value)
                except Exception:  # metrics never fail a message
                    log.exception("relay.report_listener_failed", qid=env.qid)
            if verdict.delivered:
                group = Group(pol.name, job_id, out.name, verdict.value, env.sender)
            else:
                notice = notices.block_notice(
                    hostname=self.hostname, job_id=job_id, sender=env.sender,
                    received=env.received, size=env.size, reason=reason,
                    langs=pol.mail.notice)
                await asyncio.to_thread(_rewrite, out, notice)
                group = Group(pol.name, job_id, out.name, verdict.value, "", reason)
            if self.ppap is not None and verdict.delivered:
                await self.ppap.consider(original, report=report, sender=env.sender,
                                         recipients=recipients, policy=pol.name,
                                         mail_job=job_id)
            for i in members:
                env.recipients[i].group = gi
            out_groups.append(group)
            log.debug("relay.sanitized", qid=env.qid, job_id=job_id, policy=pol.name,
                      verdict=verdict.value, reason=reason or None,
                      elapsed_ms=int((time.monotonic() - started) * 1000))
        env.groups = out_groups
        env.state = State.SANITIZED  # in memory: on disk only by persist()

    async def persist(self, entry: Path, env: Envelope) -> None:
        """Record a freshly sanitized entry on disk: its outputs fsynced, the envelope
        saying "sanitized" (with each recipient's state), and the original removed
        (it is in quarantine, or not kept by config).

        Needed only when the entry stays in the spool after its first delivery attempt
        (something to retry or to bounce). An entry delivered at once is removed
        without it: a crash before the removal finds it "received" and sanitizes it
        again (the delivery window in README "Duplicates"), so its outputs never have
        to be durable.
        """
        await asyncio.to_thread(self._persist, entry, env)

    def _persist(self, entry: Path, env: Envelope) -> None:
        for group in env.groups:
            durable.fsync_file(entry / group.file)
        self.spool.save(entry, env)
        (entry / MESSAGE).unlink(missing_ok=True)
        self.spool.measure(env.qid)

    # ------------------------------------------------------------------ deliver

    async def deliver(self, entry: Path, env: Envelope) -> None:
        env.attempts += 1
        for gi, group in enumerate(env.groups):
            rcpts = [r for r in env.recipients
                     if r.group == gi and r.status is RcptStatus.PENDING]
            if rcpts:
                await self._deliver_group(entry, env, group, rcpts)

    async def _deliver_group(self, entry: Path, env: Envelope, group: Group,
                             rcpts: list[Recipient]) -> None:
        addrs = [r.addr for r in rcpts]
        utf8 = env.smtputf8 and not all(a.isascii() for a in [group.sender, *addrs])
        started = time.monotonic()
        if self.delivery_slots is not None:
            async with self.delivery_slots:
                results = await self.egress.send(group.sender, addrs, entry / group.file,
                                                 smtputf8=utf8)
        else:
            results = await self.egress.send(group.sender, addrs, entry / group.file,
                                             smtputf8=utf8)
        for r in rcpts:
            reply = results.get(r.addr) or Reply(451, "4.3.0 no reply recorded")
            r.code, r.reply = reply.code, reply.text
            r.status = (RcptStatus.SENT if reply.ok else
                        RcptStatus.FAILED if reply.permanent else RcptStatus.PENDING)
        codes = sorted({r.code for r in rcpts})
        log.info("delivery.attempt", qid=env.qid, job_id=group.job_id, target=self.egress.name,
                 sender=group.sender, recipients=len(rcpts), attempt=env.attempts,
                 codes=codes, reply=rcpts[0].reply[:200],
                 sent=sum(r.status is RcptStatus.SENT for r in rcpts),
                 failed=sum(r.status is RcptStatus.FAILED for r in rcpts),
                 deferred=sum(r.status is RcptStatus.PENDING for r in rcpts),
                 elapsed_ms=int((time.monotonic() - started) * 1000))

    # ------------------------------------------------------------------ finish

    async def finish(self, entry: Path, env: Envelope, *, frm: str = ACTIVE) -> bool:
        """Bounce, then remove or defer. True when the entry is gone (nothing pending)."""
        now = time.time()
        if env.pending() and now - env.received >= self.queue.lifetime:
            for r in env.pending():
                last = Reply(r.code if r.code >= 400 else 451, r.reply or "4.4.7 no answer")
                r.status = RcptStatus.FAILED
                r.code = last.code
                r.reply = (f"{last.status()} Message expired after {env.attempts} "
                           f"attempt(s); last reply: {last}")
        await self._bounce(entry, env)
        if not env.pending():
            await asyncio.to_thread(self.spool.remove, env.qid, frm)
            return True
        env.next_attempt = now + self.backoff(env.attempts)
        await asyncio.to_thread(self.spool.save, entry, env)
        if frm != DEFERRED:
            await asyncio.to_thread(self.spool.move, env.qid, frm, DEFERRED)
        return False

    def backoff(self, attempts: int) -> float:
        """Postfix-like: retry_min, doubling up to retry_max, with up to 10% jitter."""
        base = min(self.queue.retry_max, self.queue.retry_min * 2 ** max(0, attempts - 1))
        return float(base) * (1 + random.random() * 0.1)  # noqa: S311 - jitter, not security

    async def _bounce(self, entry: Path, env: Envelope) -> None:
        todo = [r for r in env.recipients if r.status is RcptStatus.FAILED and not r.bounced]
        if not todo:
            return
        by_group: dict[int, list[Recipient]] = {}
        for r in todo:
            by_group.setdefault(r.group, []).append(r)
        for gi, rcpts in by_group.items():
            group = env.groups[gi] if 0 <= gi < len(env.groups) else None
            sender = group.sender if group is not None else env.sender
            if not sender or env.generated:
                log.warning("bounce.dropped", qid=env.qid, recipients=len(rcpts),
                            why="null sender" if not sender else "message we generated")
                continue
            failed = [(r.addr, Reply(r.code, r.reply)) for r in rcpts]
            data = notices.bounce(hostname=self.hostname, qid=env.qid, sender=sender,
                                  received=env.received, remote=self.egress.name,
                                  failed=failed,
                                  original=entry / group.file if group else None)
            await self.inject(sender, data, smtputf8=not sender.isascii(), origin=env.qid)
        for r in todo:
            r.bounced = True
        await asyncio.to_thread(self.spool.save, entry, env)

    async def inject(self, recipient: str, data: bytes, *, smtputf8: bool,
                     origin: str) -> str:
        """Queue a message we wrote (a bounce, a notice) from <> to ``recipient``; no
        pipeline."""
        return await self.queue_message("", [recipient], data, smtputf8=smtputf8,
                                        origin=origin)

    async def queue_message(self, sender: str, recipients: list[str], data: bytes, *,
                            smtputf8: bool, origin: str, job_id: str | None = None) -> str:
        """Queue ``data`` for delivery as it is (no pipeline): messages we wrote, and
        originals an administrator released from quarantine. Never bounced."""
        qid = new_qid()
        job_id = job_id or new_job_id()
        env = Envelope(qid=qid, sender=sender,
                       recipients=[Recipient(r, group=0) for r in recipients],
                       received=time.time(), job_id=job_id, smtputf8=smtputf8,
                       size=len(data), state=State.SANITIZED, generated=True,
                       groups=[Group("-", job_id, MESSAGE, "clean", sender)])
        await asyncio.to_thread(self.spool.create, env, data, INCOMING)
        log.info("relay.queued", qid=qid, origin=origin, recipients=len(recipients))
        if self.on_inject is not None:
            self.on_inject(qid)
        return qid


def _rewrite(path: Path, data: bytes) -> None:
    path.unlink(missing_ok=True)
    durable.write(path, data)
