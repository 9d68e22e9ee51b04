"""Phase 2 of the PDF stage: a generic sweep of every object reachable from the trailer.

Phase 1 knows where actions normally live; this pass finds them anywhere else.
It also puts right a font's /FontMatrix that is not six numbers: PDF.js before
4.2.67 (Firefox's viewer) pasted its entries into code it compiled, so a string in
it ran as script (CVE-2024-4367). It becomes [0.001 0 0 0.001 0 0], the matrix of
every font but Type 3 (``pdf.font_matrix``). And a stream whose data lives in
another file (/F: an external stream, ISO 32000-1 7.3.8; a path on a share is fetched
by the readers that support them) loses /F, /FFilter and /FDecodeParms and keeps its
own data (``pdf.external_stream``).
It walks the object graph breadth-first from the trailer without building
Python objects for the contents: each object is unparsed by qpdf (names come out
decoded and normalized, so ``/J#61vaScript`` reads ``/JavaScript``), its strings
are blanked, references are collected with a regular expression, and only
objects whose text holds a suspicious name are inspected in Python.

The same walk, before any change, tells which objects are unreachable from the
trailer: old revisions and hidden data that the rebuilt file drops (``pdf.orphans``).

An object found here is located by its structural path from phase 1 when it has
one, else by the first reference that led to it (breadth-first, keys in sorted
order) appended to its parent's path.
"""

from __future__ import annotations

import re
from collections import deque
from decimal import Decimal

from pikepdf import Array, Object, Pdf, Stream

from gateway.stages.pdf_actions import (
    MEDIA_ANNOTS,
    Loc,
    Trigger,
    classify,
    entries,
    is_dictlike,
    is_known_bad,
    name_of,
    split_entries,
)
from gateway.stages.pdf_salvage import value_end
from gateway.stages.pdf_walk import Walk, clear

ObjGen = tuple[int, int]
_RANK = {Trigger.USER: 0, Trigger.EVENT: 1, Trigger.OPEN: 2}

_STRING = re.compile(rb"\((?:[^\\)]|\\.)*\)", re.DOTALL)
_REF = re.compile(rb"(?<![\w.+-])(\d+) (\d+) R(?!\w)")
#: names that make any object worth a look
_SUSPECT = re.compile(
    rb"/(?:JS|JavaScript|XFA|EF|AF|EmbeddedFile|RichMedia\w*|3DD|3D|Screen"
    rb"|Movie|Sound|FileAttachment|Launch|SubmitForm|ResetForm|ImportData|GoToR|GoToE|GoToDp"
    rb"|GoTo3DView|Rendition|Hide|SetOCGState|Thread|NOP|SetState|S /Trans)"
    rb"(?=[\s/\[\]<>()]|$)")
#: names that are harmless where phase 1 already cleaned the action slots (link
#: annotations with kept web links, standard named actions): a look only elsewhere
_SOFT = re.compile(rb"/(?:AA|Trans|Named|URI|Action)(?=[\s/\[\]<>()]|$)")
_SOFT_SETTLED = re.compile(rb"/(?:AA|Trans|Action)(?=[\s/\[\]<>()]|$)")
_SOFT_SETTLED_NO_LINKS = re.compile(rb"/(?:AA|Trans|Action|URI)(?=[\s/\[\]<>()]|$)")
#: a named action that is not one of the four page moves
_BAD_NAMED = re.compile(
    rb"/N /(?!(?:NextPage|PrevPage|FirstPage|LastPage)(?=[\s/\[\]<>()]))")
_SCRIPT = re.compile(rb"/(?:JS|JavaScript|Launch|SubmitForm|ImportData|GoToR|GoToE"
                     rb"|RichMediaExecute)(?=[\s/\[\]<>()]|$)")
#: an action slot holding a direct dictionary (struct element attributes use /A too)
_DIRECT_SLOT = re.compile(rb"/(?:A|PA|OpenAction|Next|AA) <<")
#: inside a direct action slot: an action that is not plain navigation
_BAD_ACTION = re.compile(
    rb"/S (?!/(?:GoTo|URI|Named)(?=[\s/\[\]<>()]))"
    rb"|/N /(?!(?:NextPage|PrevPage|FirstPage|LastPage)(?=[\s/\[\]<>()]))")
