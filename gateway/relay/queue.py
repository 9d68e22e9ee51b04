"""The queue manager: store-and-forward delivery with retries (queue mode).

Work comes from three places: messages the SMTP front end just committed to
``incoming/``, bounces the relay wrote, and ``deferred/`` entries whose next
attempt is due (a heap of (time, qid), loaded from the spool at start-up).
A fixed number of worker tasks claim entries by renaming them into
``active/`` and run sanitize -> deliver -> finish.

``backlog`` counts messages received but not yet sanitized; the front end
answers 451 4.3.2 when it reaches ``queue.max_backlog`` (backpressure, never
unbounded buffering: the messages themselves are on disk, the in-memory queue
holds only their ids).

Shutdown: stop taking work, let running entries finish for a grace period,
cancel the rest, and put everything left in ``active/`` back (by its envelope
state) so the next start resumes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time

import structlog

from gateway.relay.process import Processor
from gateway.store.envelope import Envelope, State
from gateway.store.spool import ACTIVE, DEFERRED, INCOMING, Spool

log = structlog.get_logger("sekisho.queue")


class QueueManager:
    def __init__(self, processor: Processor, spool: Spool, *, max_active: int) -> None:
        self.processor = processor
        self.spool = spool
        self.max_active = max_active
        self._unsanitized: set[str] = set()
        #: (qid, where it is, its envelope when already in memory: fresh from the front end)
        self._ready: asyncio.Queue[tuple[str, str, Envelope | None]] = asyncio.Queue()
        self._deferred: list[tuple[float, str]] = []
        self._wake = asyncio.Event()
        self._workers: list[asyncio.Task[None]] = []
        self._busy: set[asyncio.Task[None]] = set()
        self._scheduler: asyncio.Task[None] | None = None
        self._stopping = False
        processor.on_inject = self.enqueue_generated

    # ------------------------------------------------------------------ control

    async def start(self) -> None:
        incoming, deferred = await asyncio.to_thread(self.spool.recover)
        for qid in incoming:
            self._ready.put_nowait((qid, INCOMING, None))
        self._unsanitized.update(incoming)
        self._deferred = list(deferred)
        heapq.heapify(self._deferred)
        self._workers = [asyncio.create_task(self._worker(), name=f"queue-worker-{i}")
                         for i in range(self.max_active)]
        self._scheduler = asyncio.create_task(self._schedule(), name="queue-scheduler")

    async def stop(self, grace: float = 30.0) -> None:
        self._stopping = True
        if self._scheduler is not None:
            self._scheduler.cancel()
        for task in self._workers:
            if task not in self._busy:
                task.cancel()
        busy = [t for t in self._workers if t in self._busy]
        if busy:
            log.info("queue.draining", running=len(busy), grace=grace)
            _, pending = await asyncio.wait(busy, timeout=grace)
            for task in pending:
                task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        if self._scheduler is not None:
            await asyncio.gather(self._scheduler, return_exceptions=True)
        incoming, deferred = await asyncio.to_thread(self.spool.recover)
        log.info("queue.stopped", incoming=len(incoming), deferred=len(deferred))

    # ------------------------------------------------------------------ intake

    def enqueue(self, qid: str, env: Envelope | None = None) -> None:
        """A message the front end committed to incoming/ (``env``: its envelope, as
        written, which saves reading it back)."""
        self._unsanitized.add(qid)
        self._ready.put_nowait((qid, INCOMING, env))

    def enqueue_generated(self, qid: str) -> None:
        """A bounce the relay wrote to incoming/ (already sanitized: not backlog)."""
        self._ready.put_nowait((qid, INCOMING, None))

    def defer(self, qid: str, when: float) -> None:
        heapq.heappush(self._deferred, (when, qid))
        self._wake.set()

    @property
    def backlog(self) -> int:
        """Messages received but not sanitized yet."""
        return len(self._unsanitized)

    @property
    def deferred_count(self) -> int:
        return len(self._deferred)

    # ------------------------------------------------------------------ loops

    async def _schedule(self) -> None:
        while not self._stopping:
            now = time.time()
            while self._deferred and self._deferred[0][0] <= now:
                _, qid = heapq.heappop(self._deferred)
                self._ready.put_nowait((qid, DEFERRED, None))
            delay = self._deferred[0][0] - now if self._deferred else 60.0
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=max(0.01, min(delay, 60.0)))

    async def _worker(self) -> None:
        me = asyncio.current_task()
        assert me is not None
        while not self._stopping:
            qid, frm, env = await self._ready.get()
            self._busy.add(me)
            try:
                await self._run(qid, frm, env)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("queue.error", qid=qid)
            finally:
                self._busy.discard(me)

    async def _run(self, qid: str, frm: str, env: Envelope | None) -> None:
        # a rename without fsync (recovery puts active/ back): quick enough for the loop
        entry = self.spool.move(qid, frm, ACTIVE)
        if entry is None:
            self._unsanitized.discard(qid)
            return  # claimed by someone else, or removed
        try:
            if env is None:
                env = await asyncio.to_thread(self.spool.load, entry)
            fresh = env.state is State.RECEIVED
            if fresh:
                try:
                    await self.processor.sanitize(entry, env)
                finally:
                    self._unsanitized.discard(qid)
            await self.processor.deliver(entry, env)
            if fresh and not env.done():
                await self.processor.persist(entry, env)
            if not await self.processor.finish(entry, env):
                self.defer(qid, env.next_attempt)
        except asyncio.CancelledError:
            raise  # shutdown: stop() puts active/ back
        except Exception:
            log.exception("queue.entry_error", qid=qid)
            await asyncio.to_thread(self.spool.move, qid, ACTIVE, DEFERRED)
            self.defer(qid, time.time() + self.processor.queue.retry_min)
