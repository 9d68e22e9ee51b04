"""The spool's commit path for received mail: group commit of directory fsyncs.

Concurrent commits share the fsync of their destination directory, and each
one still returns only after an fsync that began after its own rename.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from gateway.store import durable
from gateway.store.envelope import Envelope, Recipient
from gateway.store.spool import INCOMING, MESSAGE, Spool, new_qid


def test_group_sync_shares_fsyncs_and_never_returns_early(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[float] = []
    real = durable.fsync_dir

    def slow_fsync(path: Path) -> None:
        started.append(time.monotonic())
        time.sleep(0.05)
        real(path)

    monkeypatch.setattr(durable, "fsync_dir", slow_fsync)
    group = durable.GroupSync(tmp_path)
    asked: list[tuple[float, float]] = []
    lock = threading.Lock()

    def one() -> None:
        t0 = time.monotonic()
        group.sync()
        with lock:
            asked.append((t0, time.monotonic()))

    with ThreadPoolExecutor(16) as pool:
        for f in [pool.submit(one) for _ in range(16)]:
            f.result()
    assert len(asked) == 16
    assert group.fsyncs == len(started) <= 4  # 16 callers, a few shared fsyncs
    for t0, t1 in asked:  # an fsync began after the call and ended before the return
        assert any(t0 <= s and s + 0.05 <= t1 + 1e-3 for s in started)


def test_group_sync_error_reaches_the_caller_and_the_next_one_retries(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0
    real = durable.fsync_dir

    def flaky(path: Path) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError(5, "I/O error")
        real(path)

    monkeypatch.setattr(durable, "fsync_dir", flaky)
    group = durable.GroupSync(tmp_path)
    with pytest.raises(OSError):
        group.sync()
    group.sync()
    assert calls == 2 and group.fsyncs == 1


def test_concurrent_creates_are_all_durable_entries(tmp_path: Path) -> None:
    spool = Spool(tmp_path)

    def create(i: int) -> Path:
        env = Envelope(qid=new_qid(), sender="a@example.com",
                       recipients=[Recipient("u@localhost")], received=time.time(),
                       job_id=f"job-{i}")
        if i % 2:
            draft = spool.draft(env.qid, spill=64)  # spilled to disk before the commit
            draft.write(b"Received: x\r\n")
            draft.write(b"Subject: %d\r\n\r\n" % i + b"body\r\n" * 40)
            return spool.create(env, draft, INCOMING)
        return spool.create(env, b"Subject: %d\r\n\r\nbody\r\n" % i, INCOMING)

    with ThreadPoolExecutor(8) as pool:
        entries = list(pool.map(create, range(40)))
    assert len({e.name for e in entries}) == 40
    for i, entry in enumerate(entries):
        assert spool.load(entry).job_id == f"job-{i}"
        assert (entry / MESSAGE).read_bytes().count(b"Subject: %d\r\n" % i) == 1
    assert list((tmp_path / "tmp").iterdir()) == []
