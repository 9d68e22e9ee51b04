"""sniff -> route -> stage.disarm -> verify -> report (DESIGN.md §3).

Synchronous and CPU-bound: the only I/O is the input and the output. Every
path ends in a verdict; the original is never written as output. Stages raise
ItemError subclasses for inputs they refuse; anything else they raise is a bug
or a resource problem and fails the item closed.
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import time
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePath
from typing import BinaryIO

import structlog

from gateway import kinds
from gateway.errors import ItemError
from gateway.kinds import Action
from gateway.models import FileInfo, Finding, ItemReport, Report, Verdict
from gateway.pipeline import registry
from gateway.pipeline.api import Embedded, Mode, Stage, StageContext
from gateway.pipeline.limits import Budget, JobLimitExceeded
from gateway.pipeline.sniff import (
    CANONICAL_EXT,
    Sniffed,
    declared_family,
    script_name,
    sniff,
    xml_name,
)
from gateway.policy import Policy

log = structlog.get_logger("sekisho.pipeline")

#: finding actions that mean the output differs from the input
CHANGED = frozenset({Action.REMOVED, Action.NEUTRALIZED, Action.DISARMED})
#: actions on an active kind that do not count as residual in verify
HARMLESS = frozenset({Action.KEPT, Action.REPORTED})

_BLOCK_KIND = {"malformed": "block.malformed", "limit": "block.limit",
               "encrypted": "block.encrypted", "unsupported": "block.unsupported",
               "policy": "block.policy"}


def new_job_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(6)


@dataclass(slots=True)
class _Job:
    policy: Policy
    budget: Budget
    items: list[ItemReport] = field(default_factory=list)
    job_id: str = ""
    password: str | None = field(default=None, repr=False)
    #: embedded outputs (name and bytes) that passed their own verify step: when the
    #: container's verify meets the same item again it need not scan it a second time
    verified: set[bytes] = field(default_factory=set)
    #: containers whose members refer to each other by name (StageContext.packages)
    packages: dict[str, frozenset[str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Outcome:
    verdict: Verdict
    type_id: str
    out_type: str
    out_name: str
    reason: str | None
    residual: tuple[Finding, ...] = ()


class _Stop(Exception):
    """Ends processing of one item with a blocked/failed verdict."""

    def __init__(self, verdict: Verdict, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.verdict, self.kind, self.reason = verdict, kind, reason


# ----------------------------------------------------------------------------- public


def process_file(src: Path, out: Path, *, name: str | None = None, policy: Policy,
                 job_id: str | None = None, source: str = "cli",
                 password: str | None = None) -> Report:
    """Disarm ``src`` into ``out``. ``out`` exists afterwards only if delivered.
    ``password`` opens encrypted content (archives, PDFs) the submitter has the key to."""
    return _run_root(src, out, name=name or src.name, policy=policy,
                     job_id=job_id or new_job_id(), source=source, mode=Mode.DISARM,
                     password=password)


def scan_file(src: Path, *, name: str | None = None, policy: Policy,
              job_id: str | None = None, source: str = "cli") -> Report:
    """What disarming ``src`` would change; writes nothing."""
    return _run_root(src, None, name=name or src.name, policy=policy,
                     job_id=job_id or new_job_id(), source=source, mode=Mode.SCAN)


def failed_report(src: Path, *, name: str, policy: Policy, job_id: str, source: str,
                  kind: str, reason: str, verdict: Verdict = Verdict.FAILED) -> Report:
    """A report for a job that never produced one (worker died, timed out…)."""
    digest, size = _digest(src)
    finding = Finding(kind=kind, action=_verdict_action(verdict), location="", detail=reason)
    item = ItemReport(stage="pipeline", location=name, verdict=verdict,
                      findings=[finding], error=reason)
    return Report(job_id=job_id, source=source, policy=policy.name,
                  input=FileInfo(name, digest, size, "unknown"), verdict=verdict,
                  output=None, items=[item])


# ------------------------------------------------------------------------------ root


def _run_root(src: Path, out: Path | None, *, name: str, policy: Policy, job_id: str,
              source: str, mode: Mode, password: str | None = None) -> Report:
    name = PurePath(name).name or "unnamed"
    size = src.stat().st_size
    digest, _ = _digest(src)
    job = _Job(policy=policy, budget=Budget(policy.limits, input_size=size), job_id=job_id,
               password=password)
    bound = log.bind(job_id=job_id, name=name, size=size)
    outcome: _Outcome
    if size > policy.limits.max_size:
        item = ItemReport(stage="pipeline", location=name, verdict=Verdict.BLOCKED)
        _stop_item(item, _Stop(Verdict.BLOCKED, "block.limit",
                               f"input is larger than the {policy.limits.max_size}-byte limit"))
        job.items.append(item)
        outcome = _Outcome(Verdict.BLOCKED, "unknown", "unknown", name, item.error)
    else:
        with open(src, "rb") as fsrc:
            if out is None:
                outcome = _item(job, fsrc, None, name, name, mode, depth=0)
            else:
                with open(out, "w+b") as fdst:
                    outcome = _item(job, fsrc, fdst, name, name, mode, depth=0)
        if job.budget.exhausted and outcome.verdict.delivered:  # a stage swallowed it
            root = job.items[0]
            _stop_item(root, _Stop(Verdict.BLOCKED, "block.limit", job.budget.exhausted))
            outcome = _Outcome(Verdict.BLOCKED, outcome.type_id, outcome.type_id, name,
                               root.error)
    output = None
    if out is not None:
        if outcome.verdict.delivered:
            out_digest, out_size = _digest(out)
            output = FileInfo(outcome.out_name, out_digest, out_size, outcome.out_type)
        else:
            out.unlink(missing_ok=True)
    report = Report(job_id=job_id, source=source, policy=policy.name,
                    input=FileInfo(name, digest, size, outcome.type_id),
                    verdict=outcome.verdict, output=output, items=job.items)
    bound.info("job.done", mode=str(mode), verdict=str(outcome.verdict), type=outcome.type_id,
               findings=len(report.findings), reason=outcome.reason)
    return report


def _digest(path: Path) -> tuple[str, int]:
    with open(path, "rb") as f:
        h = hashlib.file_digest(f, "sha256")
        return h.hexdigest(), f.tell()


# ------------------------------------------------------------------------------ items


def _item(job: _Job, src: BinaryIO, dst: BinaryIO | None, name: str, location: str,
          mode: Mode, depth: int) -> _Outcome:
    started = time.perf_counter()
    item = ItemReport(stage="sniff", location=location, verdict=Verdict.CLEAN)
    job.items.append(item)
    sniffed: Sniffed | None = None
    try:
        sniffed = sniff(src, name)
        outcome = _route(job, item, sniffed, src, dst, name, location, mode, depth)
    except _Stop as stop:
        _stop_item(item, stop)
    except JobLimitExceeded as exc:
        if depth > 0:
            _stop_item(item, _Stop(Verdict.BLOCKED, "block.limit", str(exc)))
            raise  # the whole job stops; the root item reports it
        _stop_item(item, _Stop(Verdict.BLOCKED, "block.limit", str(exc)))
    except ItemError as exc:
        _stop_item(item, _Stop(Verdict.BLOCKED, _BLOCK_KIND.get(exc.reason, "block.malformed"),
                               str(exc) or exc.reason))
    except RecursionError:
        _stop_item(item, _Stop(Verdict.BLOCKED, "block.malformed", "structure nested too deeply"))
    except MemoryError:
        _stop_item(item, _Stop(Verdict.FAILED, "fail.memory", "memory limit exceeded"))
    except Exception as exc:
        log.exception("item.crash", location=location, stage=item.stage)
        _stop_item(item, _Stop(Verdict.FAILED, "fail.error",
                               f"internal error in stage {item.stage} ({type(exc).__name__})"))
    else:
        item.elapsed_ms = int((time.perf_counter() - started) * 1000)
        return outcome
    item.elapsed_ms = int((time.perf_counter() - started) * 1000)
    type_id = sniffed.type_id if sniffed else "unknown"
    return _Outcome(item.verdict, type_id, type_id, name, item.error)


def _stop_item(item: ItemReport, stop: _Stop) -> None:
    item.verdict = stop.verdict
    item.error = stop.reason
    item.findings.append(Finding(kind=stop.kind, action=_verdict_action(stop.verdict),
                                 location="", detail=stop.reason))


def _verdict_action(verdict: Verdict) -> str:
    return Action.FAILED if verdict is Verdict.FAILED else Action.BLOCKED


def _empty(src: BinaryIO, dst: BinaryIO | None, name: str) -> _Outcome:
    """A file without a single byte holds nothing to run and nothing to lose: it is
    delivered as the empty file it is (an empty member of an archive or attachment of
    a mail too, instead of a "removed" note), except under a program's or script's name,
    which nobody needs empty and an administrator should not see pass."""
    if declared_family(name) == "executable" or script_name(name):
        raise _Stop(Verdict.BLOCKED, "block.empty", "an empty file with a program's name "
                    f"({PurePath(name).suffix.lower()})")
    if dst is not None:
        _copy(src, dst)
    return _Outcome(Verdict.CLEAN, "unknown.empty", "unknown.empty", name, None)


def _route(job: _Job, item: ItemReport, sniffed: Sniffed, src: BinaryIO, dst: BinaryIO | None,
           name: str, location: str, mode: Mode, depth: int) -> _Outcome:
    policy = job.policy
    if sniffed.type_id == "unknown.empty":
        return _empty(src, dst, name)
    if sniffed.mismatch:
        ext = PurePath(name).suffix.lower()
        item.findings.append(Finding(
            kind="sniff.type_mismatch", action=Action.REPORTED, location="",
            detail=f"named {ext or '(no extension)'}, content is {sniffed.type_id}"))
        if policy.type_mismatch == "block":
            raise _Stop(Verdict.BLOCKED, "block.policy", "declared type differs from content")
    family = sniffed.family
    fmt = policy.format(family)
    if fmt.action == "block":
        kind = "block.unknown_type" if family == "unknown" else "block.policy"
        raise _Stop(Verdict.BLOCKED, kind, f"{sniffed.type_id} is blocked by policy {policy.name}")
    if fmt.action == "quarantine":
        raise _Stop(Verdict.BLOCKED, "block.quarantine",
                    f"{sniffed.type_id} is held for review by policy {policy.name}")
    out_name = _delivery_name(name, sniffed, None)
    if fmt.action == "pass":
        item.stage = "pass"
        if dst is not None:
            _copy(src, dst)
        return _Outcome(Verdict.CLEAN, sniffed.type_id, sniffed.type_id, out_name, None)

    stage = registry.stage_for(sniffed.type_id)
    if stage is None:
        raise _Stop(Verdict.BLOCKED, "block.unsupported",
                    f"no disarm stage for {sniffed.type_id} yet")
    item.stage = stage.name
    ctx = _context(job, stage, sniffed.type_id, location, mode, depth, item.findings)
    if mode is Mode.DISARM:
        assert dst is not None
        stage.disarm(src, dst, ctx)
        out_type = ctx.output_type[0] if ctx.output_type else sniffed.type_id
        out_name = _delivery_name(name, sniffed, ctx.output_type)
        _verify(job, stage, dst, out_type, location, out_name, depth)
    else:
        stage.scan(src, ctx)
        out_type = sniffed.type_id
    residual = tuple(f for f in item.findings
                     if kinds.is_active(f.kind) and f.action not in HARMLESS)
    changed = any(f.action in CHANGED for f in item.findings)
    item.verdict = Verdict.DISARMED if changed else Verdict.CLEAN
    return _Outcome(item.verdict, sniffed.type_id, out_type, out_name, None, residual)


def _context(job: _Job, stage: Stage, type_id: str, location: str, mode: Mode, depth: int,
             findings: list[Finding]) -> StageContext:
    def recurse(data: bytes, child_name: str) -> Embedded:
        return _recurse(job, data, child_name, f"{location}/{child_name}", mode, depth + 1)

    return StageContext(policy=job.policy, format=job.policy.format(stage.name)
                        if stage.name in job.policy.formats
                        else job.policy.format(type_id.split(".", 1)[0]),
                        mode=mode, location=location, type_id=type_id, recurse_fn=recurse,
                        account_fn=job.budget.account, findings=findings, job_id=job.job_id,
                        password=job.password, packages=job.packages)


def _recurse(job: _Job, data: bytes, name: str, location: str, mode: Mode,
             depth: int) -> Embedded:
    base = PurePath(name).name or "unnamed"
    too_much = job.budget.enter(depth, len(data))  # JobLimitExceeded stops the whole job
    if too_much:
        item = ItemReport(stage="pipeline", location=location, verdict=Verdict.BLOCKED)
        _stop_item(item, _Stop(Verdict.BLOCKED, "block.limit", too_much))
        job.items.append(item)
        return Embedded(verdict=Verdict.BLOCKED, data=None, name=base, type="unknown",
                        reason=too_much, findings=tuple(item.findings))
    if mode is Mode.VERIFY and _verified_key(base, data) in job.verified:
        return Embedded(verdict=Verdict.CLEAN, data=None, name=base,
                        type=sniff(io.BytesIO(data)).type_id)
    src = io.BytesIO(data)
    dst = io.BytesIO() if mode is Mode.DISARM else None
    first = len(job.items)
    outcome = _item(job, src, dst, base, location, mode, depth)
    job.budget.check()  # a stage must not swallow a job-wide limit
    out = dst.getvalue() if (dst is not None and outcome.verdict.delivered) else None
    if out is not None:
        job.verified.add(_verified_key(outcome.out_name, out))
    found = tuple(f for it in job.items[first:] for f in it.findings)
    return Embedded(verdict=outcome.verdict, data=out, name=outcome.out_name,
                    type=outcome.type_id, reason=outcome.reason, residual=outcome.residual,
                    findings=found)


def _verified_key(name: str, data: bytes) -> bytes:
    """The bytes *and* the name they are delivered under: sniffing reads the name too
    (a text file named .vbs is a script), so the same bytes under another name are not
    the item that was verified."""
    return hashlib.sha256(name.encode("utf-8", "surrogatepass") + b"\0" + data).digest()


def _verify(job: _Job, stage: Stage, dst: BinaryIO, out_type: str, location: str,
            out_name: str, depth: int) -> None:
    """Re-sniff (under the name it is delivered with, as the recipient's machine reads
    it) and re-scan our own output; leftovers or an unparsable output block it."""
    dst.flush()
    dst.seek(0)
    # notes that replace too-deep members sit one level below the deepest allowed item
    limits = replace(job.policy.limits, max_depth=job.policy.limits.max_depth + 1)
    check = _Job(policy=job.policy, budget=Budget(limits, job.budget.input_size),
                 job_id=job.job_id, verified=job.verified, packages=job.packages)
    got = sniff(dst, out_name)
    verifier = registry.stage_for(got.type_id)
    if got.family != out_type.split(".", 1)[0] or verifier is None:
        raise _Stop(Verdict.BLOCKED, "block.verify_failed",
                    f"rebuilt output is {got.type_id}, expected {out_type}")
    findings: list[Finding] = []
    ctx = _context(check, verifier, got.type_id, location, Mode.VERIFY, depth, findings)
    try:
        verifier.scan(dst, ctx)
    except ItemError as exc:
        raise _Stop(Verdict.BLOCKED, "block.verify_failed",
                    f"rebuilt output does not parse: {exc}") from None
    finally:
        dst.seek(0, os.SEEK_END)
    residual = [f for f in findings if kinds.is_active(f.kind) and f.action not in HARMLESS]
    if residual:
        what = ", ".join(sorted({f"{f.kind}@{f.location}" for f in residual}))
        log.error("verify.residual", location=location, residual=what)
        raise _Stop(Verdict.BLOCKED, "block.residual", f"left after disarm: {what}")


def _delivery_name(name: str, sniffed: Sniffed, output_type: tuple[str, str] | None) -> str:
    path = PurePath(name)
    if output_type is not None:
        if path.stem.lower().endswith("." + output_type[1].lower()):
            return path.stem  # report.pdf.p7m delivered as its content: report.pdf
        return path.stem + "." + output_type[1]
    # HTML under a name a browser reads as XML: text came before the first tag (else it
    # would have been sniffed as XML), but the cleaned copy starts with one, so the name
    # would now make it XML. It is HTML that was cleaned as HTML: named so.
    if sniffed.mismatch or not path.suffix or (sniffed.type_id == "html" and xml_name(name)):
        ext = CANONICAL_EXT.get(sniffed.type_id)
        if ext:
            return (path.stem if path.suffix else path.name) + "." + ext
    return path.name


def _copy(src: BinaryIO, dst: BinaryIO) -> None:
    src.seek(0)
    while chunk := src.read(1024 * 1024):
        dst.write(chunk)
