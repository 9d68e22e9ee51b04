"""Worker pool: disarm runs in child processes (DESIGN.md §3 Workers).

Each job runs in a pebble process pool with:
- ``max_tasks_per_child``: a child is replaced after N jobs, so a leaking
  parser can't grow forever;
- resource limits set in the child per job: address space (RLIMIT_AS) and CPU
  seconds (RLIMIT_CPU, soft limit = CPU used so far + the job's allowance);
- a time limit per job on the job's own time, waiting for a CPU not counted
  (gateway/pipeline/jobclock.py): the watchdog cancels the job, pebble kills the
  stuck child and starts a new one; pebble's wall clock at ``BACKSTOP`` times the
  limit remains behind it;
- ``nice``: the children run that many steps below the parent's CPU priority.

Start method: ``forkserver`` (the default) for long-running, multi-threaded
processes such as the daemon; ``fork`` for the single-threaded CLI, where it
saves the ~0.3 s a forkserver needs to start and re-import the stages.

A child that dies (segfault, abort, SIGXCPU, OOM kill) is retried at most
``retries`` times, then the job fails closed. A timeout is not retried: the
same input would hang again, and the sender is better served by a quick
"failed" than by twice the wait. Every outcome is a Report; no exception leaves
``submit``'s future.

``submit_then`` also runs a caller's follow-up in the child, right after the
pipeline, and hands back what it returned: the SMTP relay quarantines the
original and writes the audit line there (gateway/relay/custody.py), so that
file work is spread over the worker processes instead of queueing behind the
SMTP sessions for the daemon's one GIL. The follow-up is pickled with each job;
it must not raise for the content's sake (an exception it raises comes back as
``Done.error`` with the report). When the job fails in the parent's view
(timeout, crash, pool gone) the follow-up did not run, or not to its end:
``Done.after`` is None and the caller does that work itself.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import resource
import signal
from collections.abc import Sequence
from concurrent.futures import CancelledError, Future, TimeoutError
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pebble
import structlog

from gateway.models import Report, Verdict
from gateway.pipeline import jobclock, registry
from gateway.pipeline.jobclock import Slots, Watchdog
from gateway.pipeline.run import failed_report, process_file, scan_file
from gateway.policy import Policy

log = structlog.get_logger("sekisho.workers")

#: pebble's own wall-clock limit, as a multiple of the job's limit: reached only by a
#: job the watchdog could not see (or one starved of CPU that long)
BACKSTOP = 10


@dataclass(frozen=True, slots=True)
class JobSpec:
    job_id: str
    src: Path
    out: Path | None            # None: scan only
    name: str
    source: str = "cli"
    #: opens encrypted content (PPAP); kept out of repr so it never reaches a log
    password: str | None = field(default=None, repr=False)


class Then(Protocol):
    """A follow-up run in the worker after the pipeline (picklable, module-level class)."""

    def __call__(self, report: Report, spec: JobSpec) -> Any: ...


@dataclass(frozen=True, slots=True)
class Done:
    """A job's report, and what its follow-up returned (None: it did not run)."""

    report: Report
    after: Any = None
    error: str = ""   # the follow-up raised: its exception, as "Type: message"


# ------------------------------------------------------------------------ child side


def _child_init(plugins: Sequence[str], log_json: bool, log_level: str, nice: int,
                slots: Slots) -> None:
    from gateway.log import configure  # noqa: PLC0415 - configured once per child

    configure(json=log_json, level=log_level)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    if nice:
        os.nice(nice)
    slots.claim()  # where this worker says which job it runs (jobclock)
    registry.load_plugins(plugins)
    _fewer_collections()


#: allocations between two collections of the youngest generation in a worker
#: (CPython's default: 700)
GC_THRESHOLD = 100_000


