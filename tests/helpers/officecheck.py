"""Independent checks on Office files: oletools (olevba, msodde, oleobj) and LibreOffice.

These never import Sekisho code: they are the second opinion on what the stages
produce. Every function takes a path and runs the tool as a subprocess (the
oletools CLIs from the virtualenv, ``soffice --headless``), so a tool's crash or
global state cannot leak into the test process.

LibreOffice is required: without ``soffice`` the calling test fails and names the
Debian packages to install (never skipped). Each test process uses its own profile
(``-env:UserInstallation``) under /tmp, so parallel test workers do not collide.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import defusedxml.ElementTree as DET
import pytest

BIN = Path(sys.executable).parent
LO_PACKAGES = "libreoffice-writer-nogui libreoffice-calc-nogui libreoffice-impress-nogui"
TIMEOUT = 180

_WRITER = {"docx", "docm", "dotx", "dotm", "doc", "dot", "rtf", "odt", "xml", "txt", "htm",
           "html"}
_CALC = {"xlsx", "xlsm", "xltx", "xltm", "xlam", "xlsb", "xls", "xlt", "ods", "csv"}
_IMPRESS = {"pptx", "pptm", "potx", "potm", "ppsx", "ppsm", "ppam", "ppt", "pot", "pps", "odp"}
_DRAW = {"vsdx", "vsdm", "vstx", "vstm", "vssx", "vssm", "vsd", "odg"}


def _tool(name: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    exe = BIN / name
    if not exe.exists():
        found = shutil.which(name)
        if found is None:
            pytest.fail(f"{name} (oletools) is not installed in the test environment")
        exe = Path(found)
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=TIMEOUT,
                          cwd=cwd, check=False, errors="replace")


# ---------------------------------------------------------------------------- oletools


def olevba_findings(path: Path) -> list[str]:
    """VBA modules and XLM macros olevba sees ("xl/vbaProject.bin:Module1.bas")."""
    proc = _tool("olevba", "-j", "--relaxed", str(path))
    try:
        results = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"olevba printed no JSON for {path}: {proc.stderr[-500:]}")
    found: list[str] = []
    for result in results:
        for macro in result.get("macros") or []:
            found.append(f"{macro.get('subfilename')}:{macro.get('vba_filename')}")
        for item in result.get("analysis") or []:
            if item.get("type") in ("AutoExec", "XLM") or "XLM" in str(item.get("keyword")):
                found.append(f"{item.get('type')}:{item.get('keyword')}")
    return found


def msodde_findings(path: Path) -> list[str]:
    """Field instructions and DDE links msodde reports (its default blacklist filter)."""
    proc = _tool("msodde", str(path))
    lines = proc.stdout.splitlines()
    if "DDE Links:" not in [line.strip() for line in lines]:
        pytest.fail(f"msodde could not read {path}: {proc.stdout[-500:]} {proc.stderr[-500:]}")
    start = [line.strip() for line in lines].index("DDE Links:")
    return [line.strip() for line in lines[start + 1:] if line.strip()]


def oleobj_findings(path: Path) -> list[str]:
    """External relationships, customUI onLoad and OLE packages (Ole10Native) oleobj finds.

    oleobj looks at every zip member that is an OLE file and reports only the
    ``\\x01Ole10Native`` streams (embedded files); an embedded OOXML package (a zip)
    is not an OLE file, so a recursively disarmed docx/xlsx inside is not reported.
    """
    with tempfile.TemporaryDirectory(prefix="sekisho-oleobj-") as out:
        proc = _tool("oleobj", "-d", out, str(path))
    found = []
    for line in proc.stdout.splitlines():
        if line.startswith(("Found relationship", "Found customUI", "extract file embedded")):
            found.append(line.strip())
    return found


_XLM_TYPES = ("application/vnd.ms-excel.macrosheet", "application/vnd.ms-excel.intlmacrosheet")


def xlm_parts(path: Path) -> list[str]:
    """Excel 4.0 macro sheets in an OOXML zip, by content type, relationship or path.

    olevba only finds XLM in binary (BIFF) workbooks, so this independent look at the
    package fills that gap.
    """
    found: list[str] = []
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        for name in names:
            if name.lower().startswith("xl/macrosheets/") and not name.endswith(".rels") \
                    and "binaryindex" not in name.lower():
                found.append(name)
            if name.endswith(".rels"):
                text = zf.read(name).decode("utf-8", "replace")
                found += [f"{name}:{m}" for m in re.findall(r'Type="[^"]*(?:Macrosheet|'
                                                            r'macrosheet)"', text)]
        if "[Content_Types].xml" in names:
            text = zf.read("[Content_Types].xml").decode("utf-8", "replace").lower()
            found += [f"[Content_Types].xml:{t}" for t in _XLM_TYPES if t in text]
    return found


_R_NS = ("http://schemas.openxmlformats.org/officeDocument/2006/relationships",
         "http://purl.oclc.org/ooxml/officeDocument/relationships")
_O_RELID = "{urn:schemas-microsoft-com:office:office}relid"


def ooxml_integrity(path: Path) -> list[str]:
    """What would make Office offer to repair an OOXML zip (a proxy: Office is not here).

    Every part has a content type; every Override names a part; every internal
    relationship target exists; every XML part parses; every relationship id used in
    a part's markup (``r:id``, ``r:embed``, ``o:relid``…) exists in its rels part.
    """
    problems: list[str] = []
    with zipfile.ZipFile(path) as zf:
        names = {n for n in zf.namelist() if not n.endswith("/")}
        lower = {n.lower(): n for n in names}
        types = DET.fromstring(zf.read("[Content_Types].xml"))
        defaults = {el.get("Extension", "").lower() for el in types if el.tag.endswith("Default")}
        overrides = {el.get("PartName", "").lstrip("/").lower()
                     for el in types if el.tag.endswith("Override")}
        problems += [f"override for missing part {o}" for o in overrides if o not in lower]
        for name in names - {"[Content_Types].xml"}:
            if name.lower() not in overrides and \
                    name.rsplit(".", 1)[-1].lower() not in defaults:
                problems.append(f"no content type for {name}")
        for name in sorted(names):
            if not name.endswith(".rels"):
                continue
            folder = name.rsplit("_rels/", 1)[0]
            source = folder + name.rsplit("/", 1)[-1][:-5]
            ids = set()
            for rel in DET.fromstring(zf.read(name)):
                ids.add(rel.get("Id", ""))
                if rel.get("TargetMode", "") == "External":
                    continue
                target = rel.get("Target", "")
                if target.startswith("#"):
                    continue   # a place in the document itself (Excel's "#Sheet2!A1")
                full = target.lstrip("/") if target.startswith("/") else \
                    posixpath.normpath(posixpath.join(folder, target))
                if unquote(full).lower() not in lower and full.lower() not in lower:
                    problems.append(f"{name}: {rel.get('Id')} -> missing {target}")
            if source in names and source.endswith(".xml"):
                try:
                    root = DET.fromstring(zf.read(source))
                except Exception as exc:
                    problems.append(f"{source} does not parse: {exc}")
                    continue
                for el in root.iter():
                    for key, value in el.attrib.items():
                        if ((key.startswith("{") and key[1:].split("}")[0] in _R_NS)
                                or key == _O_RELID) and value and value not in ids:
                            problems.append(f"{source}: {key.rsplit('}', 1)[1]}={value} "
                                            "has no relationship")
    return problems


# ---------------------------------------------------------------------------- LibreOffice


def soffice() -> str:
    exe = shutil.which("soffice") or shutil.which("libreoffice")
    if exe is None:
        pytest.fail(f"LibreOffice (soffice) is missing: apt-get install {LO_PACKAGES}")
    return exe


def _app(path: Path, app: str | None) -> str:
    if app:
        return app
    ext = path.suffix.lower().lstrip(".")
    if ext in _CALC:
        return "calc"
    if ext in _IMPRESS:
        return "impress"
    if ext in _DRAW:
        return "draw"
    return "writer"


def libreoffice_convert(path: Path, out_dir: Path, app: str | None = None) -> Path | None:
    """Convert to the flat ODF of the document's application; None when it cannot load."""
    target = {"writer": "fodt", "calc": "fods", "impress": "fodp", "draw": "fodg"}[
        _app(path, app)]
    profile = Path(tempfile.gettempdir()) / f"sekisho-lo-{os.getpid()}"
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [soffice(), f"-env:UserInstallation=file://{profile}", "--headless", "--norestore",
           "--convert-to", target, "--outdir", str(out_dir), str(path)]
    try:
        subprocess.run(cmd, capture_output=True, timeout=TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"LibreOffice hung on {path} (over {TIMEOUT}s)")
    result = out_dir / f"{path.stem}.{target}"
    return result if result.is_file() and result.stat().st_size > 0 else None


