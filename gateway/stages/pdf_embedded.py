"""Embedded files in PDFs: file specifications with /EF, by policy.

``embedded_files: remove`` (the default) takes every embedded file out: a PDF
attachment is a file the recipient opens from inside the viewer, out of sight of
the mail gateway's attachment rules, and checkers that walk a PDF's objects count
any /EmbeddedFile as active content (the daemon keeps the original). ``disarm``
runs each one through the whole pipeline (``ctx.recurse``); a delivered result is
embedded again in place of the original (new data, name, /Subtype and /Params
/Size; /CheckSum dropped), anything else is removed. When a file is
removed, its file specification loses /EF and the stream is emptied, so no other
reference can still reach the data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath

import pikepdf
from pikepdf import Dictionary, Name, Object, ObjectSet, Stream, String

from gateway.errors import LimitExceeded
from gateway.kinds import Action
from gateway.models import Verdict
from gateway.pipeline.api import Mode, StageContext
from gateway.stages.pdf_actions import Loc, entries, is_dictlike

Recorder = Callable[..., None]

#: /Subtype (a MIME type) of a re-embedded file, by the extension of its new name
MIME_BY_EXT: dict[str, str] = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "dotx": "application/vnd.openxmlformats-officedocument.wordprocessingml.template",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "xltx": "application/vnd.openxmlformats-officedocument.spreadsheetml.template",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "ppsx": "application/vnd.openxmlformats-officedocument.presentationml.slideshow",
    "potx": "application/vnd.openxmlformats-officedocument.presentationml.template",
    "doc": "application/msword", "xls": "application/vnd.ms-excel",
    "ppt": "application/vnd.ms-powerpoint", "rtf": "application/rtf",
    "txt": "text/plain", "csv": "text/csv", "html": "text/html", "svg": "image/svg+xml",
    "png": "image/png", "jpg": "image/jpeg", "gif": "image/gif", "bmp": "image/bmp",
    "tif": "image/tiff", "webp": "image/webp", "zip": "application/zip",
    "eml": "message/rfc822", "xml": "application/xml",
}

_NAME_KEYS = ("/UF", "/F", "/Unix", "/DOS", "/Mac")
ATTACHMENT = "pdf.file_attachment"
_OUTSIDE = "file attachment that refers to a file outside the document"


@dataclass(frozen=True, slots=True)
class _Result:
    keep: bool        # the file stays (clean, disarmed)
    action: Action
    detail: str
    new_name: str | None = None


def text_of(obj: object) -> str | None:
    """A PDF string as text (PDFDocEncoding or UTF-16), or None for anything else."""
    if isinstance(obj, String):
        try:
            return str(obj)
        except (UnicodeDecodeError, ValueError):
            return bytes(obj).decode("latin-1")
    return None


def display_name(spec: Object, fallback: str = "") -> str:
    """The file name a file specification declares, reduced to a safe base name."""
    raw = next((t for k in _NAME_KEYS if (t := text_of(spec.get(k)))), None) or fallback
    base = PurePath(raw.replace("\\", "/")).name
    base = "".join(ch for ch in base if ch.isprintable()).strip()
    return base[:200] or "attachment.bin"


def _clear_stream(stream: Stream) -> None:
    stream.write(b"")
    for key in ("/Type", "/Subtype", "/Params"):
        if key in stream:
            del stream[key]


class EmbeddedFiles:
    """Applies the embedded-file policy; remembers what it handled."""

    def __init__(self, ctx: StageContext, record: Recorder) -> None:
        self.ctx = ctx
        self.record = record
        self.remove = ctx.option("embedded_files", "remove") == "remove"
        self.handled = ObjectSet()   # file specifications and streams dealt with
        self._done: dict[tuple[int, int], _Result] = {}
        #: file specifications whose file was removed, with why: a second reference to
        #: one (an annotation showing a file the name tree lists) goes with it
        self._removed: dict[tuple[int, int], str] = {}

    def filespec(self, spec: object, loc: Loc, kind: str, fallback: str = "", *,
                 outside: str | None = None) -> bool:
        """Apply the policy to the file embedded in ``spec``; record it under ``kind``.

        Returns False when the file was removed: the caller drops what held it
        (a name tree entry, a FileAttachment annotation, an /AF entry). A reference
        whose file is not in the document (no /EF: a path outside it) has nothing to
        open but that path: with ``outside`` (the finding's detail) it is dropped too,
        as a FileAttachment annotation always is.
        """
        if outside is None and kind == ATTACHMENT:
            outside = _OUTSIDE
        if not is_dictlike(spec):
            if outside is not None:
                self.record(kind, loc, Action.REMOVED, outside)
            return outside is None
        why = self._removed.get(spec.objgen)
        if why is not None:  # (0, 0), a direct object, is never in it
            self.record(kind, loc, Action.REMOVED, why)
            return False
        ef = spec.get("/EF")
        if ef is None:
            if outside is not None:
                self.record(kind, loc, Action.REMOVED, f"{display_name(spec, fallback)}: "
                                                       f"{outside}")
            return outside is None
        self.handled.add(spec)
        name = display_name(spec, fallback)
        streams: list[Stream] = []
        if is_dictlike(ef):
            local = ObjectSet()
            for _key, value in entries(ef):
                if isinstance(value, Stream) and local.add(value):
                    self.handled.add(value)
                    streams.append(value)
        if not streams:
            del spec["/EF"]
            return self._removed_as(spec, kind, loc, f"{name}: file entry without data")
        if self.remove:
            self._remove(spec, streams)
            return self._removed_as(spec, kind, loc,
                                    f"{name}: embedded files are removed by policy")
        results = [self._process(stream, name) for stream in streams]
        failed = next((r for r in results if not r.keep), None)
        if failed is not None:
            self._remove(spec, streams)
            return self._removed_as(spec, kind, loc, failed.detail)
        actions = {r.action for r in results}
        action = Action.DISARMED if Action.DISARMED in actions else Action.KEPT
        new_name = results[0].new_name
        if new_name is not None:
            spec["/F"] = String(new_name)
            spec["/UF"] = String(new_name)
        self.record(kind, loc, action, results[0].detail)
        return True

    def _removed_as(self, spec: Object, kind: str, loc: Loc, why: str) -> bool:
        if spec.objgen != (0, 0):
            self._removed[spec.objgen] = why
        self.record(kind, loc, Action.REMOVED, why)
        return False

    def _remove(self, spec: Object, streams: list[Stream]) -> None:
        if "/EF" in spec:
            del spec["/EF"]
        for stream in streams:
            _clear_stream(stream)

    def _process(self, stream: Stream, name: str) -> _Result:
        key = stream.objgen
        if key != (0, 0) and key in self._done:
            return self._done[key]
        result = self._recurse(stream, name)
        if key != (0, 0):
            self._done[key] = result
        return result

    def _recurse(self, stream: Stream, name: str) -> _Result:
        limit = self.ctx.policy.limits.max_size
        params = stream.get("/Params")
        declared: object = params.get("/Size") if is_dictlike(params) else None
        if isinstance(declared, int) and declared > limit:
            raise LimitExceeded(f"embedded file larger than {limit} bytes")
        try:
            data = stream.read_bytes()
        except pikepdf.PdfError:
            return _Result(False, Action.REMOVED, f"{name}: embedded data cannot be decoded")
        self.ctx.account(len(data))
        result = self.ctx.recurse(data, name)
        if self.ctx.mode is not Mode.DISARM:
            if result.verdict is Verdict.CLEAN:
                return _Result(True, Action.KEPT, f"{name}: clean")
            if result.verdict is Verdict.DISARMED:
                return _Result(True, Action.DISARMED, f"{name}: would be disarmed")
            return _Result(False, Action.REMOVED, f"{name}: {result.reason or result.verdict}")
        if not result.delivered or result.data is None:
            return _Result(False, Action.REMOVED, f"{name}: {result.reason or result.verdict}")
        self._embed(stream, result.data, result.name)
        renamed = f" as {result.name}" if result.name != name else ""
        return _Result(True, Action.DISARMED, f"{name}: disarmed{renamed}", result.name)

    @staticmethod
    def _embed(stream: Stream, data: bytes, name: str) -> None:
        old = stream.get("/Params")
        stream.write(data)
        params = Dictionary(Size=len(data))
        if is_dictlike(old):
            for key in ("/CreationDate", "/ModDate"):
                value = old.get(key)
                if isinstance(value, String):
                    params[key] = value
        stream["/Params"] = params
        mime = MIME_BY_EXT.get(PurePath(name).suffix.lower().lstrip("."))
        if mime is not None:
            stream["/Subtype"] = Name("/" + mime)
        elif "/Subtype" in stream:
            del stream["/Subtype"]
        stream["/Type"] = Name.EmbeddedFile
