"""The audit log: hash chain, anchor, and verify naming the line of every kind of tampering."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from gateway.store.audit import (
    ANCHOR_SIZE,
    GENESIS,
    AuditError,
    AuditLog,
    Problem,
    anchor_path,
    read_anchor,
    verify,
)
from tests.conftest import ROOT

N = 10


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    path = tmp_path / "audit.log"
    audit = AuditLog(path)
    for i in range(1, N + 1):
        audit.record("job", job_id=f"job-{i}", verdict="blocked" if i % 3 else "clean",
                     findings={"pdf.javascript": i}, name="見積書.pdf")
    return path


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def write(path: Path, content: list[str]) -> None:
    path.write_text("".join(content), encoding="utf-8")


def rehash(line: dict[str, object]) -> str:
    body = {k: v for k, v in line.items() if k != "hash"}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False,
                                       separators=(",", ":")).encode()).hexdigest()
    return json.dumps({**body, "hash": digest}, ensure_ascii=False,
                      separators=(",", ":")) + "\n"


def only(problems: list[Problem], line: int, word: str) -> None:
    assert len(problems) == 1, problems
    assert problems[0].line == line, problems
    assert word in problems[0].message, problems


# ------------------------------------------------------------------------- writing


def test_lines_are_chained_hashed_and_anchored(log_path: Path) -> None:
    records = [json.loads(x) for x in lines(log_path)]
    assert [r["seq"] for r in records] == list(range(1, N + 1))
    assert records[0]["prev"] == GENESIS
    for before, after in itertools.pairwise(records):
        assert after["prev"] == before["hash"]
    for r in records:  # hash = sha256 of the canonical JSON without "hash"
        assert rehash(r) == json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n"
        assert r["ts"].endswith("Z") and r["event"] == "job"
    assert list(records[0])[:3] == ["seq", "ts", "event"] and list(records[0])[-2:] == [
        "prev", "hash"]
    assert "見積書.pdf" in log_path.read_text(encoding="utf-8")
    anchor = json.loads(anchor_path(log_path).read_text())
    assert anchor == {"seq": N, "hash": records[-1]["hash"]}
    assert verify(log_path) == []


def test_reserved_fields_and_bad_values_are_refused(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.log")
    for bad in ("seq", "hash", "prev", "ts"):
        with pytest.raises(ValueError, match="may not be named"):
            audit.record("job", **{bad: 1})
    with pytest.raises(ValueError):
        audit.record("job", ratio=float("nan"))
    with pytest.raises(ValueError, match="needs a name"):
        audit.record("")
    assert not (tmp_path / "audit.log").exists() or (tmp_path / "audit.log").read_bytes() == b""


def test_concurrent_appends_from_threads_keep_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    audit = AuditLog(path)

    def work(t: int) -> None:
        for i in range(50):
            audit.record("job", job_id=f"t{t}-{i}")

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    records = [json.loads(x) for x in lines(path)]
    assert [r["seq"] for r in records] == list(range(1, 401))
    assert len({r["job_id"] for r in records}) == 400
    assert verify(path) == []


def test_appends_from_several_processes_keep_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    AuditLog(path).record("start")
    script = ("import sys; from pathlib import Path; from gateway.store.audit import AuditLog\n"
              "a = AuditLog(Path(sys.argv[1]))\n"
              "for i in range(60): a.record('job', job_id=f'{sys.argv[2]}-{i}')\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [subprocess.Popen([sys.executable, "-c", script, str(path), f"p{n}"], env=env)
             for n in range(4)]
    mine = AuditLog(path)  # this process appends in between, with a stale view of the end
    for i in range(30):
        mine.record("job", job_id=f"main-{i}")
    assert [p.wait(60) for p in procs] == [0, 0, 0, 0]
    records = [json.loads(x) for x in lines(path)]
    assert [r["seq"] for r in records] == list(range(1, 272))
    assert verify(path) == []


def test_a_partial_last_line_is_cut_off_and_recorded(log_path: Path) -> None:
    with open(log_path, "ab") as f:
        f.write(b'{"seq":11,"ts":"2026-')  # a writer died mid-line
    assert verify(log_path)[0] == Problem(N + 1, "partial last line (cut off)")
    AuditLog(log_path).record("job", job_id="after-crash")
    records = [json.loads(x) for x in lines(log_path)]
    assert [r["event"] for r in records[-2:]] == ["audit.repair", "job"]
    assert records[-2]["dropped_bytes"] == 21
    assert verify(log_path) == []


def test_an_unreadable_last_line_stops_the_writer(log_path: Path) -> None:
    content = lines(log_path)
    write(log_path, [*content[:-1], "garbage\n"])
    with pytest.raises(AuditError, match="last line is unreadable"):
        AuditLog(log_path).record("job")


def test_writer_keeps_the_gap_after_a_truncation(log_path: Path) -> None:
    write(log_path, lines(log_path)[:7])
    AuditLog(log_path).record("job", job_id="after")
    # the writer chained from the anchor (seq 10): the cut stays visible for good
    only(verify(log_path), 8, "3 line(s) missing before this line (seq jumps from 7 to 11)")
    log_path.unlink()
    AuditLog(log_path).record("job", job_id="fresh")
    only(verify(log_path), 1, "11 line(s) missing before this line (seq jumps from 0 to 12)")


# -------------------------------------------------------------------------- verify


def test_edited_line_is_found(log_path: Path) -> None:
    content = lines(log_path)
    content[4] = content[4].replace('"verdict":"blocked"', '"verdict":"clean"')
    write(log_path, content)
    only(verify(log_path), 5, "edited")


def test_edited_and_rehashed_line_is_found(log_path: Path) -> None:
    content = lines(log_path)
    record = json.loads(content[4])
    record["verdict"] = "clean"
    content[4] = rehash(record)
    write(log_path, content)
    only(verify(log_path), 5, "edited and re-hashed")


def test_edited_and_rehashed_last_line_is_found_by_the_anchor(log_path: Path) -> None:
    content = lines(log_path)
    record = json.loads(content[-1])
    record["verdict"] = "edited"
    content[-1] = rehash(record)
    write(log_path, content)
    only(verify(log_path), N, "does not match the anchor")


def test_edited_seq_is_found_without_follow_up_noise(log_path: Path) -> None:
    content = lines(log_path)
    content[4] = content[4].replace('"seq":5,', '"seq":50,')
    write(log_path, content)
    only(verify(log_path), 5, "edited")


@pytest.mark.parametrize("how", ["chained", "bad-hash", "wrong-prev", "garbage", "replay"])
def test_inserted_line_is_found(log_path: Path, how: str) -> None:
    content = lines(log_path)
    fourth = json.loads(content[3])
    forged = {**fourth, "seq": 5, "prev": fourth["hash"], "job_id": "forged"}
    if how == "chained":       # a well-formed line that links to line 4
        line = rehash(forged)
    elif how == "bad-hash":
        line = json.dumps({**forged, "hash": "ab" * 32}) + "\n"
    elif how == "wrong-prev":
        line = rehash({**forged, "prev": "cd" * 32})
    elif how == "garbage":
        line = "this was not written by sekisho\n"
    else:                      # line 4 again
        line = content[3]
    write(log_path, [*content[:4], line, *content[4:]])
    only(verify(log_path), 5, "inserted" if how != "garbage" else "not a JSON line")


def test_removed_lines_are_found(log_path: Path) -> None:
    content = lines(log_path)
    write(log_path, content[:4] + content[5:])
    only(verify(log_path), 5, "1 line(s) missing before this line (seq jumps from 4 to 6)")
    write(log_path, content[1:])
    only(verify(log_path), 1, "1 line(s) missing before this line (seq jumps from 0 to 2)")
    write(log_path, content[:3] + content[6:])
    only(verify(log_path), 4, "3 line(s) missing")


def test_reordered_lines_are_found(log_path: Path) -> None:
    content = lines(log_path)
    swapped = [*content[:4], content[5], content[4], *content[6:]]
    write(log_path, swapped)
    only(verify(log_path), 5, "out of order: seq 6 comes before seq 5 (line 6)")
    moved = content[:2] + content[3:] + [content[2]]  # line 3 moved to the end
    write(log_path, moved)
    problems = verify(log_path)
    assert [p.line for p in problems] == [3, N], problems
    assert "missing" in problems[0].message and "out of order" in problems[1].message


def test_truncated_log_is_found_with_the_anchor(log_path: Path) -> None:
    content = lines(log_path)
    write(log_path, content[:8])
    only(verify(log_path), 9, "truncated: the anchor records seq 10, the log ends at seq 8")
    write(log_path, [*content[:9], content[9][:40]])  # cut inside the last line
    problems = verify(log_path)
    assert [p.line for p in problems] == [N, N], problems
    assert {"partial last line (cut off)"} <= {p.message for p in problems}
    assert any("truncated" in p.message for p in problems)
    write(log_path, [])
    only(verify(log_path), 1, "truncated: the anchor records seq 10, the log ends at seq 0")


def test_missing_or_broken_anchor_is_reported(log_path: Path) -> None:
    anchor = anchor_path(log_path)
    anchor.write_text("{not json")
    only(verify(log_path), 0, "unreadable anchor")
    anchor.unlink()
    only(verify(log_path), 0, "anchor file is missing")
    assert verify(log_path, anchor=log_path.with_name("elsewhere")) == verify(log_path)


def test_one_line_beyond_the_anchor_is_a_crash_more_is_not(log_path: Path) -> None:
    anchor = anchor_path(log_path)
    records = [json.loads(x) for x in lines(log_path)]
    anchor.write_text(json.dumps({"seq": N - 1, "hash": records[N - 2]["hash"]}))
    assert verify(log_path) == []  # died between the line and the anchor
    anchor.write_text(json.dumps({"seq": N - 3, "hash": records[N - 4]["hash"]}))
    only(verify(log_path), N, "3 lines after the anchor")


def test_blank_line_is_reported(log_path: Path) -> None:
    content = lines(log_path)
    write(log_path, [*content[:3], "\n", *content[3:]])
    only(verify(log_path), 4, "empty line")


def test_problem_text_names_the_line() -> None:
    assert str(Problem(5, "edited")) == "line 5: edited"
    assert str(Problem(0, "anchor missing")) == "anchor missing"


def test_every_position_names_the_right_line(log_path: Path) -> None:
    content = lines(log_path)
    cases: list[tuple[str, list[str], int]] = []
    for i in range(N):
        cases.append((f"remove {i + 1}", content[:i] + content[i + 1:], i + 1))
        cases.append((f"duplicate {i + 1}", [*content[:i + 1], content[i], *content[i + 1:]],
                      i + 2))
        edited = json.loads(content[i])
        edited["job_id"] = "changed"
        cases.append((f"edit {i + 1}", [*content[:i], rehash(edited), *content[i + 1:]], i + 1))
        if i < N - 1:
            cases.append((f"swap {i + 1}", [*content[:i], content[i + 1], content[i],
                                            *content[i + 2:]], i + 1))
    for name, tampered, line in cases:
        write(log_path, tampered)
        problems = verify(log_path)
        assert problems and problems[0].line == line, (name, problems)
    write(log_path, content)
    assert verify(log_path) == []


# -------------------------------------------------------------------------- anchor


def test_the_anchor_is_rewritten_in_place(log_path: Path) -> None:
    anchor = anchor_path(log_path)
    inode = os.stat(anchor).st_ino
    audit = AuditLog(log_path)
    for i in range(5):
        audit.record("job", job_id=f"more-{i}")
        assert os.stat(anchor).st_ino == inode
    raw = anchor.read_bytes()
    assert len(raw) == ANCHOR_SIZE and raw.endswith(b" \n")
    last = json.loads(lines(log_path)[-1])
    assert json.loads(raw) == {"seq": N + 5, "hash": last["hash"]}
    assert read_anchor(anchor) == (N + 5, last["hash"])
    assert not list(log_path.parent.glob(".*.tmp"))
    assert verify(log_path) == []


def test_an_anchor_of_the_old_format_is_read_and_replaced(log_path: Path) -> None:
    anchor = anchor_path(log_path)
    head = json.loads(lines(log_path)[-1])["hash"]
    anchor.write_text(json.dumps({"seq": N, "hash": head}) + "\n")  # as written before
    assert read_anchor(anchor) == (N, head)
    assert verify(log_path) == []
    audit = AuditLog(log_path)
    audit.record("job", job_id="after-upgrade")
    raw = anchor.read_bytes()
    head = json.loads(lines(log_path)[-1])["hash"]
    assert len(raw) == ANCHOR_SIZE and json.loads(raw) == {"seq": N + 1, "hash": head}
    inode = os.stat(anchor).st_ino
    audit.record("job", job_id="in-place-from-now-on")
    assert os.stat(anchor).st_ino == inode
    assert read_anchor(anchor) == (N + 2, json.loads(lines(log_path)[-1])["hash"])
    assert verify(log_path) == []


@pytest.mark.parametrize("extra", ["padding", "field"])
def test_a_longer_anchor_is_rewritten_without_trailing_garbage(log_path: Path,
                                                               extra: str) -> None:
    anchor = anchor_path(log_path)
    head = json.loads(lines(log_path)[-1])["hash"]
    if extra == "padding":
        anchor.write_text(json.dumps({"seq": N, "hash": head}) + " " * 300 + "\n")
    else:
        anchor.write_text(json.dumps({"seq": N, "hash": head, "note": "x" * 300}) + "\n")
    assert anchor.stat().st_size > ANCHOR_SIZE and read_anchor(anchor) == (N, head)
    AuditLog(log_path).record("job", job_id="after")
    raw = anchor.read_bytes()
    head = json.loads(lines(log_path)[-1])["hash"]
    assert len(raw) == ANCHOR_SIZE
    assert raw.rstrip(b" \n") == json.dumps({"seq": N + 1, "hash": head},
                                            separators=(",", ":")).encode()
    assert verify(log_path) == []


def test_two_writers_on_one_log_interleave_and_verify(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    first, second = AuditLog(path), AuditLog(path)  # as two processes would
    for i, who in enumerate("abbabaaabbbab"):
        (first if who == "a" else second).record("job", job_id=f"{who}-{i}")
    records = [json.loads(x) for x in lines(path)]
    assert [r["seq"] for r in records] == list(range(1, 14))
    assert [r["job_id"][0] for r in records] == list("abbabaaabbbab")
    assert read_anchor(anchor_path(path)) == (13, records[-1]["hash"])
    assert verify(path) == []


def test_the_anchor_reads_whole_while_it_is_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    audit = AuditLog(path)
    audit.record("start")
    done = threading.Event()

    def work() -> None:
        for i in range(300):
            audit.record("job", job_id=f"job-{i}")
        done.set()

    writer = threading.Thread(target=work)
    writer.start()
    seen = 0
    while not done.is_set():
        got = read_anchor(anchor_path(path))  # a torn read would raise or go backwards
        assert got is not None and got[0] >= seen
        seen = got[0]
    writer.join()
    assert read_anchor(anchor_path(path)) == (301, json.loads(lines(path)[-1])["hash"])
    assert verify(path) == []
