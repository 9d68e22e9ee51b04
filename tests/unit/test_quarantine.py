"""Quarantine at rest: sealed originals and metadata, key files, admin actions, retention."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
import sys
import threading
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.store import durable, sealed
from gateway.store import quarantine_file as entry_file
from gateway.store.audit import AuditLog, verify
from gateway.store.quarantine import NotFound, Quarantine, QuarantineError, WrongState
from gateway.store.sealed import (
    HEADER_SIZE,
    SEGMENT,
    TAG,
    KeyFileError,
    Keyring,
    SealError,
    Tampered,
    UnknownKey,
    key_id,
    load_keyring,
)

MIB = 1024 * 1024
SMTP_META = {"origin": "smtp", "sender": "yamada@example.jp",
             "recipients": ["kikaku@city.example.lg.jp"], "policy": "default",
             "verdict": "blocked", "reason": "executable.pe is blocked", "qid": "Q123"}
REPORT = {"schema": 1, "source": "smtp", "policy": "default", "verdict": "blocked",
          "input": {"name": "message.eml", "type": "mail.eml"}, "items": []}


def keyring() -> Keyring:
    return Keyring(secrets.token_bytes(32))


@pytest.fixture
def big(tmp_path: Path) -> Path:
    """20 MiB: random, with a readable marker in every MiB."""
    path = tmp_path / "big.eml"
    with open(path, "wb") as f:
        for i in range(20):
            f.write(b"MARKER-PLAINTEXT-%02d" % i + os.urandom(MIB - 19))
    return path


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "m.eml"
    path.write_bytes(b"From: yamada@example.jp\r\nSubject: \xe8\xa6\x8b\xe7\xa9\x8d\r\n"
                     b"\r\nbody\r\n")
    return path


def seg_offset(i: int) -> int:
    return HEADER_SIZE + i * (SEGMENT + TAG)


def section(entry: Path, which: str) -> tuple[int, int]:
    """(offset, length) of a sealed section in an entry file."""
    with open(entry, "rb") as f:
        return getattr(entry_file.read_layout(f.fileno(), entry.name), which)  # type: ignore[no-any-return]


def section_bytes(entry: Path, which: str) -> bytes:
    offset, length = section(entry, which)
    return entry.read_bytes()[offset:offset + length]


def patch(entry: Path, offset: int, data: bytes) -> None:
    with open(entry, "r+b") as f:
        f.seek(offset)
        f.write(data)


def cut_original(entry: Path, keep: int) -> None:
    """Leave only the first ``keep`` bytes of the sealed original (the header says so)."""
    offset, _ = section(entry, "original")
    data = entry.read_bytes()
    layout = entry_file.read_layout(os.open(entry, os.O_RDONLY), entry.name)
    entry.write_bytes(entry_file.Layout((offset, keep), layout.report, layout.meta).pack()
                      + data[entry_file.HEADER:])


# ------------------------------------------------------------------------ key files


def test_key_file_created_0600_with_32_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "quarantine.key"
    keys = load_keyring(path, create=True)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.read_bytes() == keys.current and len(keys.current) == 32
    assert load_keyring(path, create=True).current == keys.current  # not recreated
    other = load_keyring(tmp_path / "other.key", create=True)
    assert other.current != keys.current


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o610, 0o602])
def test_key_file_with_group_or_other_access_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "quarantine.key"
    load_keyring(path, create=True)
    path.chmod(mode)
    with pytest.raises(KeyFileError, match=r"accessible by group or others.*chmod 600") as e:
        load_keyring(path, create=True)
    assert isinstance(e.value, ConfigError) and str(path) in str(e.value)
    path.chmod(0o400)  # owner-only, read-only: fine
    assert len(load_keyring(path).current) == 32


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_key_file_of_wrong_length_is_refused(tmp_path: Path, size: int) -> None:
    path = tmp_path / "quarantine.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"k" * size)
    os.close(fd)
    with pytest.raises(KeyFileError, match=rf"exactly 32 bytes \(it holds {size}\)"):
        load_keyring(path, create=True)


def test_missing_key_file_without_create_and_symlinks_are_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="does not exist"):
        load_keyring(tmp_path / "nope.key")
    real = tmp_path / "real.key"
    load_keyring(real, create=True)
    (tmp_path / "link.key").symlink_to(real)
    with pytest.raises(KeyFileError, match="cannot read"):
        load_keyring(tmp_path / "link.key")
    with pytest.raises(KeyFileError, match="not a regular file"):
        load_keyring(tmp_path)


def test_key_file_that_cannot_be_written_is_not_left_half_made(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "quarantine.key"

    def broken(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(KeyFileError, match="cannot create the key file"):
        load_keyring(path, create=True)
    monkeypatch.undo()
    assert not path.exists()
    assert len(load_keyring(path, create=True).current) == 32


# ------------------------------------------------------------------ sealing originals


def test_20mb_round_trip_streams_and_encrypts(tmp_path: Path, big: Path) -> None:
    q = Quarantine(tmp_path / "q", keyring())
    tracemalloc.start()
    try:
        entry = q.put("job-big", big, REPORT, SMTP_META)
        _, peak_put = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        got = q.read_original("job-big", tmp_path / "back.eml")
        _, peak_read = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (tmp_path / "back.eml").read_bytes() == big.read_bytes()
    assert peak_put < 8 * MIB and peak_read < 8 * MIB  # segments, never the whole file
    assert got.sha256 == hashlib.sha256(big.read_bytes()).hexdigest()
    assert got.size == 20 * MIB
    assert section(entry, "original") == (entry_file.HEADER,
                                          HEADER_SIZE + 20 * (SEGMENT + TAG))
    cipher = entry.read_bytes()
    assert b"MARKER-PLAINTEXT" not in cipher and b"yamada" not in cipher
    assert entry.is_file() and entry.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "back.eml").stat().st_mode & 0o777 == 0o600


def test_empty_and_odd_sized_originals_round_trip(tmp_path: Path) -> None:
    q = Quarantine(tmp_path / "q", keyring())
    for n in (0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1):
        src = tmp_path / f"in-{n}"
        src.write_bytes(os.urandom(n))
        q.put(f"job-{n}", src, REPORT, SMTP_META)
        q.read_original(f"job-{n}", tmp_path / f"out-{n}")
        assert (tmp_path / f"out-{n}").read_bytes() == src.read_bytes()


def _fails(q: Quarantine, job_id: str, dest: Path, match: str) -> None:
    with pytest.raises(Tampered, match=match):
        q.read_original(job_id, dest)
    assert not dest.exists()
    assert [p.name for p in dest.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_tampered_ciphertext_is_detected_and_never_written(tmp_path: Path, big: Path) -> None:
    q = Quarantine(tmp_path / "q", keyring())
    entry = q.put("job-1", big, REPORT, SMTP_META)
    at = section(entry, "original")[0] + seg_offset(3) + 1000
    patch(entry, at, bytes([entry.read_bytes()[at] ^ 0x01]))
    _fails(q, "job-1", tmp_path / "out.eml", "segment 3 fails authentication")


def test_swapped_segments_are_detected(tmp_path: Path, big: Path) -> None:
    q = Quarantine(tmp_path / "q", keyring())
    entry = q.put("job-1", big, REPORT, SMTP_META)
    base = section(entry, "original")[0]
    data = entry.read_bytes()
    one = data[base + seg_offset(1):base + seg_offset(2)]
    two = data[base + seg_offset(2):base + seg_offset(3)]
    patch(entry, base + seg_offset(1), two + one)
    _fails(q, "job-1", tmp_path / "out.eml", "segment 1 fails authentication")


def test_truncated_originals_are_detected(tmp_path: Path, big: Path) -> None:
    q = Quarantine(tmp_path / "q", keyring())
    entry = q.put("job-1", big, REPORT, SMTP_META)
    cut_original(entry, seg_offset(19))  # the last segment cut off
    _fails(q, "job-1", tmp_path / "out.eml", "truncated after segment 18")
    cut_original(entry, seg_offset(5) + 100)  # cut inside a segment
    _fails(q, "job-1", tmp_path / "out.eml", "segment 5 fails authentication")
    cut_original(entry, HEADER_SIZE)
    _fails(q, "job-1", tmp_path / "out.eml", "truncated: no data after the header")
    cut_original(entry, 10)
    with pytest.raises(SealError, match="not a sealed file"):
        q.read_original("job-1", tmp_path / "out.eml")
    entry.write_bytes(entry.read_bytes()[:section(entry, "meta")[0] + 50])  # file cut
    with pytest.raises(Tampered, match="the meta is cut off"):
        q.get("job-1")
    patch(entry, 20, b"\xff")  # the entry's own header
    with pytest.raises(SealError, match="damaged entry header"):
        q.get("job-1")


def test_files_swapped_between_entries_are_detected(tmp_path: Path, small: Path) -> None:
    q = Quarantine(tmp_path / "q", keyring())
    a = q.put("job-a", small, REPORT, SMTP_META)
    b = q.put("job-b", small, REPORT, {**SMTP_META, "recipients": ["other@example.jp"]})
    b.write_bytes(a.read_bytes())  # a whole entry copied under another name
    with pytest.raises(Tampered, match="not the meta of job-b"):
        q.get("job-b")
    _fails(q, "job-b", tmp_path / "out.eml", "not the meta of job-b")
    a_report = section(a, "report")
    layout = entry_file.read_layout(os.open(a, os.O_RDONLY), a.name)
    patch(a, 0, entry_file.Layout(layout.original, layout.report, a_report).pack())
    with pytest.raises(Tampered, match="not the meta of job-a"):  # purpose swap
        q.get("job-a")


def test_wrong_key_is_named_and_old_keys_still_open(tmp_path: Path, small: Path) -> None:
    first = keyring()
    q = Quarantine(tmp_path / "q", first)
    q.put("job-1", small, REPORT, SMTP_META)
    q.close()
    stranger = Quarantine(tmp_path / "q", keyring())
    with pytest.raises(UnknownKey, match=f"sealed with key {key_id(first.current)}.*"
                                         "wrong key file"):
        stranger.read_original("job-1", tmp_path / "out.eml")
    assert stranger.list() == []  # unreadable entries are skipped, not a crash
    stranger.close()
    rotated = Keyring(secrets.token_bytes(32), (first.current,))
    q2 = Quarantine(tmp_path / "q", rotated)
    q2.read_original("job-1", tmp_path / "out.eml")
    assert (tmp_path / "out.eml").read_bytes() == small.read_bytes()
    q2.mark_released("job-1", "admin", "checked")  # metadata re-sealed with the new key
    meta = section_bytes(tmp_path / "q" / "job-1", "meta")
    assert meta[10:18].hex() == rotated.current_id
    assert section_bytes(tmp_path / "q" / "job-1", "original")[10:18].hex() == \
        key_id(first.current)


def test_metadata_and_report_are_not_readable_on_disk(tmp_path: Path, small: Path) -> None:
    q = Quarantine(tmp_path / "q", keyring())
    q.put("job-1", small, {**REPORT, "input": {"name": "山田様_住民票.pdf"}}, SMTP_META)
    q.mark_released("job-1", "admin", "ok")
    for path in (tmp_path / "q").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for secret in (b"yamada@", b"kikaku@", "住民票".encode(), b"Q123"):
                assert secret not in data, (path, secret)


# ------------------------------------------------------------------ metadata and listing


def test_metadata_fields(tmp_path: Path, small: Path) -> None:
    q = Quarantine(tmp_path / "q", keyring(), retention=7 * 86400)
    before = datetime.now(UTC).replace(microsecond=0)
    q.put("job-1", small, REPORT, SMTP_META)
    e = q.get("job-1")
    created = datetime.fromisoformat(e.created.replace("Z", "+00:00"))
    assert before <= created <= datetime.now(UTC)
    assert datetime.fromisoformat(e.expires.replace("Z", "+00:00")) - created == \
        timedelta(days=7)
    assert (e.origin, e.policy, e.verdict, e.reason, e.name, e.state) == (
        "smtp", "default", "blocked", "executable.pe is blocked", "message.eml", "held")
    assert e.destination == {"sender": "yamada@example.jp",
                             "recipients": ["kikaku@city.example.lg.jp"]}
    assert e.size == small.stat().st_size
    assert e.sha256 == hashlib.sha256(small.read_bytes()).hexdigest()
    assert e.history == () and e.extra == {"qid": "Q123"}
    assert q.read_report("job-1") == REPORT


def test_put_takes_file_job_metadata(tmp_path: Path, small: Path) -> None:
    q = Quarantine(tmp_path / "q", keyring())
    sha = hashlib.sha256(small.read_bytes()).hexdigest()
    q.put("job-f", small, REPORT, {"origin": "folder", "requester": "soumu", "name": "a.docx",
                                   "policy": "strict", "verdict": "disarmed", "sha256": sha})
    q.put("job-h", small, REPORT, {"origin": "http", "requester": "staff-token",
                                   "verdict": "clean", "reason": None})
    assert q.get("job-f").destination == {"folder": "soumu", "file": "a.docx"}
    assert q.get("job-h").destination == {"token": "staff-token"}
    assert q.get("job-h").reason == "" and q.get("job-h").name == "message.eml"
    with pytest.raises(ValueError, match="smtp needs recipients"):
        q.put("job-x", small, REPORT, {"origin": "smtp", "sender": "a@b"})
    with pytest.raises(ValueError, match="needs an origin"):
        q.put("job-x", small, {}, {})
    with pytest.raises(QuarantineError, match="sha256 differs"):
        q.put("job-x", small, REPORT, {**SMTP_META, "sha256": "0" * 64})
    assert not (tmp_path / "q" / "job-x").exists()
    assert list((tmp_path / "q" / ".tmp").iterdir()) == []


def test_replacement_is_one_swap_so_the_entry_is_never_missing(
        tmp_path: Path, small: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Putting a job id again swaps the new entry in: the name is never renamed away,
    so a crash at any point leaves the old entry or the new one."""
    q = Quarantine(tmp_path / "q", keyring())
    q.put("job-s", small, REPORT, SMTP_META)
    final = tmp_path / "q" / "job-s"
    first = final.read_bytes()
    rename = os.rename

    def never_away(src: Path, dst: Path) -> None:
        assert Path(src) != final and Path(dst) != final, "entry renamed, not swapped"
        rename(src, dst)

    monkeypatch.setattr(os, "rename", never_away)
    q.put("job-s", small, {**REPORT, "verdict": "disarmed"},
          {**SMTP_META, "verdict": "disarmed"})
    monkeypatch.undo()
    assert q.get("job-s").verdict == "disarmed"
    assert final.read_bytes() != first
    assert list((tmp_path / "q" / ".tmp").iterdir()) == []  # the old entry is gone
    q.read_original("job-s", tmp_path / "out.eml")
    assert (tmp_path / "out.eml").read_bytes() == small.read_bytes()


