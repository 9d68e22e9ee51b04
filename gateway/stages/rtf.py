"""RTF: remove embedded objects, data stores and dangerous fields, keep the rest byte for byte.

The input is tokenized (:mod:`gateway.stages.rtf_tokens`) and walked once with
an explicit group stack (no recursion; nesting deeper than ``MAX_DEPTH`` is
refused). The walk yields the findings and the byte spans to cut; the output is
the input minus those spans, so everything outside them is unchanged.

What is cut, wherever the control word appears (not only right after ``{``,
since rtfobj shows Word honours them elsewhere too):

* ``\\object`` groups -> ``rtf.object`` / ``rtf.package`` / ``rtf.equation`` /
  ``rtf.ole_link`` (class from the OLE1 header or the compound-file CLSID of
  ``\\objdata``, else ``\\*\\objclass``; ``\\objautlink``/``\\objlink`` = link).
  The object's last direct ``{\\result …}`` child is kept in its place, so the
  preview picture or text still shows.
* ``\\objdata`` outside an object (``rtf.object``), object flags outside an
  object (``\\objupdate``, ``\\objautlink``… — only the control word is cut),
  ``\\*\\datastore`` (``rtf.datastore``), ``\\*\\template`` (remote template,
  ``rtf.template``), ``\\*\\mailmerge`` (external data source, ``rtf.mail_merge``).
* ``\\field`` groups whose instruction is DDE/DDEAUTO (``rtf.dde``),
  INCLUDEPICTURE/INCLUDETEXT/INCLUDE/IMPORT/LINK/DATABASE/RD (``rtf.include_field``),
  MACROBUTTON (``rtf.macro_field``: runs a macro or Word command on a double click),
  a field type built by a nested field or an instruction holding anything we cut
  (``rtf.obfuscated_field``: cutting it would change the instruction), or HYPERLINK
  (``rtf.hyperlink``) when the policy does not keep hyperlinks or the target is not a
  web or mail address (javascript:, file:, a share or path, or computed by a nested
  field; gateway/stages/links.py): the field is replaced by its last
  ``{\\fldrslt …}`` content, so the displayed text stays. A jump to a bookmark of the
  document is no finding. Kept hyperlinks are recorded with action ``kept`` in every
  mode.
* A shape property naming a picture at a web address or on a share (``pibName``,
  ``fillBlipName``: Word loads a linked picture when the document opens)
  -> ``rtf.linked_picture``; the picture stored in the shape stays.
* Bytes after the document group closes (Word ignores them) -> ``rtf.overlay``.

A span is the whole group when the control word opens it (only ``\\*`` and
blanks before it), else from the control word to the group's end. Groups still
open at EOF end there, as in Word; the output gets the missing ``}`` appended
(``rtf.repaired``) because LibreOffice refuses such files.

Locations: ``object[i]`` / ``field[i]`` / ``fldinst[i]`` (i-th ``\\object`` /
``\\field`` / ``\\fldinst`` outside a field in document order, counting harmless
ones), ``objdata[i]``, ``objflag[i]``, ``datastore[i]``, ``template[i]``,
``mailmerge[i]``, ``overlay``, ``document``; details end with the byte offset.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import BinaryIO, ClassVar

from gateway.errors import LimitExceeded, Malformed
from gateway.kinds import Action
from gateway.pipeline import registry
from gateway.pipeline.api import StageContext
from gateway.pipeline.sniff import rtf_start
from gateway.stages import rtf_tokens as rt
from gateway.stages.links import is_elsewhere
from gateway.stages.rtf_classify import (
    FieldText,
    ObjectData,
    classify_field,
    classify_object,
)

MAX_DEPTH = 10_000
MAX_PER_LOCATION = 500        # findings per location prefix; the rest are summed up in one
MAX_FINDINGS = 100_000        # more is a resource attack, not a document
_BLANK = b" \t\r\n"
#: what may follow the document without being an overlay: blanks, NULs, an end-of-file
#: mark, and closing braces (latex2rtf writes one too many: every one of its documents
#: was "disarmed" for it)
_OVERLAY_OK = b" \t\r\n\x00\x1a}"
_OBJ_FLAGS = frozenset({b"objemb", b"objlink", b"objautlink", b"objsub", b"objpub",
                        b"objicemb", b"objhtml", b"objocx", b"objupdate"})
_GROUPS = {b"datastore": ("rtf.datastore", "datastore", "data store"),
           b"template": ("rtf.template", "template", "attached template"),
           b"mailmerge": ("rtf.mail_merge", "mailmerge", "mail merge data source")}
_READ = frozenset({b"fldinst", b"objclass"})  # \* destinations whose text we read
#: \* destinations inside an instruction that no reader takes as its text: Word's
#: binary field data (the hyperlink object behind every HYPERLINK it writes)
_NOT_TEXT = frozenset({b"datafield"})
_WATCH = frozenset({b"object", b"objdata", b"objclass", b"field", b"fldinst", b"result",
                    b"fldrslt", *_OBJ_FLAGS, *_GROUPS})
# Plain content: text, hex escapes, control symbols and control words other than the
# watched ones, \bin and \uc (any case), ending with text. Where the walk reads nothing
# (not at a group's head, no field instruction, object data or class being read), such a
# stretch changes nothing but "the last token was text", so the tokenizer passes over it
# as one RUN token. Each alternative matches exactly one token of rt.tokens, parameter
# and delimiter included (a name over 32 letters or a parameter over 200 digits, which
# Word may cut, ends the stretch instead), so the stretch ends on a token boundary and
# with a text token; group 1 is the control tokens after its last text (rt.tokens).
# Possessive quantifiers: nothing is ever given back, so the scan is linear. A Japanese
# document is mostly \uN? pairs, two tokens per character: this is where its time went.
_UNWATCHED = b"|".join(sorted({*_WATCH, b"bin", b"uc"}))
_CONTROL = (rb"\\u(?!-?[0-9]{201})-?[0-9]{1,200} ?"                  # \uN, the most common
            rb"|\\'[0-9A-Fa-f]{2}"                                     # hex escape
            rb"|\\[^A-Za-z']"                                          # control symbol
            rb"|\\(?!(?i:" + _UNWATCHED + rb")(?![A-Za-z]))"           # control word
            rb"[A-Za-z]{1,32}(?![A-Za-z])(?!-?[0-9]{201})(?:-?[0-9]{1,200})? ?")
_RUN = re.compile(rb"(?:(?:" + _CONTROL + rb")*+[^\\{}]++)*+((?:" + _CONTROL + rb")*+)", re.S)


#: a shape property naming a picture file: {\sp{\sn pibName}{\sv value}}
_LINKED_PICTURE = re.compile(rb"\{\\sp\s*\{\\sn\s+(pibName|fillBlipName|pibPrintName)\s*\}"
                             rb"\s*\{\\sv\s?((?:[^{}\\]|\\[^{}])*)\}\s*\}")


def _rtf_text(raw: bytes) -> str:
    """RTF text with its escapes read: \\\\, \\{ and \\} as themselves, \\'hh as a byte."""
    out = re.sub(rb"\\'([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), raw)
    out = re.sub(rb"\\([\\{}])", rb"\1", out)
    return out.decode("latin-1")


class _Span:
    """Bytes to cut: a whole group (head) or a group's tail, minus a kept child's content."""

    __slots__ = ("closed", "end", "head", "keep", "start")

    def __init__(self, start: int, head: bool) -> None:
        self.start, self.head = start, head
        self.end, self.closed = -1, False
        self.keep: tuple[int, int] | None = None

    def cuts(self) -> list[tuple[int, int]]:
        if self.keep is None:
            return [(self.start, self.end + 1 if (self.head and self.closed) else self.end)]
        ks, ke = self.keep
        return [(self.start + 1 if self.head else self.start, ks), (ke, self.end)]


@dataclass(slots=True, eq=False)
class _Hit:
    kind: str
    location: str
    action: str
    detail: str
    pos: int


@dataclass(slots=True, eq=False)
class _Object:
    hit: _Hit
    span: _Span
    classes: list[str] = field(default_factory=list)
    flags: set[bytes] = field(default_factory=set)
    hexes: list[ObjectData] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class _Field:
    index: int
    pos: int
    span: _Span
    insts: list[FieldText] = field(default_factory=list)


class _Frame:
    __slots__ = ("at_head", "cls", "field", "fld", "glue", "hex", "hidden", "inst", "kept", "obj",
                 "object", "orphan", "own", "parent", "star", "start", "uc")

    def __init__(self, start: int, parent: _Frame | None) -> None:
        self.start, self.parent = start, parent
        self.at_head, self.star, self.glue = True, False, False
        # inherited reading state
        self.obj: _Object | None = parent.obj if parent else None       # nearest object
        self.fld: _Field | None = parent.fld if parent else None        # nearest field
        self.inst: FieldText | None = parent.inst if parent else None   # instruction read
        self.hex: ObjectData | None = parent.hex if parent else None    # object data read
        self.cls: list[str] | None = parent.cls if parent else None     # \objclass read
        self.hidden: bool = parent.hidden if parent else False          # ignored by Word
        self.uc: int = parent.uc if parent else 1
        # what this group anchors
        self.object: _Object | None = None
        self.field: _Field | None = None
        self.orphan: list[tuple[FieldText, _Span, int, int]] = []  # \fldinst outside fields
        self.kept: _Span | None = None   # this group's content is kept by that span
        self.own: list[tuple[_Span, _Hit, ObjectData | None]] = []  # data stores, \objdata…


class Analysis:
    """One pass over an RTF document: the findings and the byte spans to cut."""

    def __init__(self, data: bytes, keep_links: bool, *, runs: bool = True) -> None:
        """``runs=False``: every token through the walk (tests compare the two)."""
        if not data.startswith(b"{"):
            raise Malformed("not an RTF document (it does not start with '{')")
        self.data, self.keep_links = data, keep_links
        self.hits: list[_Hit] = []
        self.spans: list[_Span] = []
        self.bare_before: set[int] = set()   # cut starts right after an undelimited word
        self._bare = False
        self.counts: Counter[str] = Counter()
        self.unclosed: list[int] = []        # groups still open at EOF (their "{" offsets)
        self.tail: list[tuple[int, int]] = []  # from a \bin running past the end to EOF
        self._walk(runs)
        cuts = rt.merge([c for span in self.spans for c in span.cuts()] + self.tail)
        self.cuts = rt.merge(cuts + self._linked_pictures(cuts))
        self.missing = rt.count_uncut(self.unclosed, self.cuts)  # Word closes them, others don't

    # ------------------------------------------------------------------- walk

    def _walk(self, runs: bool) -> None:
        data = self.data
        stack: list[_Frame] = []
        frame: _Frame | None = None
        bare = False   # the previous token is a control word without its delimiter
        skip = 0       # \uN fallback characters still to skip (Word reading of fields)
        tok = rt.Token(rt.TEXT, 0, 0)

        def plain() -> bool:
            """Whether the walk has no use for the tokens of plain content here (_RUN):
            not at a group's head, no field instruction, object data or class read."""
            return frame is not None and not frame.at_head and frame.inst is None \
                and frame.hex is None and frame.cls is None

        for tok in rt.tokens(data, _RUN if runs else None, plain):
            kind = tok.type
            if kind == rt.RUN:  # plain content passed over: the state after a text token
                bare, skip = False, 0
                continue
            if kind == rt.OPEN:
                if frame is not None:
                    frame.at_head = False
                if len(stack) >= MAX_DEPTH:
                    raise LimitExceeded(f"RTF groups nested deeper than {MAX_DEPTH}")
                frame = _Frame(tok.start, frame)
                frame.glue = bare
                stack.append(frame)
                bare, skip = False, 0
                continue
            assert frame is not None
            if kind == rt.CLOSE:
                self._close(stack.pop(), tok.start, closed=True)
                bare, skip = False, 0
                if not stack:
                    self._overlay(tok.end)
                    return
                frame = stack[-1]
            elif kind == rt.TEXT:
                chunk = data[tok.start:tok.end]
                if frame.at_head and not chunk.strip(_BLANK):
                    continue
                frame.at_head = bare = False
                if frame.hex is not None:
                    frame.hex.text(chunk)
                if frame.cls is not None:
                    frame.cls.append(chunk.decode("latin-1"))
                if frame.inst is not None:
                    text = chunk.decode("latin-1").replace("\r", "").replace("\n", "")
                    frame.inst.add(text, not frame.hidden, skip)
                    skip = max(skip - len(text), 0)
                else:
                    skip = 0
            elif kind == rt.BIN:
                if tok.name == b"short":
                    self._short_bin(tok)
                frame.at_head = bare = False
                if frame.hex is not None:
                    frame.hex.binary(data[tok.start:tok.end])
                skip = max(skip - 1, 0)
            elif kind == rt.SYMBOL:
                bare = False
                if tok.name == b"*" and frame.at_head:
                    frame.star = True
                    continue
                frame.at_head = False
                if tok.name == b"'" and frame.hex is not None:
                    frame.hex.quote()
                if frame.inst is not None:
                    frame.inst.add(rt.symbol_text(tok), not frame.hidden, skip)
                skip = max(skip - 1, 0)
            else:
                head, frame.at_head = frame.at_head, False
                if head and frame.star and tok.name not in _READ:
                    frame.hidden = True
                    if tok.name.lower() in _NOT_TEXT:
                        frame.inst = None
                if (name := tok.name.lower()) in _WATCH:  # \OBJECT too: no false hits
                    self._word(frame, tok, name, head, bare)
                if tok.name == b"u":
                    if frame.inst is not None and not frame.hidden:
                        frame.inst.word(rt.unicode_char(tok.param))
                    skip = frame.uc
                else:
                    if tok.name == b"uc" and tok.param is not None and tok.param >= 0:
                        frame.uc = tok.param
                    elif frame.inst is not None:
                        frame.inst.add(rt.word_text(tok.name), not frame.hidden, skip)
                    skip = max(skip - 1, 0)
                bare = tok.bare and not (tok.name == b"bin" and (tok.param or 0) > 0)
        self.unclosed = [f.start for f in stack]
        if tok.type == rt.SYMBOL and tok.end - tok.start < (4 if tok.name == b"'" else 2):
            span = _Span(tok.start, False)  # "\" or "\'h" cut short by EOF: it would
            span.end = len(data)             # escape the braces we add
            self.spans.append(span)
        while stack:  # missing closing braces: the groups end at EOF, as in Word
            self._close(stack.pop(), len(data), closed=False)

    def _short_bin(self, tok: rt.Token) -> None:
        """A \\binN claiming more bytes than are left: whether a reader takes the rest as
        data or goes on reading RTF in it differs, so the word and the rest go."""
        start = self.data.rfind(b"\\bin", 0, tok.start)
        self.tail.append((start, len(self.data)))
        self.hits.append(_Hit("rtf.repaired", "document", Action.REPAIRED,
                              f"\\bin claims {tok.param} bytes, {tok.end - tok.start} "
                              "are left: it and the rest of the file removed",
                              start))

    def _word(self, frame: _Frame, tok: rt.Token, name: bytes, head: bool, bare: bool) -> None:
        pos = tok.start
        if frame.inst is not None and (name in _GROUPS or (
                frame.obj is None and (name == b"objdata" or name in _OBJ_FLAGS))
                or name == b"object"):
            frame.inst.tainted = True  # a cut inside an instruction would change its text
        self._bare = bare
        if name == b"object":
            if frame.object is None:
                hit = self._hit("rtf.object", "object", Action.REMOVED, "", pos)
                frame.object = frame.obj = _Object(hit, self._span(frame, pos, head))
                frame.hex = frame.cls = None
        elif name == b"objdata":
            hexdata = ObjectData()
            if frame.obj is not None:
                frame.obj.hexes.append(hexdata)
            else:
                hit = self._hit("rtf.object", "objdata", Action.REMOVED, "", pos)
                frame.own.append((self._span(frame, pos, head), hit, hexdata))
            frame.hex = hexdata
        elif name == b"objclass":
            if frame.obj is not None:
                frame.cls = frame.obj.classes
        elif name in _OBJ_FLAGS:
            if frame.obj is not None:
                frame.obj.flags.add(name)
            else:  # outside an object only the control word goes
                span = self._span(frame, pos, False)
                span.end = tok.end
                self.spans.append(span)
                kind = "rtf.ole_link" if name in (b"objautlink", b"objlink") else "rtf.object"
                self._hit(kind, "objflag", Action.REMOVED,
                          f"\\{name.decode()} outside an object group", pos)
        elif name in _GROUPS:
            kind, prefix, what = _GROUPS[name]
            hit = self._hit(kind, prefix, Action.REMOVED, what, pos)
            frame.own.append((self._span(frame, pos, head), hit, None))
        elif name == b"field":
            if frame.field is None:
                if frame.inst is not None:
                    frame.inst.nested()
                frame.field = frame.fld = _Field(self._index("field"), pos,
                                                 self._span(frame, pos, head))
                frame.inst = None
        elif name == b"fldinst":
            inst = FieldText()
            frame.inst = inst
            if frame.fld is not None:
                frame.fld.insts.append(inst)
            else:
                frame.orphan.append((inst, self._span(frame, pos, head), pos,
                                     self._index("fldinst")))
        elif head and (parent := frame.parent) is not None:
            if name == b"result" and parent.object is not None:
                frame.kept = parent.object.span
                frame.obj = frame.hex = frame.cls = None
            elif name == b"fldrslt" and parent.field is not None:
                frame.kept = parent.field.span
                frame.fld = frame.inst = None
            if frame.kept is not None:
                frame.kept.keep = (tok.end, -1)

    def _push(self, hit: _Hit) -> None:
        if len(self.hits) >= MAX_FINDINGS:
            raise LimitExceeded(f"more than {MAX_FINDINGS} objects, fields or links to remove")
        self.hits.append(hit)

    def _span(self, frame: _Frame, pos: int, head: bool) -> _Span:
        """A span starting at the group (head) or at the control word at ``pos``; notes
        whether it starts right after a word without delimiter (see rt.splice)."""
        if head:
            if frame.glue:
                self.bare_before.add(frame.start)
            return _Span(frame.start, True)
        if self._bare:
            self.bare_before.add(pos)
        return _Span(pos, False)

    def _index(self, prefix: str) -> int:
        index = self.counts[prefix]
        self.counts[prefix] += 1
        return index

    def _linked_pictures(self, cuts: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """Shape properties naming a picture on another host ({\\sp{\\sn pibName}{\\sv
        \\\\host\\share\\a.png}}: a web address or a share): Word loads it when the
        document opens, from a web address or a share, which hands the reader's
        Windows credentials to that host. Found by a probe beside LibreOffice's RTF
        test documents. The property goes; the picture stored in the shape stays."""
        found: list[tuple[int, int]] = []
        inside = rt.cut_test(cuts)
        for m in _LINKED_PICTURE.finditer(self.data):
            if inside(m.start()):
                continue   # inside something already cut (an object, a data store)
            value = _rtf_text(m.group(2)).strip()
            if not is_elsewhere(value):
                continue   # a file name, or a local path: nothing fetched from elsewhere
            self._hit("rtf.linked_picture", "picture", Action.REMOVED,
                      f"{m.group(1).decode()} {value[:100]!r}", m.start())
            found.append((m.start(), m.end()))
        return found

    def _hit(self, kind: str, prefix: str, action: str, detail: str, pos: int) -> _Hit:
        hit = _Hit(kind, f"{prefix}[{self._index(prefix)}]", action, detail, pos)
        self._push(hit)
        return hit

    # ------------------------------------------------------------------ close

    def _close(self, frame: _Frame, end: int, closed: bool) -> None:
        if frame.kept is not None and frame.kept.keep is not None:
            frame.kept.keep = (frame.kept.keep[0], end)
        for span, hit, hexdata in frame.own:
            self._finish(span, end, closed)
            if hexdata is not None:
                info = classify_object(hexdata.decoded(), hexdata.count // 2, [], set())
                hit.kind = info.kind
                hit.detail = f"object data outside an object group; {info.detail}"
        if frame.object is not None:
            obj = frame.object
            self._finish(obj.span, end, closed)
            data = b"".join(h.decoded() for h in obj.hexes[:1])
            size = sum(h.count // 2 for h in obj.hexes)
            info = classify_object(data, size, obj.classes, obj.flags)
            kept = "; result kept" if obj.span.keep else ""
            obj.hit.kind, obj.hit.detail = info.kind, info.detail + kept
        for inst, span, pos, index in frame.orphan:
            verdict = classify_field([inst])
            if verdict is not None and verdict.kind != "rtf.hyperlink":
                self._finish(span, end, closed)
                self._push(_Hit(verdict.kind, f"fldinst[{index}]", Action.REMOVED,
                                      f"{verdict.detail} outside a field", pos))
        if frame.field is not None:
            self._field(frame.field, end, closed)

    def _field(self, fld: _Field, end: int, closed: bool) -> None:
        verdict = classify_field(fld.insts)
        if verdict is None:
            return
        if verdict.keepable and self.keep_links:
            action, detail = Action.KEPT, verdict.detail
        else:
            self._finish(fld.span, end, closed)
            if fld.span.keep is not None:
                action, detail = Action.NEUTRALIZED, verdict.detail + "; result text kept"
            else:
                action, detail = Action.REMOVED, verdict.detail + "; no result"
        hit = _Hit(verdict.kind, f"field[{fld.index}]", action, detail, fld.pos)
        self._push(hit)

    def _finish(self, span: _Span, end: int, closed: bool) -> None:
        span.end, span.closed = end, closed
        if span.keep is not None and span.keep[1] < 0:
            span.keep = None  # the kept group never closed inside this one
        self.spans.append(span)

    def _overlay(self, end: int) -> None:
        rest = self.data[end:]
        if rest.strip(_OVERLAY_OK):
            span = _Span(end, False)
            span.end = len(self.data)
            self.spans.append(span)
            self._push(_Hit("rtf.overlay", "overlay", Action.REMOVED,
                                  f"{len(rest)} bytes after the end of the document", end))

    # ----------------------------------------------------------------- output

    def findings(self) -> list[_Hit]:
        """Hits in document order; past MAX_PER_LOCATION per prefix, one summary each."""
        out: list[_Hit] = []
        extra: dict[tuple[str, str, str], list[_Hit]] = {}
        for hit in sorted(self.hits, key=lambda h: h.pos):
            prefix, _, rest = hit.location.partition("[")
            if rest and int(rest.rstrip("]")) >= MAX_PER_LOCATION:
                extra.setdefault((hit.kind, prefix, hit.action), []).append(hit)
            else:
                out.append(hit)
        for (kind, prefix, action), more in extra.items():
            out.append(_Hit(kind, f"{prefix}[{MAX_PER_LOCATION}+]", action,
                            f"{len(more)} more like {prefix}[0]", more[0].pos))
        if self.missing:
            out.append(_Hit("rtf.repaired", "document", Action.REPAIRED,
                            f"{self.missing} missing closing braces added", len(self.data)))
        return out

    def output(self) -> bytes:
        """The input minus every cut, with the missing closing braces added."""
        return rt.splice(self.data, self.cuts, self.bare_before) + b"}" * self.missing

    def record(self, ctx: StageContext) -> None:
        for hit in self.findings():
            ctx.record(hit.kind, hit.location, action=hit.action,
                       detail=f"{hit.detail} at byte {hit.pos}")


class RtfStage:
    name: ClassVar[str] = "rtf"
    formats: ClassVar[frozenset[str]] = frozenset({"rtf"})

    def scan(self, src: BinaryIO, ctx: StageContext) -> None:
        Analysis(_document(src.read(), ctx), ctx.keeps("hyperlinks")).record(ctx)

    def disarm(self, src: BinaryIO, dst: BinaryIO, ctx: StageContext) -> None:
        analysis = Analysis(_document(src.read(), ctx), ctx.keeps("hyperlinks"))
        analysis.record(ctx)
        dst.write(analysis.output())


def _document(data: bytes, ctx: StageContext) -> bytes:
    """The document from its "{": a UTF-8 byte order mark or blank lines before it go
    (the sniffer reads such a file as RTF), so the output is an RTF every reader opens."""
    start = rtf_start(data)
    if start:
        ctx.record("rtf.repaired", "", action=Action.REPAIRED,
                   detail=f"{start} byte(s) before the document's start removed (a byte "
                          "order mark, blank lines)")
        return data[start:]
    return data


registry.register(RtfStage())
