"""Test-only stages that misbehave for real: hang, spin, allocate, abort, segfault.

Loaded as a plugin (``--plugin tests.helpers.evil_stages`` or
``WorkerPool(plugins=[...])``). Inputs are routed here by a sniff check on the
prefix ``SEKISHO-TEST:<behaviour>\n``; the family is ``testonly``.
"""

from __future__ import annotations

import base64
import ctypes
import os
import time
from typing import BinaryIO, ClassVar

from gateway import kinds
from gateway.errors import Malformed
from gateway.pipeline import registry, sniff
from gateway.pipeline.api import Mode, StageContext
from gateway.policy import FORMAT_OPTIONS, FormatPolicy, Policy

PREFIX = b"SEKISHO-TEST:"
BEHAVIOURS = ("ok", "active", "hang", "spin", "alloc", "abort", "segv", "raise", "malformed",
              "leave", "wrongtype", "container", "busy")

FORMAT_OPTIONS.setdefault("testonly", {})
kinds.KINDS.setdefault("testonly.active", kinds.KindInfo(
    "testonly.active", kinds.Severity.HIGH, True, "test active content", "テスト用の危険要素"))


def make(behaviour: str, body: bytes = b"payload") -> bytes:
    assert behaviour in BEHAVIOURS
    return PREFIX + behaviour.encode() + b"\n" + body


def container(*members: bytes) -> bytes:
    return make("container", b"\n".join(base64.b64encode(m) for m in members))


def policy(**over: FormatPolicy) -> Policy:
    formats = {"testonly": FormatPolicy(action="disarm"), "unknown": FormatPolicy("block"),
               "executable": FormatPolicy("block"), "text": FormatPolicy("pass")}
    formats.update(over)
    return Policy(name="test", formats=formats)


def _check(head: bytes, src: BinaryIO) -> str | None:
    if head.startswith(PREFIX):
        behaviour = head[len(PREFIX):].split(b"\n", 1)[0].decode("ascii", "replace")
        if behaviour == "nostage":  # routed to a type no stage accepts
            return "testonly.nostage"
        return f"testonly.{behaviour}" if behaviour in BEHAVIOURS else None
    return None


if _check not in sniff.EXTRA_CHECKS:
    sniff.EXTRA_CHECKS.append(_check)


class EvilStage:
    name: ClassVar[str] = "testonly"
    formats: ClassVar[frozenset[str]] = frozenset(f"testonly.{b}" for b in BEHAVIOURS)

    #: how many times scan() ran, by behaviour (in-process tests only)
    scans: ClassVar[dict[str, int]] = {}

    def scan(self, src: BinaryIO, ctx: StageContext) -> None:
        data = src.read()
        behaviour, body = _split(data)
        self.scans[behaviour] = self.scans.get(behaviour, 0) + 1
        if behaviour in ("active", "leave"):
            ctx.record("testonly.active", "/body")
        if behaviour == "container":
            for i, member in enumerate(_members(body)):
                got = ctx.recurse(member, f"m{i}.bin")
                if got.residual or not got.verdict.delivered:
                    ctx.record("testonly.active", f"/m{i}")

    def disarm(self, src: BinaryIO, dst: BinaryIO, ctx: StageContext) -> None:
        data = src.read()
        behaviour, body = _split(data)
        if behaviour == "hang":
            while True:
                time.sleep(1)
        if behaviour == "spin":
            n = 0
            while True:
                n += 1
        if behaviour == "busy":  # body: "<CPU seconds> <cpu>": compute that long on that CPU
            seconds, cpu = body.split()
            _busy(float(seconds), int(cpu))
            dst.write(make("ok", body))
            return
        if behaviour == "alloc":
            hog = []
            while True:
                hog.append(bytearray(64 * 1024 * 1024))
        if behaviour == "abort":
            os.abort()
        if behaviour == "segv":
            ctypes.string_at(0)
        if behaviour == "raise":
            raise RuntimeError("a bug in a stage")
        if behaviour == "malformed":
            raise Malformed("test input is damaged")
        if behaviour == "active":
            ctx.record("testonly.active", "/body")
            dst.write(make("ok", body))
            return
        if behaviour == "leave":  # claims to remove, but writes it back: verify must catch it
            ctx.record("testonly.active", "/body")
            dst.write(data)
            return
        if behaviour == "wrongtype":
            dst.write(b"MZ not what we promised")
            return
        if behaviour == "container":
            kept = []
            for i, member in enumerate(_members(body)):
                got = ctx.recurse(member, f"m{i}.bin")
                if got.delivered and got.data is not None:
                    kept.append(got.data)
                    if got.verdict.value == "disarmed":
                        ctx.record("testonly.active", f"/m{i}", action="disarmed")
                else:
                    ctx.record("testonly.active", f"/m{i}", detail=got.reason or "")
            dst.write(container(*kept))
            return
        assert ctx.mode is Mode.DISARM
        dst.write(make("ok", body))


def _busy(seconds: float, cpu: int) -> None:
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        end = time.process_time() + seconds
        while time.process_time() < end:
            pass
    finally:
        os.sched_setaffinity(0, allowed)


def _split(data: bytes) -> tuple[str, bytes]:
    first, _, body = data[len(PREFIX):].partition(b"\n")
    return first.decode(), body


def _members(body: bytes) -> list[bytes]:
    return [base64.b64decode(line) for line in body.split(b"\n") if line]


registry.register(EvilStage())
