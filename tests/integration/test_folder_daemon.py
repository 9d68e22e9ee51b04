"""The drop folder in the real daemon (``sekisho serve``): every corpus category through the
folder, and ``kill -9`` in the middle of a batch with nothing lost after the restart.

Outputs are checked independently of Sekisho's own verify step: lxml for HTML/SVG,
qpdf and a pikepdf walk for PDF, the zip listing for OOXML, olevba for legacy Office,
oletools' rtfobj for RTF, the standard library's parser for mail, Pillow for images.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import json
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.conftest import ROOT, check_report_schema, corpus_dir
from tests.helpers import pdfwalk
from tests.helpers.markupcheck import html_problems, svg_problems, xml_problems
from tests.helpers.officecheck import olevba_findings
from tests.helpers.smtppeers import Daemon, wait_for

pytestmark = [pytest.mark.xdist_group("smtp"), pytest.mark.slow]

CATEGORIES = ("a_pdf", "b_ooxml", "c_ole", "d_rtf", "e_html_svg", "f_archive", "g_email",
              "h_image")


def daemon(workdir: Path) -> Daemon:
    return Daemon(workdir, {
        "workers": 2, "http": {"enabled": False},
        "folders": [{"name": "main", "inbox": str(workdir / "inbox"),
                     "outbox": str(workdir / "outbox"), "stable": "1s"}]})


def drop(inbox: Path, rel: str, src: Path) -> None:
    """Copy in under a .part name, then rename: what a careful sender does."""
    target = inbox / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    shutil.copyfile(src, part)
    os.rename(part, target)


def reports(outbox: Path) -> list[tuple[Path, dict[str, Any]]]:
    found = []
    for p in outbox.rglob("*.report.json"):
        try:
            found.append((p, json.loads(p.read_text("utf-8"))))
        except ValueError as exc:  # written atomically: never half a file
            raise AssertionError(f"{p} is not complete JSON") from exc
    return found


def by_input(outbox: Path) -> dict[str, list[tuple[Path, dict[str, Any]]]]:
    """Reports by the input's path below the inbox."""
    out: dict[str, list[tuple[Path, dict[str, Any]]]] = {}
    for path, rep in reports(outbox):
        rel = path.parent.relative_to(outbox) / rep["input"]["name"]
        out.setdefault(rel.as_posix(), []).append((path, rep))
    return out


def visible_files(d: Path) -> list[str]:
    return sorted(p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file()
                  and not any(x.startswith(".") for x in p.relative_to(d).parts))


def check_outbox(outbox: Path, dropped: dict[str, Path], quarantine: Path) -> dict[str, int]:
    """Exactly one report per dropped file; the output (or the notice) beside it, and
    every output checked by an independent reader. Verdict counts."""
    got = by_input(outbox)
    assert sorted(got) == sorted(dropped), (set(dropped) ^ set(got))
    verdicts: dict[str, int] = {}
    for rel, found in sorted(got.items()):
        assert len(found) == 1, f"{rel}: {len(found)} reports"
        path, rep = found[0]
        check_report_schema(rep)
        assert rep["source"] == "folder"
        assert rep["input"]["sha256"] == hashlib.sha256(dropped[rel].read_bytes()).hexdigest()
        verdicts[rep["verdict"]] = verdicts.get(rep["verdict"], 0) + 1
        base = path.with_name(path.name.removesuffix(".report.json"))
        if rep["verdict"] in ("clean", "disarmed"):
            stem, dot, ext = rep["output"]["name"].rpartition(".")
            assert base.name == rep["output"]["name"] or re.fullmatch(  # taken: "a (2).ext"
                re.escape(stem) + r" \(\d+\)" + re.escape(dot + ext), base.name), base
            data = base.read_bytes()
            assert hashlib.sha256(data).hexdigest() == rep["output"]["sha256"], rel
            independent_check(rep["output"]["type"], base)
        else:
            assert rep["output"] is None and not base.exists()
            # never lost: a file that was not delivered has its original in quarantine
            assert (quarantine / rep["job_id"]).is_file(), rel
            assert rep["items"][0]["error"], f"{rel}: blocked without a reason"
            notice = base.with_name(base.name + ".blocked.txt").read_text("utf-8-sig")
            assert rep["job_id"] in notice and "原本は隔離されています" in notice
    outputs = {p.name for p in outbox.rglob("*") if p.is_file()}
    assert not [n for n in outputs if n.startswith(".sekisho-")]  # no temporary left
    return verdicts