def _fewer_collections() -> None:
    """The cyclic garbage collector's share of a worker's time: a 4.7 MB workbook reads
    as 320,000 record objects, and every collection walked them (40% of the parse). The
    objects a worker starts with (modules, stage tables) are frozen out of every
    collection and the youngest generation is collected after 100,000 allocations
    instead of 700: one job's cyclic garbage stays bounded by that, reference counting
    frees the rest at once. POI's 623 legacy Office test files: about 10-18% less wall
    time through the pool."""
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD, older, oldest)


def _set_limits(policy: Policy) -> None:
    _, as_hard = resource.getrlimit(resource.RLIMIT_AS)
    want = policy.limits.max_memory
    if as_hard != resource.RLIM_INFINITY:
        want = min(want, as_hard)
    resource.setrlimit(resource.RLIMIT_AS, (want, as_hard))
    used = resource.getrusage(resource.RUSAGE_SELF)
    spent = used.ru_utime + used.ru_stime
    _, cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = int(spent + policy.limits.max_cpu) + 1
    if cpu_hard != resource.RLIM_INFINITY:
        soft = min(soft, cpu_hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, cpu_hard))


def _run_job(spec: JobSpec, policy: Policy, then: Then | None = None, token: int = 0) -> Done:
    jobclock.job_started(token)
    try:
        return _job(spec, policy, then)
    finally:
        jobclock.job_ended()


def _job(spec: JobSpec, policy: Policy, then: Then | None) -> Done:
    _set_limits(policy)
    if spec.out is None:
        report = scan_file(spec.src, name=spec.name, policy=policy, job_id=spec.job_id,
                           source=spec.source)
    else:
        report = process_file(spec.src, spec.out, name=spec.name, policy=policy,
                              job_id=spec.job_id, source=spec.source, password=spec.password)
    if then is None:
        return Done(report)
    try:
        return Done(report, then(report, spec))
    except Exception as exc:  # handed to the caller, which decides
        log.error("job.then_failed", job_id=spec.job_id, error=type(exc).__name__)
        return Done(report, None, f"{type(exc).__name__}: {exc}")


# ----------------------------------------------------------------------- parent side


