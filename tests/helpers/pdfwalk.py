"""An independent checker for active content left in a PDF.

Deliberately written without any gateway code: it walks EVERY object of the file
(``pdf.objects``, plus the trailer) and every direct object inside each, and flags
anything that can act: scripts, automatic actions, launch/submit/import actions,
remote and embedded go-tos, media, embedded files, XFA, and links (unless kept).

Embedded files may be allowed (they are re-embedded after disarming); PDFs among
them are then checked recursively with the same rules.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field

import pikepdf
from pikepdf import Array, Dictionary, Name, Stream

SAFE_NAMED = {"/NextPage", "/PrevPage", "/FirstPage", "/LastPage"}
BAD_ACTIONS = {
    "/JavaScript", "/Launch", "/SubmitForm", "/ResetForm", "/ImportData", "/GoToR", "/GoToE",
    "/GoToDp", "/Sound", "/Movie", "/Rendition", "/Hide", "/SetOCGState", "/GoTo3DView",
    "/Trans", "/Thread", "/RichMediaExecute", "/NOP", "/SetState",
}
BAD_ANNOTS = {"/RichMedia", "/Screen", "/Movie", "/Sound", "/3D"}
BAD_KEYS = {"/JS", "/XFA", "/RichMediaContent", "/RichMediaSettings", "/3DD"}
#: looked for in the raw text of objects with keys pikepdf cannot read
ACTIVE_TOKEN = re.compile(rb"/(?:JS|JavaScript|Launch|SubmitForm|ImportData|GoToR|GoToE)(?![\w#])")


def name(obj: object) -> str:
    """A name as text; names that are not UTF-8 come out as '?'."""
    try:
        return str(obj)
    except UnicodeError:
        return "?"


def entries(obj: Dictionary | Stream) -> tuple[list[tuple[str, object]], bool]:
    """Readable (key, value) pairs, and whether some key could not be read."""
    out, unreadable = [], False
    for key in list(obj.keys()):
        try:
            out.append((key, obj.get(key)))
        except (TypeError, UnicodeError):
            unreadable = True
    return out, unreadable


@dataclass
class Problem:
    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


@dataclass
class Checker:
    keep_uri: bool = False
    allow_embedded: bool = False
    problems: list[Problem] = field(default_factory=list)

    def flag(self, where: str, what: str) -> None:
        self.problems.append(Problem(where, what))

    # ------------------------------------------------------------------ actions

    def action_ok(self, action: object, *, clicked: bool) -> str | None:
        """None if ``action`` (and its /Next chain) is harmless, else why not."""
        seen: set[tuple[int, int]] = set()
        todo = [action]
        steps = 0
        while todo:
            steps += 1
            if steps > 10000:
                return "action chain too long"
            a = todo.pop()
            if isinstance(a, Array):
                todo.extend(a)
                continue
            if not isinstance(a, Dictionary | Stream):
                return "non-dictionary action"
            if not a.keys():
                continue  # an empty dictionary does nothing
            if a.is_indirect:
                if a.objgen in seen:
                    continue
                seen.add(a.objgen)
            s = a.get("/S")
            if "/JS" in a:
                return "action with /JS"
            if s == Name.GoTo:
                pass
            elif s == Name.Named:
                if name(a.get("/N")) not in SAFE_NAMED:
                    return f"named action {name(a.get('/N'))}"
            elif s == Name.URI:
                if not (clicked and self.keep_uri):
                    return "URI action"
            else:
                return f"action {name(s)}"
            nxt = a.get("/Next")
            if nxt is not None:
                todo.append(nxt)
        return None

    def check_dict(self, d: Dictionary | Stream, where: str) -> None:
        for key in BAD_KEYS:
            if key in d:
                self.flag(where, f"key {key}")
        s = d.get("/S")
        if isinstance(s, Name) and name(s) in BAD_ACTIONS:
            self.flag(where, f"action type {name(s)}")
        if s == Name.URI and not self.keep_uri:
            self.flag(where, "URI action")
        if s == Name.Named and name(d.get("/N")) not in SAFE_NAMED:
            self.flag(where, f"named action {name(d.get('/N'))}")
        if d.get("/Type") == Name.Navigator or "/Navigator" in d:  # a portfolio's Flash
            self.flag(where, "portfolio navigator")
        if "/OpenAction" in d:  # even a plain destination: nothing may run on open
            self.flag(where, "/OpenAction")
        if "/FontMatrix" in d:  # PDF.js compiled its entries into code (CVE-2024-4367)
            matrix = d.get("/FontMatrix")
            if not isinstance(matrix, Array) or len(matrix) != 6 or any(
                    isinstance(x, (pikepdf.Object, bool)) for x in matrix):
                self.flag(where, "/FontMatrix that is not six numbers")
        if "/AA" in d:
            aa = d.get("/AA")
            if not isinstance(aa, Dictionary):
                self.flag(where, "/AA that is not a dictionary")
            else:
                events, unreadable = entries(aa)
                if unreadable:
                    self.flag(where, "/AA with an unreadable entry")
                for event, action in events:
                    why = self.action_ok(action, clicked=False)
                    if why:
                        self.flag(where, f"/AA {event}: {why}")
        for key in ("/A", "/PA"):
            value = d.get(key)
            if isinstance(value, Dictionary) and "/S" in value:
                why = self.action_ok(value, clicked=True)
                if why:
                    self.flag(where, f"{key}: {why}")
        subtype = d.get("/Subtype")
        if isinstance(subtype, Name) and name(subtype) in BAD_ANNOTS and (
                "/Rect" in d or d.get("/Type") == Name.Annot):
            self.flag(where, f"annotation {name(subtype)}")
        names = d.get("/Names")
        if isinstance(names, Dictionary):
            if "/JavaScript" in names:
                self.flag(where, "/Names /JavaScript")
            if "/EmbeddedFiles" in names and not self.allow_embedded:
                self.flag(where, "/Names /EmbeddedFiles")
        if not self.allow_embedded:
            if "/EF" in d:
                self.flag(where, "/EF")
            if subtype == Name.FileAttachment:
                self.flag(where, "FileAttachment annotation")
            if d.get("/Type") == Name.EmbeddedFile:
                self.flag(where, "/EmbeddedFile stream")
        elif isinstance(d, Stream) and d.get("/Type") == Name.EmbeddedFile:
            self.check_embedded(d, where)

    def check_embedded(self, stream: Stream, where: str) -> None:
        data = stream.read_bytes()
        if data[:1024].find(b"%PDF-") < 0:
            return
        inner = Checker(keep_uri=self.keep_uri, allow_embedded=True)
        with pikepdf.open(io.BytesIO(data)) as pdf:
            inner.walk(pdf)
        self.problems.extend(Problem(f"{where}>{p.where}", p.what) for p in inner.problems)

    # --------------------------------------------------------------------- walk

    def walk_object(self, obj: object, where: str) -> None:
        todo = [(obj, where)]
        while todo:
            o, w = todo.pop()
            if isinstance(o, Dictionary | Stream):
                self.check_dict(o, w)
                if isinstance(o, Stream) and "/F" in o.stream_dict:
                    self.flag(w, "stream data in another file (/F)")
                pairs, unreadable = entries(o)
                if unreadable:
                    text = (o.stream_dict if isinstance(o, Stream) else o).unparse(resolved=True)
                    if ACTIVE_TOKEN.search(re.sub(rb"\((?:[^\\)]|\\.)*\)", b"()", text)):
                        self.flag(w, "unreadable key in an object with active-looking content")
                for k, v in pairs:
                    if isinstance(v, Dictionary | Array) and not v.is_indirect:
                        todo.append((v, f"{w}{k}"))
            elif isinstance(o, Array):
                for i, v in enumerate(o):
                    if isinstance(v, Dictionary | Array) and not v.is_indirect:
                        todo.append((v, f"{w}[{i}]"))

    def walk(self, pdf: pikepdf.Pdf) -> list[Problem]:
        self.walk_object(pdf.trailer, "trailer")
        for obj in pdf.objects:
            if isinstance(obj, Dictionary | Stream | Array):
                self.walk_object(obj, f"obj{obj.objgen}")
        # name trees resolved as a viewer would see them
        names = pdf.Root.get("/Names")
        if isinstance(names, Dictionary) and "/JavaScript" in names:
            self.flag("/Root/Names", "JavaScript name tree")
        return self.problems


def check(path_or_bytes: str | bytes, *, keep_uri: bool = False,
          allow_embedded: bool = False) -> list[Problem]:
    """Every active thing left in a PDF (an empty list for a clean one)."""
    src = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    with pikepdf.open(src) as pdf:
        return Checker(keep_uri=keep_uri, allow_embedded=allow_embedded).walk(pdf)
