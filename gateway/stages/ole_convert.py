"""Policy ``ole: {legacy: convert}``: deliver legacy Office files as OOXML.

Order of work, defence in depth:

1. the legacy file is disarmed as usual (``ole.py``): LibreOffice only ever
   sees a file without VBA, objects, DDE/INCLUDE fields or remote templates;
2. LibreOffice headless converts it (doc->docx, xls->xlsx, ppt->pptx) in a
   private temporary directory with its own profile, in a new network
   namespace (``unshare -rn``: no network at all), with a wall-clock timeout
   after which the whole process group is killed;
3. the OOXML result runs through the pipeline (``ctx.recurse``), so the OOXML
   stage disarms and verifies it like any upload; its clean copy is the output.

This is the one place a stage writes files besides src/dst: LibreOffice needs
them. Without LibreOffice, or where network namespaces are not permitted, the
item is refused (Unsupported) rather than converted without isolation.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path, PurePath

from gateway.errors import LimitExceeded, Malformed, Unsupported
from gateway.kinds import Action
from gateway.pipeline.api import StageContext

#: legacy type -> (extension, LibreOffice export filter)
TARGETS = {"ole.doc": ("docx", "docx:MS Word 2007 XML"),
           "ole.xls": ("xlsx", "xlsx:Calc MS Excel 2007 XML"),
           "ole.ppt": ("pptx", "pptx:Impress MS PowerPoint 2007 XML")}
_ISOLATE = ("unshare", "--net", "--map-root-user")


def soffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


@functools.cache
def _isolation_works() -> bool:
    try:
        return subprocess.run([*_ISOLATE, "true"], capture_output=True, timeout=10,
                              check=False).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def convert(data: bytes, ctx: StageContext) -> bytes:
    """The disarmed OOXML copy of the (already disarmed) legacy file ``data``."""
    ext, export = TARGETS[ctx.type_id]
    program = soffice()
    if program is None:
        raise Unsupported("legacy: convert needs LibreOffice (soffice), which is not installed")
    if not _isolation_works():
        raise Unsupported("legacy: convert needs network namespaces (unshare) to isolate "
                          "LibreOffice")
    timeout = max(5.0, ctx.policy.limits.timeout * 0.8)
    with tempfile.TemporaryDirectory(prefix="sekisho-lo-") as tmp:
        work = Path(tmp)
        src = work / f"input.{ctx.type_id.split('.', 1)[1]}"
        src.write_bytes(data)
        outdir = work / "out"
        cmd = [*_ISOLATE, program, f"-env:UserInstallation={(work / 'profile').as_uri()}",
               "--headless", "--norestore", "--nolockcheck", "--nodefault", "--nologo",
               "--convert-to", export, "--outdir", str(outdir), str(src)]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work),
               "LANG": "C.UTF-8", "SAL_USE_VCLPLUGIN": "svp", "TMPDIR": str(work)}
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=env, cwd=work,
                                start_new_session=True)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise LimitExceeded(f"LibreOffice conversion took longer than {timeout:.0f}s") \
                from None
        result = outdir / f"input.{ext}"
        if not result.is_file() or result.stat().st_size == 0:
            raise Malformed(f"LibreOffice could not convert the document to .{ext}")
        converted = result.read_bytes()
    emb = ctx.recurse(converted, f"{PurePath(ctx.location).stem or 'converted'}.{ext}")
    if not emb.delivered or emb.data is None:
        raise Malformed(f"the converted .{ext} was not delivered: {emb.reason or emb.verdict}")
    out_ext = PurePath(emb.name).suffix.lstrip(".") or ext
    ctx.output_type = (emb.type, out_ext)
    ctx.record("ole.converted", "", action=Action.NEUTRALIZED,
               detail=f"converted to .{out_ext} with LibreOffice and disarmed as OOXML")
    return emb.data