#: an action slot referring to an indirect action
_SLOT_REF = re.compile(rb"/(A|PA|OpenAction|Next) (\d+) (\d+) R(?!\w)")
_NEXT_ARRAY = re.compile(rb"/Next \[([^\]]*)\]")
#: a /FontMatrix that is a direct array of six numbers (one that is not: a string, blanked
#: to "()", a name, a reference, another count, makes the counts differ)
_NUMERIC_MATRIX = re.compile(rb"/FontMatrix \[ ?(?:[-+]?(?:\d+\.?\d*|\.\d+) ?){6}\]")
_MEDIA_KEYS = ("/RichMediaContent", "/RichMediaSettings", "/3DD")
#: structural objects that are never referenced from the trailer
_STRUCTURAL_TYPES = frozenset({"ObjStm", "XRef"})


def _text(obj: Object) -> bytes:
    raw = obj.stream_dict.unparse(resolved=True) if isinstance(obj, Stream) \
        else obj.unparse(resolved=True)
    return _STRING.sub(b"()", raw) if b"(" in raw else raw


class Graph:
    """Breadth-first reachability from the trailer, with the first parent of each object."""

    def __init__(self, pdf: Pdf, *, suspects: bool, settled: frozenset[ObjGen] = frozenset(),
                 keep_links: bool = True) -> None:
        self.pdf = pdf
        self.keep_links = keep_links
        self.parent: dict[ObjGen, ObjGen | None] = {}
        self.suspects: list[ObjGen] = []
        self.streams: list[ObjGen] = []
        #: objects holding a font matrix that is not six numbers
        self.fonts: list[ObjGen] = []
        #: streams whose data is said to be in another file
        self.external: list[ObjGen] = []
        #: objects an action slot refers to, with the slot's trigger
        self.targets: dict[ObjGen, Trigger] = {}
        #: objects whose only suspect names may come from action slots phase 1 cleaned
        self.light: set[ObjGen] = set()
        self._refs: dict[ObjGen | None, dict[ObjGen, Loc]] = {}
        self._located: dict[ObjGen, Loc] = {}
        encrypt = pdf.trailer.get("/Encrypt")
        self.encrypt = encrypt.objgen if isinstance(encrypt, Object) else (0, 0)
        queue: deque[ObjGen] = deque()
        text = _text(pdf.trailer)
        self.trailer_suspect = suspects and (self._suspect(text) or bool(_SOFT.search(text)))
        self._visit(text, None, queue)
        typed: dict[ObjGen, bool] = {}   # objects with a /S or /JS: is it a stream?
        soft_settled = _SOFT_SETTLED if keep_links else _SOFT_SETTLED_NO_LINKS
        found: set[ObjGen] = set()
        while queue:
            og = queue.popleft()
            obj: object = pdf.get_object(og)
            if not isinstance(obj, Object):
                continue
            text = _text(obj)
            if suspects:
                hard = self._suspect(text)
                settle = og in settled
                soft = (soft_settled if settle else _SOFT).search(text)
                if hard or soft:
                    found.add(og)
                    (self.streams if isinstance(obj, Stream) else self.suspects).append(og)
                    if not hard and settle:
                        self.light.add(og)
                elif b"/S " in text or b"/JS " in text:
                    typed[og] = isinstance(obj, Stream)
                matrices = text.count(b"/FontMatrix")
                if matrices and matrices != len(_NUMERIC_MATRIX.findall(text)):
                    self.fonts.append(og)
                if isinstance(obj, Stream) and b"/F " in text and "/F" in obj.stream_dict:
                    self.external.append(og)
            self._visit(text, og, queue)
        # a typed dictionary an action slot refers to is an action, wherever it hangs
        for og in self.targets:
            if og in typed and og not in found:
                (self.streams if typed[og] else self.suspects).append(og)

    def _target(self, og: ObjGen, trigger: Trigger) -> None:
        if _RANK[trigger] > _RANK[self.targets.get(og, Trigger.USER)] or og not in self.targets:
            self.targets[og] = trigger

    def _suspect(self, text: bytes) -> bool:
        """Whether ``text`` needs a full look; notes the objects action slots refer to."""
        for m in _SLOT_REF.finditer(text):
            trigger = Trigger.OPEN if m.group(1) == b"OpenAction" else Trigger.USER
            self._target((int(m.group(2)), int(m.group(3))), trigger)
        for m in _NEXT_ARRAY.finditer(text):
            for r in _REF.finditer(m.group(1)):
                self._target((int(r.group(1)), int(r.group(2))), Trigger.USER)
        bad = False
        for m in _DIRECT_SLOT.finditer(text):
            inner = text[m.end() - 2:value_end(text, m.end() - 2)]
            if m.group(0) == b"/AA <<":
                for r in _REF.finditer(inner):
                    self._target((int(r.group(1)), int(r.group(2))), Trigger.EVENT)
            if m.group(0) in (b"/AA <<", b"/OpenAction <<"):
                bad = bad or b"/S /URI" in inner  # never run a link automatically
            bad = bad or bool(_BAD_ACTION.search(inner)) or (
                not self.keep_links and b"/S /URI" in inner)
        # an /OpenAction anywhere goes whatever it holds (phase 1 took the catalog's)
        bad = bad or b"/OpenAction" in text
        return bad or bool(_SUSPECT.search(text) or _BAD_NAMED.search(text))

    def _visit(self, text: bytes, parent: ObjGen | None, queue: deque[ObjGen]) -> None:
        for m in _REF.finditer(text):
            og = (int(m.group(1)), int(m.group(2)))
            if og not in self.parent and og != self.encrypt:
                self.parent[og] = parent
                queue.append(og)

    def orphans(self) -> int:
        """How many objects of the file no reference reaches (structural ones aside)."""
        count = 0
        for each in self.pdf.objects:
            obj: object = each
            if not isinstance(obj, Object):
                continue
            og = obj.objgen
            if og in self.parent or og == self.encrypt:
                continue
            if isinstance(obj, Stream) and name_of(obj.get("/Type")) in _STRUCTURAL_TYPES:
                continue
            if is_dictlike(obj) and "/Linearized" in obj:
                continue
            if isinstance(obj, Stream) and "/S" in obj and "/Type" not in obj:
                continue  # a linearization hint stream
            count += 1
        return count

    def locate(self, og: ObjGen, anchors: dict[ObjGen, Loc]) -> Loc:
        """The path of an object: its phase-1 anchor, or its parent's path plus the key."""
        chain: list[ObjGen] = []
        cur: ObjGen | None = og
        while cur is not None and cur not in anchors and cur not in self._located:
            chain.append(cur)
            cur = self.parent.get(cur)
        loc = Loc() if cur is None else anchors.get(cur) or self._located[cur]
        for child in reversed(chain):
            up = self.parent.get(child)
            refs = self._refs.get(up)
            if refs is None:
                container = self.pdf.trailer if up is None else self.pdf.get_object(up)
                refs = self._refs[up] = _paths_in(container, loc)
            loc = refs.get(child) or Loc.at(f"{loc}/[{child[0]} {child[1]} R]")
            self._located[child] = loc
        return loc


