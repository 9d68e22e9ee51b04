"""Word fields: DDE, DDEAUTO, INCLUDEPICTURE, INCLUDETEXT, IMPORT, LINK, DATABASE (a
mail-merge query to a data source), RD (a document read for an index) and HYPERLINK
(every one when the policy drops hyperlinks; when it keeps them, those whose target is
not an http, https or mailto address: javascript:, file:, UNC and local paths, as for
hyperlink relationships) are neutralized; their last displayed result stays.
MACROBUTTON (runs a macro or a Word command on a double click; oletools' msodde reports
it) has no result: its display text, the end of its instruction, becomes plain text.

A simple field ``<w:fldSimple w:instr="DDEAUTO …">runs</w:fldSimple>`` is replaced by its
runs. A complex field is a sequence of run contents in document order::

    fldChar begin | instrText… (maybe split over many runs, maybe nested fields) |
    fldChar separate | result runs… | fldChar end

Neutralizing removes everything from ``begin`` to ``separate`` and the ``end`` marker;
the result runs stay as plain text. A field whose name is itself produced by a nested
field (``{ {QUOTE …} … }``) is treated as DDE: Word's field name must be literal.

Fields are numbered in document order of their start, nested ones included:
location ``word/document.xml#field[3]``. Used by OOXML packages, Flat OPC and Word
2003 XML (same WordprocessingML field markup).

Parsing a large document only to find nothing is slow, so :func:`quick_check` first
runs the same analysis on tokens found by regular expressions in the raw bytes. It
only decides whether to parse, and is only trusted on parts with nothing that could
hide text from a regex: no comments, CDATA, DTD or PIs
(:func:`ooxml_xml.needs_full_parse`) and no character references (``&#``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from xml.etree.ElementTree import Element

from gateway.stages import ooxml_xml as X
from gateway.stages.links import FIRST_WORD, describe_target, hyperlink_target, is_web

W_NS = frozenset({"http://schemas.openxmlformats.org/wordprocessingml/2006/main",
                  "http://purl.oclc.org/ooxml/wordprocessingml/main",
                  "http://schemas.microsoft.com/office/word/2003/wordml"})

DANGEROUS = {
    "DDE": "ooxml.dde", "DDEAUTO": "ooxml.dde",
    "INCLUDEPICTURE": "ooxml.include_field", "INCLUDETEXT": "ooxml.include_field",
    "INCLUDE": "ooxml.include_field", "IMPORT": "ooxml.include_field",
    "LINK": "ooxml.external_relationship",
    "MACROBUTTON": "ooxml.macro_field",
    # read files outside the document when updated: a mail-merge database query (an
    # ODBC/OLE DB source, a share) and a document referenced for an index or contents
    "DATABASE": "ooxml.include_field", "RD": "ooxml.include_field",
}
#: MACROBUTTON's display text: what follows the macro (or Word command) name
_MACROBUTTON = re.compile(r"\s*MACROBUTTON\s+\S+\s?(.*)", re.S | re.I)


def macrobutton_text(instr: str) -> str:
    """The text a MACROBUTTON field shows (it has no result: the text is in the
    instruction, after the name of the macro or Word command it runs on a double
    click)."""
    m = _MACROBUTTON.match(instr)
    return m.group(1) if m else ""


@dataclass(slots=True)
class Tok:
    kind: str                    # begin | separate | end | instr | simple | other
    text: str = ""
    el: Element | None = None    # the run child (or the fldSimple element)
    run: Element | None = None


@dataclass(slots=True)
class Field:
    index: int
    start: int
    instr: str = ""
    sep: int | None = None
    end: int | None = None
    simple: bool = False
    dynamic: bool = False
    nested: bool = False         # another field begins inside the instruction

    @property
    def name(self) -> str:
        m = FIRST_WORD.match(self.instr)
        return m.group(1).upper() if m else ""


def classify(f: Field, keep_links: bool) -> str | None:
    if f.dynamic:
        return "ooxml.dde"
    kind = DANGEROUS.get(f.name)
    if kind is None and f.name == "HYPERLINK":
        target = hyperlink_target(f.instr)
        if not keep_links or f.nested or (target is not None and not is_web(target)):
            kind = "ooxml.hyperlink"
    return kind


def analyze(tokens: list[Tok]) -> list[Field]:
    fields: list[Field] = []
    stack: list[Field] = []
    for i, t in enumerate(tokens):
        if t.kind == "simple":
            fields.append(Field(len(fields) + 1, i, t.text, simple=True))
        elif t.kind == "begin":
            if stack and stack[-1].sep is None:
                stack[-1].nested = True
                if not stack[-1].instr.strip():
                    stack[-1].dynamic = True
            f = Field(len(fields) + 1, i)
            fields.append(f)
            stack.append(f)
        elif t.kind == "instr":
            if stack and stack[-1].sep is None:
                stack[-1].instr += t.text
        elif t.kind == "separate":
            if stack and stack[-1].sep is None:
                stack[-1].sep = i
        elif t.kind == "end" and stack:
            stack.pop().end = i
    return fields


# ------------------------------------------------------------------------ quick check

_TOKENS = re.compile(
    rb"""fldCharType\s*=\s*["'](begin|separate|end)["']"""
    rb"""|<(?:[\w.-]+:)?(?:instrText|delInstrText)\b[^>]*?(?<!/)>([^<]*)"""
    rb"""|<(?:[\w.-]+:)?fldSimple\b[^>]*?\binstr\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_ENTITIES = {"&lt;": "<", "&gt;": ">", "&quot;": '"', "&apos;": "'", "&amp;": "&"}


def _unescape(b: bytes) -> str:
    s = b.decode("utf-8", "replace")
    if "&" not in s:
        return s
    return re.sub(r"&(lt|gt|quot|apos|amp);", lambda m: _ENTITIES[m.group(0)], s)


_KEYWORDS = re.compile(rb"(?i)(DDE|INCLUDE|IMPORT|HYPERLINK|MACROBUTTON|DATABASE|(?<![A-Za-z])LINK"
                       rb"|(?<![A-Za-z])RD(?![A-Za-z]))")


def quick_check(data: bytes, keep_links: bool) -> bool:
    """Whether a part that needs no full parse holds a field to neutralize.

    Runs :func:`analyze` on tokens a regular expression finds; skipped when no
    instruction can name a dangerous field and none can be built by a nested field.
    """
    if b"fldSimple" not in data and b"nstrText" not in data:
        return False
    matches = list(_TOKENS.finditer(data))
    # instructions split over runs ("DD" + "EAUTO") are searched joined up
    joined = b"\x00".join(m.group(3) or m.group(4) or b"" for m in matches) + b"\x00" + \
        b"".join(m.group(2) or b"" for m in matches)
    named = _KEYWORDS.search(joined) is not None
    if keep_links and not named and not _nested_name(matches):
        return False      # no dangerous name, and no name built by a nested field
    tokens: list[Tok] = []
    for m in matches:
        if m.group(1):
            tokens.append(Tok(m.group(1).decode()))
        elif m.group(2) is not None:
            tokens.append(Tok("instr", _unescape(m.group(2))))
        else:
            tokens.append(Tok("simple", _unescape(m.group(3) or m.group(4) or b"")))
    return any(classify(f, keep_links) for f in analyze(tokens))


def _nested_name(matches: list[re.Match[bytes]]) -> bool:
    """A field that begins right after another field's begin (only blanks between)."""
    after_begin = False
    for m in matches:
        if m.group(1) == b"begin":
            if after_begin:
                return True
            after_begin = True
        elif m.group(1) or m.group(2) is None or m.group(2).strip():
            after_begin = False
    return False


# ------------------------------------------------------------------------------ tree


def _tokens(root: Element) -> list[Tok]:
    tokens: list[Tok] = []
    for el in root.iter():
        tag = el.tag
        if X.ns(tag) not in W_NS:
            continue
        name = X.local(tag)
        if name == "fldSimple":
            tokens.append(Tok("simple", el.get(_attr(tag, "instr"), ""), el))
        elif name == "r":
            for child in el:
                cname = X.local(child.tag)
                if cname == "rPr":
                    continue
                if cname == "fldChar":
                    kind = child.get(_attr(child.tag, "fldCharType"), "")
                    kind = kind if kind in ("begin", "separate", "end") else "other"
                    tokens.append(Tok(kind, "", child, el))
                elif cname in ("instrText", "delInstrText"):
                    tokens.append(Tok("instr", child.text or "", child, el))
                else:
                    tokens.append(Tok("other", "", child, el))
    return tokens


def _attr(tag: str, name: str) -> str:
    return f"{{{X.ns(tag)}}}{name}"


def _add_run(simple: Element, text: str) -> None:
    """Give a fldSimple without runs one run showing ``text``."""
    w = X.ns(simple.tag)
    run = Element(f"{{{w}}}r")
    t = Element(f"{{{w}}}t", {X.XML_SPACE: "preserve"})
    t.text = text
    run.append(t)
    simple.append(run)


Record = Callable[[str, str, str], None]


def neutralize(doc: X.XmlDoc, part: str, keep_links: bool, record: Record) -> bool:
    """Neutralize dangerous fields in ``doc``; ``record(kind, location, detail)``."""
    tokens = _tokens(doc.root)
    if not tokens:
        return False
    drop: set[int] = set()
    unwrap: list[Element] = []
    shown: dict[int, str] = {}   # instruction token -> text it becomes (MACROBUTTON)
    for f in analyze(tokens):
        kind = classify(f, keep_links)
        if kind is None or f.start in drop:
            continue
        label = "field built from a nested field" if f.dynamic else f"{f.name} field"
        if kind == "ooxml.hyperlink" and keep_links:
            label += (" whose address a nested field computes" if f.nested
                      else f" to a {describe_target(hyperlink_target(f.instr))}")
        button = kind == "ooxml.macro_field" and f.sep is None
        record(kind, f"{part}#field[{f.index}]",
               f"{label}; its display text kept" if button
               else f"{label}; its displayed result kept")
        if f.simple:
            el = tokens[f.start].el
            if el is not None:
                if button and not any(X.local(c.tag) == "r" for c in el):
                    _add_run(el, macrobutton_text(f.instr))
                unwrap.append(el)
            continue
        stop = f.sep if f.sep is not None else (f.end if f.end is not None else len(tokens) - 1)
        drop.update(range(f.start, stop + 1))
        if f.end is not None:
            drop.add(f.end)
        if button:
            first = next((i for i in range(f.start, stop + 1) if tokens[i].kind == "instr"),
                         None)
            if first is not None:
                shown[first] = macrobutton_text(f.instr)
                drop.discard(first)
    if not drop and not unwrap:
        return False
    for i, text in shown.items():
        el = tokens[i].el
        if el is not None:  # the instruction's first piece becomes the display text
            deleted = X.local(el.tag) == "delInstrText"  # inside a tracked deletion
            el.tag = f"{{{X.ns(el.tag)}}}{'delText' if deleted else 't'}"
            el.attrib.clear()
            el.set(X.XML_SPACE, "preserve")
            el.text = text
    parents = doc.parents()
    touched: list[Element] = []
    for i in sorted(drop):
        t = tokens[i]
        if t.el is not None and t.run is not None and t.kind != "simple":
            if t.el in list(t.run):
                t.run.remove(t.el)
            touched.append(t.run)
        elif t.kind == "simple" and t.el is not None:
            X.remove(parents, t.el)     # a simple field inside a removed instruction
    X.remove_all(parents, [run for run in touched  # runs left with nothing to show
                           if all(X.local(c.tag) == "rPr" for c in run)])
    for el in unwrap:
        for child in list(el):
            if X.local(child.tag) == "fldData":
                el.remove(child)
        X.unwrap(parents, el)
    return True