def test_exchange_swaps_two_directories(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_text("from a")
    (b / "x").write_text("from b")
    durable.exchange(a, b)
    assert ((a / "x").read_text(), (b / "x").read_text()) == ("from b", "from a")
    with pytest.raises(FileNotFoundError):
        durable.exchange(a, tmp_path / "missing")


def test_failed_replacement_keeps_the_entry_it_was_replacing(
        tmp_path: Path, small: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where names cannot be swapped, the old entry is moved aside and put back when
    the new one cannot take its place."""
    q = Quarantine(tmp_path / "q", keyring())
    q.put("job-r", small, REPORT, SMTP_META)
    final = tmp_path / "q" / "job-r"
    rename = os.rename

    def no_room(src: Path, dst: Path) -> None:
        if Path(dst) == final and ".old." not in Path(src).name:
            raise OSError(28, "No space left on device")
        rename(src, dst)

    def unsupported(a: Path, b: Path) -> None:
        raise durable.NoExchange(22, "Invalid argument")

    monkeypatch.setattr(durable, "exchange", unsupported)
    monkeypatch.setattr(os, "rename", no_room)
    with pytest.raises(OSError, match="No space"):
        q.put("job-r", small, REPORT, SMTP_META)
    monkeypatch.setattr(os, "rename", rename)
    q.put("job-r", small, {**REPORT, "verdict": "disarmed"},
          {**SMTP_META, "verdict": "disarmed"})  # and the fallback replaces
    assert q.get("job-r").verdict == "disarmed"
    monkeypatch.undo()
    assert q.get("job-r").sha256 == hashlib.sha256(small.read_bytes()).hexdigest()
    q.read_original("job-r", tmp_path / "out.eml")
    assert (tmp_path / "out.eml").read_bytes() == small.read_bytes()
    assert list((tmp_path / "q" / ".tmp").iterdir()) == []


def test_updated_metadata_stays_0600_and_leaves_no_temp_file(tmp_path: Path,
                                                             small: Path) -> None:
    q = Quarantine(tmp_path / "q", keyring())
    entry = q.put("job-m", small, REPORT, SMTP_META)
    before = section(entry, "original"), section(entry, "report"), section(entry, "meta")
    q.mark_released("job-m", "admin", "checked by hand")
    assert entry.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in entry.parent.iterdir() if not p.name.startswith(".")] == \
        ["job-m"]
    assert list((tmp_path / "q" / ".tmp").iterdir()) == []
    # appended: original and report stay where they were, the new metadata follows
    assert (section(entry, "original"), section(entry, "report")) == before[:2]
    assert section(entry, "meta")[0] == sum(before[2])
    assert q.get("job-m").state == "released"


def test_list_filters_pages_and_survives_a_lost_index(tmp_path: Path, small: Path) -> None:
    q = Quarantine(tmp_path / "q", keyring())
    origins = ["smtp", "folder", "http"] * 4
    metas = {"smtp": SMTP_META, "folder": {"origin": "folder", "requester": "f", "name": "x"},
             "http": {"origin": "http", "requester": "t"}}
    for i, origin in enumerate(origins):
        q.put(f"job-{i:02d}", small, REPORT, metas[origin])
    q.mark_released("job-03", "admin", "ok")
    q.delete("job-04", "admin", "spam")
    everything = [e.job_id for e in q.list(limit=100)]
    assert everything == sorted(everything, reverse=True)  # same second: by job id
    assert len(everything) == 12 and q.count() == 12
    assert [e.job_id for e in q.list(limit=5)] + [e.job_id for e in q.list(limit=100,
                                                                           offset=5)] == everything
    assert [e.job_id for e in q.list(state="released")] == ["job-03"]
    assert [e.job_id for e in q.list(state="deleted")] == ["job-04"]
    assert {e.origin for e in q.list(origin="http")} == {"http"} and q.count(origin="http") == 4
    assert q.count(state="held", origin="folder") == 3
    q.close()
    (tmp_path / "q" / ".index.sqlite").unlink()
    for extra in ("-wal", "-shm"):
        (tmp_path / "q" / f".index.sqlite{extra}").unlink(missing_ok=True)
    again = Quarantine(tmp_path / "q", q.keys)
    assert [e.job_id for e in again.list(limit=100)] == everything
    assert [e.job_id for e in again.list(state="released")] == ["job-03"]


def test_another_instance_sees_changes(tmp_path: Path, small: Path) -> None:
    keys = keyring()
    daemon, admin = Quarantine(tmp_path / "q", keys), Quarantine(tmp_path / "q", keys)
    daemon.put("job-1", small, REPORT, SMTP_META)
    assert [e.job_id for e in admin.list()] == ["job-1"]
    admin.delete("job-1", "admin", "wrong recipient")
    assert daemon.get("job-1").state == "deleted" and daemon.count(state="deleted") == 1


def test_concurrent_puts_and_actions_from_threads(tmp_path: Path, small: Path) -> None:
    audit = AuditLog(tmp_path / "audit.log")
    q = Quarantine(tmp_path / "q", keyring(), audit=audit)
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(6):
                q.put(f"job-{t}-{i}", small, REPORT, SMTP_META)
                q.mark_released(f"job-{t}-{i}", f"admin{t}", "ok")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert q.count() == 48 and q.count(state="released") == 48
    assert verify(tmp_path / "audit.log") == []
    assert len((tmp_path / "audit.log").read_text().splitlines()) == 48


def test_tmp_leftovers_of_dead_processes_only_are_removed(tmp_path: Path) -> None:
    tmp = tmp_path / "q" / ".tmp"
    tmp.mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (tmp / f"{dead}.job-1.abc").mkdir()
    (tmp / f"{os.getppid()}.job-2.abc").mkdir()  # a live process (pytest's parent)
    (tmp / "junk").mkdir()
    Quarantine(tmp_path / "q", keyring())
    assert [p.name for p in tmp.iterdir()] == [f"{os.getppid()}.job-2.abc"]


# ----------------------------------------------------------------------- admin actions


def test_release_export_delete_history_and_audit(tmp_path: Path, small: Path) -> None:
    audit = AuditLog(tmp_path / "audit.log")
    q = Quarantine(tmp_path / "q", keyring(), audit=audit)
    entry = q.put("job-1", small, REPORT, SMTP_META)
    with pytest.raises(ValueError, match="actor and a reason"):
        q.mark_released("job-1", "", "x")
    with pytest.raises(ValueError, match="actor and a reason"):
        q.delete("job-1", "admin", "  ")
    q.mark_released("job-1", "suzuki", "sender confirmed by phone")
    q.export("job-1", tmp_path / "copy.eml", "tanaka", "forensics ticket 42")
    assert (tmp_path / "copy.eml").read_bytes() == small.read_bytes()
    gone = q.delete("job-1", "sato", "retention request")
    assert gone.state == "deleted"
    assert [(a.action, a.actor, a.reason) for a in gone.history] == [
        ("release", "suzuki", "sender confirmed by phone"),
        ("export", "tanaka", "forensics ticket 42"),
        ("delete", "sato", "retention request")]
    assert section(entry, "original") == (entry_file.HEADER, 0)  # gone, space freed
    assert entry.stat().st_size == entry_file.HEADER + sum(
        section(entry, w)[1] for w in ("report", "meta"))
    assert q.get("job-1").state == "deleted" and q.read_report("job-1") == REPORT
    with pytest.raises(WrongState, match=r"deleted \(delete by sato"):
        q.read_original("job-1", tmp_path / "again.eml")
    with pytest.raises(WrongState, match="already deleted"):
        q.delete("job-1", "sato", "twice")
    with pytest.raises(WrongState):
        q.export("job-1", tmp_path / "again.eml", "x", "y")
    with pytest.raises(NotFound, match="no such quarantine entry"):
        q.get("job-404")
    lines = [json.loads(x) for x in (tmp_path / "audit.log").read_text().splitlines()]
    assert [(x["event"], x["job_id"], x["actor"]) for x in lines] == [
        ("quarantine.release", "job-1", "suzuki"), ("quarantine.export", "job-1", "tanaka"),
        ("quarantine.delete", "job-1", "sato")]
    assert lines[1]["to"] == str(tmp_path / "copy.eml") and lines[2]["reason"]
    assert all(x["sha256"] == gone.sha256 for x in lines)
    assert verify(tmp_path / "audit.log") == []


def test_export_that_cannot_be_audited_leaves_no_copy(tmp_path: Path, small: Path) -> None:
    class Broken(AuditLog):
        def record(self, event: str, **fields: object) -> None:
            raise OSError("audit disk full")

    q = Quarantine(tmp_path / "q", keyring(), audit=Broken(tmp_path / "audit.log"))
    q.put("job-1", small, REPORT, SMTP_META)
    with pytest.raises(OSError, match="audit disk full"):
        q.export("job-1", tmp_path / "copy.eml", "tanaka", "why")
    assert not (tmp_path / "copy.eml").exists()
    with pytest.raises(OSError, match="audit disk full"):
        q.delete("job-1", "tanaka", "why")
    assert q.get("job-1").state == "held"  # nothing changed without its audit line
    assert section(tmp_path / "q" / "job-1", "original")[1] > 0


def test_retention_purge(tmp_path: Path, small: Path) -> None:
    audit = AuditLog(tmp_path / "audit.log")
    short = Quarantine(tmp_path / "q", keyring(), retention=3600, audit=audit)
    short.put("job-short", small, REPORT, SMTP_META)
    long = Quarantine(tmp_path / "q", short.keys, retention=10 * 3600, audit=audit)
    long.put("job-long", small, REPORT, SMTP_META)
    long.put("job-gone", small, REPORT, SMTP_META)
    long.delete("job-gone", "admin", "spam")
    now = datetime.now(UTC)
    assert short.purge(now + timedelta(minutes=30)) == []
    purged = short.purge(now + timedelta(hours=2))
    assert [e.job_id for e in purged] == ["job-short"]
    assert purged[0].state == "deleted"
    assert [(a.action, a.actor) for a in purged[0].history] == [("purge", "retention")]
    assert section(tmp_path / "q" / "job-short", "original")[1] == 0
    assert short.get("job-long").state == "held"
    with pytest.raises(WrongState):
        short.read_original("job-short", tmp_path / "x")
    assert short.purge(now + timedelta(hours=2)) == []
    assert [e.job_id for e in short.purge(now + timedelta(hours=11))] == ["job-long"]
    events = [json.loads(x) for x in (tmp_path / "audit.log").read_text().splitlines()]
    assert [(x["event"], x["job_id"]) for x in events] == [
        ("quarantine.delete", "job-gone"), ("quarantine.purge", "job-short"),
        ("quarantine.purge", "job-long")]
    assert verify(tmp_path / "audit.log") == []


def test_shred_overwrites_the_header_before_unlinking(tmp_path: Path) -> None:
    keys = keyring()
    src, dst = tmp_path / "in", tmp_path / "out.sealed"
    src.write_bytes(b"x" * 100)
    sealed.seal_file(src, dst, keys, "original", "job-1")
    seen: list[bytes] = []
    real_unlink = Path.unlink

    def spy(self: Path, missing_ok: bool = False) -> None:
        seen.append(self.read_bytes()[:HEADER_SIZE])
        real_unlink(self, missing_ok=missing_ok)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Path, "unlink", spy)
        original_header = dst.read_bytes()[:HEADER_SIZE]
        sealed.shred(dst)
    assert not dst.exists() and seen and seen[0] != original_header
    assert not seen[0].startswith(sealed.MAGIC)


# ------------------------------------------------------------------ entry files


def legacy(entry: Path) -> Path:
    """Turn an entry file into the directory layout of earlier versions (three files)."""
    parts = {name: section_bytes(entry, which) for name, which in
             (("original.sealed", "original"), ("report.sealed", "report"),
              ("meta.sealed", "meta"))}
    entry.unlink()
    entry.mkdir()
    for name, data in parts.items():
        (entry / name).write_bytes(data)
    return entry


def test_entries_of_the_directory_layout_still_work(tmp_path: Path, small: Path) -> None:
    keys = keyring()
    q = Quarantine(tmp_path / "q", keys)
    old = legacy(q.put("job-old", small, REPORT, SMTP_META))
    q.put("job-new", small, REPORT, SMTP_META)
    q.close()
    (tmp_path / "q" / ".index.sqlite").unlink()  # rebuilt from both kinds of entry
    q = Quarantine(tmp_path / "q", keys)
    assert sorted(e.job_id for e in q.list()) == ["job-new", "job-old"]
    assert q.read_report("job-old") == REPORT
    q.read_original("job-old", tmp_path / "back.eml")
    assert (tmp_path / "back.eml").read_bytes() == small.read_bytes()
    q.mark_released("job-old", "admin", "checked")
    assert q.get("job-old").state == "released" and old.is_dir()
    q.delete("job-old", "admin", "spam")
    assert sorted(p.name for p in old.iterdir()) == ["meta.sealed", "report.sealed"]
    assert q.get("job-old").state == "deleted"
    q.put("job-old", small, REPORT, SMTP_META)  # the pipeline ran again: a file now
    assert old.is_file() and q.get("job-old").state == "held"
    assert list((tmp_path / "q" / ".tmp").iterdir()) == []


def test_a_crash_before_the_header_points_at_new_metadata_keeps_the_old(
        tmp_path: Path, small: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    q = Quarantine(tmp_path / "q", keyring())
    entry = q.put("job-c", small, REPORT, SMTP_META)
    pwrite = os.pwrite

    def crash_at_header(fd: int, data: bytes, offset: int) -> int:
        if offset == 0:
            raise OSError(5, "Input/output error")
        return pwrite(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", crash_at_header)
    with pytest.raises(OSError, match="Input/output"):
        q.mark_released("job-c", "admin", "checked")
    monkeypatch.undo()
    assert q.get("job-c").state == "held"  # the appended metadata is not pointed at
    q.mark_released("job-c", "admin", "checked")
    assert q.get("job-c").state == "released"
    q.read_original("job-c", tmp_path / "out.eml")
    assert (tmp_path / "out.eml").read_bytes() == small.read_bytes()
    assert entry.stat().st_size > entry_file.HEADER + sum(
        section(entry, w)[1] for w in ("original", "report", "meta"))


def test_a_header_read_while_it_is_rewritten_is_read_again(
        tmp_path: Path, small: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    q = Quarantine(tmp_path / "q", keyring())
    q.put("job-t", small, REPORT, SMTP_META)
    pread = os.pread
    torn = [True]

    def half_written(fd: int, n: int, offset: int) -> bytes:
        data = pread(fd, n, offset)
        if offset == 0 and torn[0]:
            torn[0] = False
            return data[:30] + bytes(len(data) - 30)
        return data

    monkeypatch.setattr(os, "pread", half_written)
    assert q.get("job-t").state == "held" and not torn[0]