def _paths_in(container: Object, base: Loc) -> dict[ObjGen, Loc]:
    """The first key/index path inside ``container`` to each object it references."""
    found: dict[ObjGen, Loc] = {}
    stack: list[tuple[Object, Loc]] = [(container, base)]
    while stack:
        obj, loc = stack.pop()
        children: list[tuple[object, Loc]]
        if isinstance(obj, Array):
            children = [(obj[i], loc.item(i)) for i in range(len(obj))]
        elif is_dictlike(obj):
            children = [(v, loc / k) for k, v in entries(obj)]
        else:
            continue
        pending = []
        for value, vloc in children:
            if not isinstance(value, Object):
                continue
            if value.is_indirect:
                found.setdefault(value.objgen, vloc)
            else:
                pending.append((value, vloc))
        stack.extend(reversed(pending))
    return found


def sweep(walk: Walk) -> None:
    """Find and neutralize what phase 1 did not reach."""
    graph = Graph(walk.pdf, suspects=True, settled=frozenset(walk.cleaned),
                  keep_links=walk.keep_links)
    if graph.trailer_suspect:  # qpdf writes the trailer's own keys too
        _clean_subtree(walk, walk.pdf.trailer, Loc())
    # dictionaries first: they decide about the embedded-file streams they point to
    todo = [(og, graph.locate(og, walk.anchors)) for og in graph.suspects + graph.streams]
    for og, loc in todo:
        obj = walk.pdf.get_object(og)
        if og in graph.light:
            _clean_subtree(walk, obj, loc, done=frozenset(walk.cleaned[og]))
            continue
        trigger = graph.targets.get(og)
        if trigger is not None and is_dictlike(obj) and (
                "/S" in obj or "/JS" in obj) and not _attributes(obj):
            verdict = classify(obj, trigger, walk.keep_links)
            if not verdict.allowed:  # an action an action slot refers to
                clear(obj)
                walk.record(verdict.kind, loc, detail=verdict.detail)
                continue
        _clean_subtree(walk, obj, loc)
    for og in graph.fonts:
        _font_matrices(walk, walk.pdf.get_object(og), graph.locate(og, walk.anchors))
    for og in graph.external:
        stream = walk.pdf.get_object(og)
        for key in ("/F", "/FFilter", "/FDecodeParms"):
            if key in stream.stream_dict:
                del stream.stream_dict[key]
        walk.record("pdf.external_stream", graph.locate(og, walk.anchors) / "/F",
                    detail="stream data read from another file: the reference removed")