class WorkerPool:
    """A process pool whose futures always resolve to a Report."""

    def __init__(self, workers: int = 0, *, max_tasks_per_child: int = 200, retries: int = 1,
                 plugins: Sequence[str] = (), log_json: bool = False,
                 log_level: str = "INFO", start_method: str = "forkserver",
                 preload: Sequence[str] = (), nice: int = 0) -> None:
        """``preload``: more modules the forkserver imports once (e.g. a ``Then``'s);
        ``nice``: how many steps below this process's CPU priority the workers run."""
        self.workers = workers or max(1, os.cpu_count() or 1)
        self.retries = retries
        ctx = multiprocessing.get_context(start_method)
        if start_method == "forkserver":
            ctx.set_forkserver_preload(["gateway.pipeline.run", *registry.BUILTIN_MODULES,
                                        *preload])
        elif start_method == "fork":
            # children inherit what the parent imported; stages load on first use
            registry.load_plugins(plugins)
        # a slot for each worker, and as many again for replacements starting while a
        # dead worker's slot is not yet seen free
        slots = Slots(ctx, 2 * self.workers + 2)
        self._watchdog = Watchdog(slots)
        self._pool = pebble.ProcessPool(
            max_workers=self.workers, max_tasks=max_tasks_per_child, initializer=_child_init,
            initargs=(tuple(plugins), log_json, log_level, nice, slots), context=ctx)

    def submit(self, spec: JobSpec, policy: Policy) -> Future[Report]:
        result: Future[Report] = Future()
        done: Future[Done] = Future()
        done.add_done_callback(lambda f: _pass_report(f, result))
        self._schedule(spec, policy, None, done, attempt=0)
        return result

    def submit_then(self, spec: JobSpec, policy: Policy, then: Then) -> Future[Done]:
        """Like ``submit``, and run ``then(report, spec)`` in the child afterwards."""
        done: Future[Done] = Future()
        self._schedule(spec, policy, then, done, attempt=0)
        return done

    def run(self, spec: JobSpec, policy: Policy) -> Report:
        return self.submit(spec, policy).result()

    def close(self, *, wait: bool = True) -> None:
        self._watchdog.close()
        if wait:
            self._pool.close()  # type: ignore[no-untyped-call]
        else:
            self._pool.stop()  # type: ignore[no-untyped-call]
        self._pool.join()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(wait=exc[0] is None)

    # -- internals

    def _schedule(self, spec: JobSpec, policy: Policy, then: Then | None,
                  result: Future[Done], attempt: int) -> None:
        limit = policy.limits.timeout
        token = self._watchdog.token()
        try:
            # the watchdog ends a job when its own time (jobclock) passes the limit;
            # pebble's wall clock stays as a backstop should the watchdog not see it
            fut = self._pool.schedule(_run_job, args=(spec, policy, then, token),
                                      timeout=limit * BACKSTOP)
        except RuntimeError as exc:  # pool closed
            self._finish(result, spec, policy, "fail.error", f"worker pool unavailable: {exc}")
            return
        self._watchdog.watch(token, fut, limit)
        fut.add_done_callback(
            lambda f: self._done(f, spec, policy, then, result, attempt, token))

    def _done(self, fut: Future[Done], spec: JobSpec, policy: Policy, then: Then | None,
              result: Future[Done], attempt: int, token: int) -> None:
        expired = self._watchdog.forget(token)
        try:
            done = fut.result()
        except (TimeoutError, CancelledError) as exc:
            if isinstance(exc, CancelledError) and not expired:  # nobody else cancels
                log.error("job.error", job_id=spec.job_id, error="CancelledError")
                self._finish(result, spec, policy, "fail.error", "internal error (cancelled)")
                return
            log.warning("job.timeout", job_id=spec.job_id, timeout=policy.limits.timeout)
            self._finish(result, spec, policy, "fail.timeout",
                         f"processing took longer than {policy.limits.timeout:g} s")
        except pebble.ProcessExpired as exc:
            why = _describe_exit(exc.exitcode)
            log.warning("job.worker_died", job_id=spec.job_id, exitcode=exc.exitcode,
                        attempt=attempt)
            if attempt < self.retries:
                self._schedule(spec, policy, then, result, attempt + 1)
                return
            kind = "fail.memory" if why == "out of memory" else "fail.crash"
            self._finish(result, spec, policy, kind,
                         f"worker process {why} ({attempt + 1} attempts)")
        except MemoryError:
            self._finish(result, spec, policy, "fail.memory", "memory limit exceeded")
        except BaseException as exc:
            log.error("job.error", job_id=spec.job_id, error=type(exc).__name__)
            self._finish(result, spec, policy, "fail.error",
                         f"internal error ({type(exc).__name__})")
        else:
            result.set_result(done)

    @staticmethod
    def _finish(result: Future[Done], spec: JobSpec, policy: Policy, kind: str,
                reason: str) -> None:
        if spec.out is not None:
            spec.out.unlink(missing_ok=True)  # never leave a partial output behind
        try:
            report = failed_report(spec.src, name=spec.name, policy=policy, job_id=spec.job_id,
                                   source=spec.source, kind=kind, reason=reason,
                                   verdict=Verdict.FAILED)
        except OSError as exc:
            result.set_exception(exc)
            return
        result.set_result(Done(report))


def _pass_report(done: Future[Done], result: Future[Report]) -> None:
    exc = done.exception()
    if exc is not None:
        result.set_exception(exc)
    else:
        result.set_result(done.result().report)


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "vanished"
    if code < 0:
        sig = -code
        if sig == signal.SIGXCPU:
            return "exceeded its CPU time limit"
        if sig == signal.SIGKILL:
            return "out of memory"  # the kernel's OOM killer, or an operator
        try:
            return f"was killed by {signal.Signals(sig).name}"
        except ValueError:
            return f"was killed by signal {sig}"
    return f"exited with code {code}"