def libreoffice_opens(path: Path, app: str | None = None) -> bool:
    with tempfile.TemporaryDirectory(prefix="sekisho-lo-out-") as out:
        return libreoffice_convert(path, Path(out), app) is not None


def libreoffice_text(path: Path, app: str | None = None) -> str:
    """The document's text as LibreOffice renders it: one line per paragraph or cell."""
    with tempfile.TemporaryDirectory(prefix="sekisho-lo-out-") as out:
        result = libreoffice_convert(path, Path(out), app)
        if result is None:
            pytest.fail(f"LibreOffice could not open {path}")
        root = DET.fromstring(result.read_bytes())
    body = next((el for el in root.iter() if el.tag.endswith("}body")), root)
    return "\n".join(_paragraphs(body))


#: embedded objects (an OLE object LibreOffice converted, its preview, its base64 data)
#: are not the document's own text
_SKIP = {"object", "object-ole", "binary-data", "document", "image"}


def _paragraphs(el: Any) -> Iterator[str]:
    for child in el:
        name = child.tag.rsplit("}", 1)[-1]
        if name in _SKIP:
            continue
        if name in ("p", "h"):
            text = "".join(_text(child)).strip()
            if text:
                yield text
        else:
            yield from _paragraphs(child)


def _text(el: Any) -> Iterator[str]:
    """Text of a paragraph, without what embedded objects hold."""
    if el.tag.rsplit("}", 1)[-1] in _SKIP:
        return
    if el.text:
        yield el.text
    for child in el:
        yield from _text(child)
        if child.tail:
            yield child.tail