#: the glyph space of every font but Type 3 (ISO 32000-1, 9.2.4)
_DEFAULT_MATRIX = (Decimal("0.001"), 0, 0, Decimal("0.001"), 0, 0)


def _font_matrices(walk: Walk, obj: Object, loc: Loc) -> None:
    """Replace every /FontMatrix in ``obj`` and the direct objects inside it that is not
    six numbers."""
    stack: list[tuple[Object, Loc]] = [(obj, loc)]
    while stack:
        here, hloc = stack.pop()
        if isinstance(here, Array):
            items: list[tuple[object, Loc]] = [(here[i], hloc.item(i)) for i in range(len(here))]
        elif is_dictlike(here):
            if "/FontMatrix" in here and not _numbers(here.get("/FontMatrix")):
                here["/FontMatrix"] = Array(_DEFAULT_MATRIX)
                walk.record("pdf.font_matrix", hloc / "/FontMatrix",
                            detail="font matrix that is not six numbers replaced "
                            "(script in PDF.js before 4.2.67, CVE-2024-4367)")
            items = [(v, hloc / k) for k, v in split_entries(here)[0]]
        else:
            continue
        stack.extend((v, at) for v, at in items
                     if isinstance(v, Array) or (is_dictlike(v) and not v.is_indirect))


def _numbers(value: object) -> bool:
    if not isinstance(value, Array) or len(value) != 6:
        return False
    items: list[object] = list(value)     # pikepdf hands numbers out as int and Decimal
    return all(isinstance(x, (int, Decimal)) and not isinstance(x, bool) for x in items)


def _clean_subtree(walk: Walk, obj: Object, loc: Loc, *,
                   done: frozenset[str] = frozenset()) -> None:
    """Neutralize ``obj`` and the direct objects inside it.

    ``done``: action slots of ``obj`` itself that phase 1 already cleaned (what they
    hold is still inspected).
    """
    stack: list[tuple[Object, Loc]] = [(obj, loc)]
    hidden: list[tuple[Object, list[str]]] = []
    while stack:
        here, hloc = stack.pop()
        children: list[tuple[object, int | str]]
        top = here is obj
        if isinstance(here, Array):
            children = [(here[i], i) for i in range(len(here))]
        elif is_dictlike(here):
            if _clean_dict(walk, here, hloc, done=done if top else frozenset()):
                continue
            pairs, unreadable = split_entries(here)
            if unreadable:
                hidden.append((here, unreadable))
            children = [(v, k) for k, v in pairs]
        else:
            continue
        for value, key in reversed(children):
            if isinstance(value, Array) or (is_dictlike(value) and not value.is_indirect):
                stack.append((value, hloc.item(key) if isinstance(key, int) else hloc / key))
    if hidden and _SCRIPT.search(_text(obj)):
        # Script-like content under keys pikepdf cannot read: no viewer reaches a
        # value through such a key, but it is not left in the output either.
        for holder, keys in hidden:
            for key in keys:
                del holder[key]
        walk.repairs.append("entries with unreadable names dropped")


