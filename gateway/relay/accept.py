"""Where the SMTP front end hands a message over: spool it, then queue or pass through.

Both modes first write the message and its envelope to the spool (tmp ->
fsync -> rename -> fsync dir): the pipeline takes files, and queue mode's 250
means "it is on disk". The front end has already streamed the message into a
spool draft (``Spool.draft``); committing it runs in the acceptor's own small
thread pool, so a client's 250 never waits behind the queue's file work in the
shared default executor, and concurrent commits share the fsync of the
destination directory (group commit).

- **queue**: committed to ``incoming/``, handed to the queue manager, 250.
- **through** (after-queue content filter): committed to ``active/`` and
  processed while the client waits; the client's reply follows the
  downstream's:

  ======================================  =======================================
  downstream result                       reply to the client
  ======================================  =======================================
  every recipient accepted                250 with the downstream's text
  none accepted, all permanent (5xx)      that 5xx (554 5.0.0 if they differ)
  none accepted, any temporary/no answer  451 with the downstream's text
  some accepted, others not               250; 5xx recipients get a bounce from
                                          us, 4xx ones stay in our queue and are
                                          retried (we took responsibility)
  ======================================  =======================================

  A through entry stays "not accepted" until the mixed case; one left behind
  by a crash is dropped at start-up, because its client never got 250 and
  will send it again.
"""

from __future__ import annotations

import asyncio
import errno
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import structlog

from gateway.egress import Reply
from gateway.ingress import Incoming
from gateway.pipeline.run import new_job_id
from gateway.relay.process import Processor
from gateway.relay.queue import QueueManager
from gateway.store.envelope import Envelope, RcptStatus, Recipient
from gateway.store.spool import ACTIVE, INCOMING, Draft, Spool, SpoolFull

log = structlog.get_logger("sekisho.relay")

BUSY = "451 4.3.2 Too many messages in progress, try again later"
COMMITTERS = 4  # threads committing received messages (fsync-bound, not CPU-bound)


class RelayAcceptor:
    def __init__(self, *, mode: str, spool: Spool, processor: Processor,
                 queue: QueueManager, max_backlog: int, reply_deadline: float) -> None:
        self.mode = mode
        self.spool = spool
        self.processor = processor
        self.queue = queue
        self.max_backlog = max_backlog
        self.reply_deadline = reply_deadline
        self.in_flight = 0  # messages being written (and, in through mode, processed)
        self._commit = ThreadPoolExecutor(COMMITTERS, thread_name_prefix="spool-commit")

    def draft(self, qid: str) -> Draft:
        return self.spool.draft(qid)

    def refuse(self, size: int) -> str | None:
        if self.queue.backlog + self.in_flight >= self.max_backlog:
            return BUSY
        try:
            return self.spool.space_problem(size)
        except OSError:
            return "451 4.3.0 Cannot check spool space, try again later"

    async def accept(self, msg: Incoming) -> str:
        try:
            return await self._accept(msg)
        finally:
            msg.body.discard()  # nothing left behind unless committed

    async def _accept(self, msg: Incoming) -> str:
        size = msg.size
        refusal = self.refuse(size)
        if refusal:
            return refusal
        through = self.mode == "through"
        env = Envelope(qid=msg.qid, sender=msg.sender,
                       recipients=[Recipient(a) for a in msg.recipients],
                       received=time.time(), job_id=new_job_id(), mode=self.mode,
                       client=msg.client, helo=msg.helo, smtputf8=msg.smtputf8,
                       size=size, accepted=not through)
        self.in_flight += 1  # reserved before the first await: refuse() sees it at once
        try:
            try:
                entry = await asyncio.get_running_loop().run_in_executor(
                    self._commit, self.spool.create, env, msg.body,
                    ACTIVE if through else INCOMING)
            except SpoolFull as exc:
                return exc.reply
            except OSError as exc:
                log.error("spool.write_failed", qid=msg.qid, error=exc.strerror)
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    return "452 4.3.1 Insufficient system storage, try again later"
                return "451 4.3.0 Could not store the message, try again later"
            if not through:
                self.queue.enqueue(msg.qid, env)
                return f"250 2.0.0 Ok: queued as {msg.qid}"
            try:
                return await asyncio.wait_for(self._through(entry, env), self.reply_deadline)
            except TimeoutError:
                log.error("through.deadline", qid=msg.qid, deadline=self.reply_deadline)
                await asyncio.to_thread(self.spool.remove, msg.qid, ACTIVE)
                return "451 4.4.2 Processing took too long, try again later"
        finally:
            self.in_flight -= 1

    async def _through(self, entry: Path, env: Envelope) -> str:
        try:
            await self.processor.sanitize(entry, env)
            await self.processor.deliver(entry, env)
        except Exception:
            log.exception("through.error", qid=env.qid)
            await asyncio.to_thread(self.spool.remove, env.qid, ACTIVE)
            return "451 4.3.0 Internal error, try again later"
        sent = [r for r in env.recipients if r.status is RcptStatus.SENT]
        failed = [r for r in env.recipients if r.status is RcptStatus.FAILED]
        pending = env.pending()
        if not failed and not pending:
            await asyncio.to_thread(self.spool.remove, env.qid, ACTIVE)
            texts = _unique(Reply(r.code, r.reply).text for r in sent)
            return f"250 {'; '.join(texts) or '2.0.0 Ok'}"
        if not sent:
            await asyncio.to_thread(self.spool.remove, env.qid, ACTIVE)
            if pending:
                first = Reply(pending[0].code, pending[0].reply)
                return f"451 {first.status()} {first.detail() or 'try again later'}"
            codes = {r.code for r in failed}
            first = Reply(failed[0].code, failed[0].reply)
            if len(codes) == 1:
                return str(first)
            return f"554 5.0.0 {first.detail() or 'delivery failed'}"
        # mixed: we answer 250 and take responsibility for the rest
        env.accepted = True
        await self.processor.persist(entry, env)
        if not await self.processor.finish(entry, env):
            self.queue.defer(env.qid, env.next_attempt)
        return (f"250 2.0.0 Ok: {len(sent)} delivered, {len(pending)} queued for retry, "
                f"{len(failed)} bounced (queue id {env.qid})")


def _unique(items: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen
