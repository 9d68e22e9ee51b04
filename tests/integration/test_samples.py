"""Every file in samples/catalog.yaml through the real CLI: exact findings, verdict, and
independent checks of each output by format."""

from __future__ import annotations

import email
import email.policy
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image

from tests.conftest import ROOT, check_report_schema
from tests.helpers import pdfwalk
from tests.helpers.markupcheck import html_problems, svg_problems, xml_problems

CATALOG = ROOT / "samples" / "catalog.yaml"
ENTRIES: list[dict[str, Any]] = yaml.safe_load(CATALOG.read_text(encoding="utf-8"))["samples"]


def test_catalog_is_complete() -> None:
    listed = {e["file"] for e in ENTRIES}
    on_disk = {str(p.relative_to(ROOT / "samples")) for p in (ROOT / "samples").rglob("*")
               if p.is_file() and p.name != "catalog.yaml" and p.suffix != ".py"}
    assert listed == on_disk
    for e in ENTRIES:
        assert {"file", "source", "date", "verdict", "findings"} <= set(e), e["file"]


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["file"] for e in ENTRIES])
def test_sample(entry: dict[str, Any], tmp_path: Path) -> None:
    src = ROOT / "samples" / entry["file"]
    out, rep = tmp_path / "out", tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "-m", "gateway", "disarm", str(src), "-o", str(out),
                           "--report", str(rep), "--policy", entry.get("policy", "default")],
                          capture_output=True, text=True, timeout=120, check=False,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert "Traceback" not in proc.stderr
    report = json.loads(rep.read_text(encoding="utf-8"))
    check_report_schema(report)
    assert report["verdict"] == entry["verdict"], report
    assert proc.returncode == {"clean": 0, "disarmed": 0, "blocked": 3, "failed": 4}[
        entry["verdict"]]
    got = sorted([f["kind"], f["location"]] for f in report["items"][0]["findings"])
    assert got == sorted(entry["findings"])
    if entry["verdict"] in ("clean", "disarmed"):
        _independent_check(report["output"]["type"], out)
    else:
        assert not out.exists()


def _independent_check(type_id: str, out: Path) -> None:
    family = type_id.split(".", 1)[0]
    if family == "html":
        assert html_problems(out) == []
    elif family == "svg":
        assert svg_problems(out) == []
    elif family == "image":
        with Image.open(out) as im:
            im.load()
            assert not im.info.get("exif") and not im.info.get("comment")
    elif family == "archive":
        with zipfile.ZipFile(out) as zf:
            assert zf.testzip() is None
            for name in zf.namelist():
                assert not zf.read(name).startswith(b"MZ"), name
    elif family == "odf":
        with zipfile.ZipFile(out) as zf:
            assert zf.testzip() is None and zf.namelist()[0] == "mimetype"
            assert not [n for n in zf.namelist() if n.startswith(("Basic/", "Scripts/"))]
            content = zf.read("content.xml")
        assert b"event-listener" not in content and b"object-ole" not in content
        from tests.helpers import officecheck

        odt = out.with_name("out.odt")
        odt.write_bytes(out.read_bytes())
        assert "市役所からのお知らせ" in officecheck.libreoffice_text(odt)
    elif type_id == "text.sylk":
        records = [line.split(b";") for line in out.read_bytes().splitlines()]
        assert not [r for r in records if r[0] in (b"C", b"O") and b"E" in [f[:1] for f in r[1:]]]
        assert not [r for r in records if r[0] in (b"NN", b"NE", b"NU")]
        from tests.helpers import olegen

        slk = out.with_name("out.slk")
        slk.write_bytes(out.read_bytes())
        lo = olegen.lo_texts([slk], out.parent / "lo")[slk.name]
        assert lo is not None and "Sekisho sample sheet" in lo
    elif type_id == "text.xml":
        assert xml_problems(out) == []
        text = out.read_text(encoding="utf-8")
        assert "関所市 台帳" in text and "passwd" not in text and "alert" not in text
    elif family == "text":
        out.read_text(encoding="utf-8")
    elif family == "pdf":
        subprocess.run(["qpdf", "--check", str(out)], check=True, capture_output=True)
        assert pdfwalk.check(str(out), keep_uri=True) == []
    elif family == "rtf":
        from oletools.rtfobj import RtfObjParser

        parser = RtfObjParser(out.read_bytes())
        parser.parse()
        assert parser.objects == []
    elif family == "ooxml":
        from tests.helpers import officecheck

        assert out.read_bytes().startswith(b"PK")  # delivered without encryption
        assert officecheck.olevba_findings(out) == []
        assert officecheck.ooxml_integrity(out) == []
    elif family == "ole":
        import msoffcrypto

        from tests.helpers import officecheck

        with out.open("rb") as fh:  # delivered without encryption
            assert not msoffcrypto.OfficeFile(fh).is_encrypted()
        assert officecheck.olevba_findings(out) == []
        assert officecheck.msodde_findings(out) == []
        assert officecheck.libreoffice_text(out, {"doc": "writer", "xls": "calc",
                                                  "ppt": "impress"}[type_id[4:]]).strip()
    elif family == "mail":
        for policy in (email.policy.compat32, email.policy.default):
            msg = email.message_from_bytes(out.read_bytes(), policy=policy)
            for part in msg.walk():
                assert not part.defects, part.defects
                if part.get_content_type() == "text/html":
                    html = part.get_payload(decode=True).lower()
                    assert b"<script" not in html and b"onload" not in html
                assert not (part.get_payload(decode=True) or b"").startswith(b"MZ")
    else:
        raise AssertionError(f"no independent check for {type_id}")