def _attributes(value: object) -> bool:
    """A structure attribute object (ISO 32000-1, 14.7.5: /O names its owner), which
    tagged PDFs keep under a structure element's /A: not an action (a known bad action
    type is still caught where the sweep meets the dictionary itself)."""
    return is_dictlike(value) and "/O" in value and "/JS" not in value \
        and name_of(value.get("/Type")) != "Action"


def _clean_dict(walk: Walk, d: Object, loc: Loc, *, done: frozenset[str] = frozenset()) -> bool:
    """Neutralize one dictionary found anywhere; True when it was emptied."""
    verdict = is_known_bad(d, walk.keep_links)
    if verdict is not None:
        clear(d)
        walk.record(verdict.kind, loc, detail=verdict.detail)
        return True
    subtype = name_of(d.get("/Subtype"))
    annot_like = name_of(d.get("/Type")) == "Annot" or "/Rect" in d
    if annot_like and subtype in MEDIA_ANNOTS:
        clear(d)
        walk.record(MEDIA_ANNOTS[subtype], loc, detail=f"{subtype} annotation")
        return True
    if annot_like and subtype == "FileAttachment" and walk.carriers.add(d) and \
            not walk.files.filespec(d.get("/FS"), loc, "pdf.file_attachment"):
        clear(d)
        return True
    for key, trigger in (("/OpenAction", Trigger.OPEN), ("/A", Trigger.USER),
                         ("/PA", Trigger.USER)):
        value = None if key in done else d.get(key)
        opens = value is not None and trigger is Trigger.OPEN  # goes whatever it holds
        if key == "/A" and _attributes(value):
            continue  # a structure element's attributes (/O owner, /S /R ...): no action
        if opens or (is_dictlike(value) and ("/S" in value or "/JS" in value)):
            walk.slot(d, key, loc / key, trigger, report_kept=False)
    if "/AA" not in done and "/AA" in d:
        walk.aa(d, loc, report_kept=False)
    if "/XFA" in d:
        del d["/XFA"]
        walk.record("pdf.xfa", loc / "XFA", detail="XFA form removed")
    if "/AF" in d:
        _associated_files(walk, d, loc)
    if "/EF" in d and d not in walk.files.handled:
        walk.files.filespec(d, loc, "pdf.embedded_file")  # if removed, the entry stays without data
    if isinstance(d, Stream) and name_of(d.get("/Type")) == "EmbeddedFile" \
            and d not in walk.files.handled:
        walk.files.handled.add(d)
        clear(d)
        walk.record("pdf.embedded_file", loc, detail="embedded file data outside a file entry")
        return True
    for key in _MEDIA_KEYS:
        if key in d:
            del d[key]
            walk.record("pdf.rich_media", loc / key, detail="rich media content")
    return False


def _associated_files(walk: Walk, d: Object, loc: Loc) -> None:
    """/AF (associated files: PDF 2.0, PDF/A-3, LaTeX's tagged output): a file
    specification whose file was removed, or that only names a file outside the
    document, leaves the array, and /AF goes when nothing is left, so no reference to
    an attachment the recipient cannot open stays behind."""
    af = d.get("/AF")
    items = list(af) if isinstance(af, Array) else [af]
    kept = []
    for i, spec in enumerate(items):
        iloc = loc.index("/AF", i) if isinstance(af, Array) else loc / "AF"
        if not is_dictlike(spec):
            walk.record("pdf.embedded_file", iloc,
                        detail="associated file entry without a file specification")
        elif walk.files.filespec(spec, iloc, "pdf.embedded_file",
                                 outside="associated file outside the document"):
            kept.append(spec)
    if len(kept) == len(items):
        return
    if kept:
        d["/AF"] = Array(kept)
    else:
        del d["/AF"]