def independent_check(type_id: str, out: Path) -> None:
    family = type_id.split(".", 1)[0]
    data = out.read_bytes()
    if family == "html":
        assert html_problems(out) == [], out
        assert b"<script" not in data.lower()
    elif family == "svg":
        assert svg_problems(out) == [], out
    elif family == "pdf":
        proc = subprocess.run(["qpdf", "--check", str(out)], capture_output=True, check=False)
        assert proc.returncode in (0, 3), (out, proc.stdout[-500:])  # 3: warnings only
        assert pdfwalk.check(str(out), keep_uri=True, allow_embedded=True) == [], out
    elif family == "ooxml" and not zipfile.is_zipfile(out):  # Flat OPC, Word 2003 XML
        lower = data.lower()
        assert b"vbaproject" not in lower and b"activex" not in lower, out
        assert b"editdata.mso" not in lower, out
    elif family == "ooxml":
        with zipfile.ZipFile(out) as zf:
            assert zf.testzip() is None
            bad = [n for n in zf.namelist()
                   if "vbaproject" in n.lower() or "activex" in n.lower()
                   or n.lower().startswith("xl/macrosheets/")]
            assert bad == [], (out, bad)
    elif family == "ole":
        assert olevba_findings(out) == [], out
    elif family == "rtf":
        from oletools.rtfobj import RtfObjParser

        parser = RtfObjParser(data)
        parser.parse()
        assert parser.objects == [], out
    elif family == "mail":
        msg = email.message_from_bytes(data, policy=email.policy.default)
        for part in msg.walk():
            payload = part.get_payload(decode=True) or b""
            if part.get_content_type() == "text/html":
                assert b"<script" not in payload.lower(), out
            assert not payload.startswith(b"MZ"), out
    elif family == "archive":
        with zipfile.ZipFile(out) as zf:
            assert zf.testzip() is None
            for name in zf.namelist():
                assert not zf.read(name).startswith(b"MZ"), (out, name)
    elif family == "image":
        with Image.open(out) as im:
            im.load()
    elif family == "odf":
        with zipfile.ZipFile(out) as zf:
            assert zf.testzip() is None and zf.namelist()[0] == "mimetype"
            bad = [n for n in zf.namelist() if n.startswith(("Basic/", "Scripts/", "Dialogs/"))]
            assert bad == [], (out, bad)
            for name in zf.namelist():
                if name.endswith(".xml"):
                    xml = zf.read(name)
                    for active in (b"event-listener", b"<office:script", b"object-ole"):
                        assert active not in xml, (out, name, active)
    elif type_id == "text.sylk":
        records = [line.split(b";") for line in data.splitlines()]
        assert not [r for r in records if r[0] in (b"C", b"O") and b"E" in [f[:1] for f in r[1:]]]
        assert not [r for r in records if r[0] in (b"NN", b"NE", b"NU")], out
    elif type_id == "text.xml":
        assert xml_problems(out) == [], out
    elif family == "text":
        pass  # delivered as is (CSV formulas neutralized): nothing active to look for
    else:
        raise AssertionError(f"no independent check for {type_id} ({out})")


def corpus_files() -> dict[str, Path]:
    """Every corpus file, by its path below the corpus (category/source/name)."""
    root = corpus_dir()
    files = {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*"))
             if p.is_file() and p.parent != root}
    assert {rel.split("/", 1)[0] for rel in files} == set(CATEGORIES)
    return files


# ------------------------------------------------------------------------------ tests


def test_every_corpus_category_through_the_folder(tmp_path: Path) -> None:
    d = daemon(tmp_path)
    d.start()
    try:
        files = corpus_files()
        for rel, src in files.items():
            drop(tmp_path / "inbox", rel, src)
        wait_for(lambda: len(reports(tmp_path / "outbox")) >= len(files), 900,
                 f"{len(files)} reports", step=1.0)
        verdicts = check_outbox(tmp_path / "outbox", files, d.var / "quarantine")
        print(f"corpus through the folder: {len(files)} files, {verdicts}")
        assert visible_files(tmp_path / "inbox") == []
        for cat in CATEGORIES:  # each category produced reports (delivered or blocked)
            assert any(r.startswith(cat + "/") for r in by_input(tmp_path / "outbox"))
    finally:
        assert d.stop() == 0


def kill_batch() -> dict[str, Path]:
    """About 60 files: every sample, and six small files of every corpus category."""
    chosen: dict[str, Path] = {}
    for p in sorted((ROOT / "samples").rglob("*")):
        if p.is_file() and p.suffix not in (".yaml", ".py"):
            chosen[f"{len(chosen):02d}-{p.name}"] = p
    files = corpus_files()
    for cat in CATEGORIES:
        small = [p for rel, p in files.items()
                 if rel.startswith(cat + "/") and p.stat().st_size < 300_000]
        step = max(1, len(small) // 6)
        for p in small[::step][:6]:
            chosen[f"{len(chosen):02d}-{p.name}"] = p
    return chosen


def test_kill9_during_folder_processing_loses_nothing(tmp_path: Path) -> None:
    d = daemon(tmp_path)
    inbox, outbox = tmp_path / "inbox", tmp_path / "outbox"
    batch = kill_batch()
    assert len(batch) >= 55
    d.start()
    try:
        for rel, src in batch.items():
            drop(inbox, rel, src)
        for at in (8, 30):  # twice: early (most files still in the inbox), then later
            wait_for(lambda: len(reports(outbox)) >= at, 120, f"{at} reports", step=0.02)  # noqa: B023
            d.kill9()
            done_at_kill = len(reports(outbox))
            assert done_at_kill < len(batch)  # the kill hit a batch in progress
            jobs = d.var / "jobs"
            in_jobs = sum(1 for j in jobs.iterdir() if not j.name.startswith("."))
            print(f"at the kill: {done_at_kill} reports, {len(visible_files(inbox))} files "
                  f"in the inbox, {in_jobs} jobs")
            d.start()
        wait_for(lambda: len(reports(outbox)) >= len(batch), 300,
                 f"{len(batch)} reports", step=0.5)
        verdicts = check_outbox(outbox, batch, d.var / "quarantine")
        failed = [rep for _, rep in reports(outbox) if rep["verdict"] == "failed"]
        print(f"after the restart: {verdicts}; failed: "
              f"{[(r['input']['name'], r['items'][0]['error']) for r in failed]}")
        assert visible_files(inbox) == []
        claims = inbox / ".sekisho" / "claim"
        assert not claims.exists() or not any(claims.iterdir())
    finally:
        if d.proc is not None and d.proc.poll() is None:
            assert d.stop() == 0
