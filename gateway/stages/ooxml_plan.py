"""What goes and what stays in one OPC package (DESIGN.md §8, OOXML).

The same engine serves scan, disarm and verify, so scan finds exactly what disarm
removes. Order matters and is fixed:

1. the main part's macro-enabled content type becomes its plain type;
2. active parts are removed (VBA, signatures, vbaData, ActiveX, XLM sheets, customUI,
   external-link workbooks…), chosen by relationship type, content type or name; so is
   an OLE compound file in any part that is not an embedded object (an image, a custom
   XML item…): Office never reads one there, but it carries whatever it holds (a VBA
   project, an exploit) through the gateway past tools that look at every OLE member;
3. relationships: external ones go (hyperlinks with web targets stay when the policy
   keeps hyperlinks), dangling ones go, ones into removed parts go;
4. parts no longer reachable from the package root go (unreferenced input parts are
   reported as such; parts orphaned by step 2 go with the finding that orphaned them);
5. embedded objects and packages go through the whole pipeline (``ctx.recurse``): kept
   if delivered, removed if blocked, or removed by policy ``embedded: remove``; so do
   SVG pictures (cleaned in place, kept whatever that policy says);
6. XML parts that refer to anything removed, or hold fields, DDE, frames, mail merge
   or connections, are edited (:mod:`ooxml_parts`);
7. content types follow.

Finding locations: a part ``word/vbaProject.bin``; a relationship
``word/_rels/settings.xml.rels#rId1``; something inside a part
``word/document.xml#field[2]`` (see the modules that record those).
"""

from __future__ import annotations

import contextlib
import posixpath
import re
from collections import defaultdict
from dataclasses import dataclass, field

from gateway.errors import Malformed
from gateway.kinds import Action
from gateway.models import Verdict
from gateway.pipeline.api import Mode, StageContext
from gateway.stages import ooxml_xps as XPS
from gateway.stages.cfb_writer import MAGIC as OLE_MAGIC
from gateway.stages.links import is_web
from gateway.stages.ooxml_excel import external_link_kind, substitute_macrosheet
from gateway.stages.ooxml_package import Package, Rel, RelsPart, apple_double, relative_target
from gateway.stages.ooxml_parts import process_parts

_WML = "application/vnd.openxmlformats-officedocument.wordprocessingml."
_SML = "application/vnd.openxmlformats-officedocument.spreadsheetml."
_PML = "application/vnd.openxmlformats-officedocument.presentationml."
_VSD = "application/vnd.ms-visio."
#: macro-enabled main part type -> (plain type, output type id, extension)
MACRO_MAIN: dict[str, tuple[str, str, str]] = {
    "application/vnd.ms-word.document.macroenabled.main+xml":
        (_WML + "document.main+xml", "ooxml.docx", "docx"),
    "application/vnd.ms-word.template.macroenabledtemplate.main+xml":
        (_WML + "template.main+xml", "ooxml.dotx", "dotx"),
    "application/vnd.ms-excel.sheet.macroenabled.main+xml":
        (_SML + "sheet.main+xml", "ooxml.xlsx", "xlsx"),
    "application/vnd.ms-excel.template.macroenabled.main+xml":
        (_SML + "template.main+xml", "ooxml.xltx", "xltx"),
    "application/vnd.ms-excel.addin.macroenabled.main+xml":
        (_SML + "sheet.main+xml", "ooxml.xlsx", "xlsx"),
    "application/vnd.ms-powerpoint.presentation.macroenabled.main+xml":
        (_PML + "presentation.main+xml", "ooxml.pptx", "pptx"),
    "application/vnd.ms-powerpoint.template.macroenabled.main+xml":
        (_PML + "template.main+xml", "ooxml.potx", "potx"),
    "application/vnd.ms-powerpoint.slideshow.macroenabled.main+xml":
        (_PML + "slideshow.main+xml", "ooxml.ppsx", "ppsx"),
    "application/vnd.ms-powerpoint.addin.macroenabled.main+xml":
        (_PML + "presentation.main+xml", "ooxml.pptx", "pptx"),
    _VSD + "drawing.macroenabled.main+xml": (_VSD + "drawing.main+xml", "ooxml.vsdx", "vsdx"),
    _VSD + "template.macroenabled.main+xml": (_VSD + "template.main+xml", "ooxml.vstx", "vstx"),
    _VSD + "stencil.macroenabled.main+xml": (_VSD + "stencil.main+xml", "ooxml.vssx", "vssx"),
}
#: content types of embedded packages, for parts renamed after recursion (.xlsm -> .xlsx)
EXT_CT = {
    "docx": _WML + "document", "dotx": _WML + "template",
    "xlsx": _SML + "sheet", "xltx": _SML + "template",
    "pptx": _PML + "presentation", "potx": _PML + "template", "ppsx": _PML + "slideshow",
    "vsdx": _VSD + "drawing", "vstx": _VSD + "template", "vssx": _VSD + "stencil",
}
#: macro-only content types that must not linger as Defaults
MACRO_DEFAULTS = ("application/vnd.ms-office.vbaproject", "application/vnd.ms-office.activex",
                  "application/vnd.ms-excel.macrosheet", "application/vnd.ms-excel.intlmacrosheet",
                  "application/vnd.ms-word.vbadata", "application/vnd.ms-word.keymap",
                  "application/vnd.ms-word.attachedtoolbars")

_CHANGED = {Action.REMOVED, Action.NEUTRALIZED, Action.DISARMED}
_SIG_KINDS = {"vbaProjectSignature", "vbaProjectSignatureAgile", "vbaProjectSignatureV3"}
_XLM_KINDS = {"macrosheet", "xlMacrosheet", "xlIntlMacrosheet", "intlMacrosheet"}
_XLM_CTS = ("application/vnd.ms-excel.macrosheet", "application/vnd.ms-excel.intlmacrosheet")
_EXTLINK_CTS = (_SML + "externallink+xml", "application/vnd.ms-excel.externallink")
_CALLBACK = re.compile(rb"""\b(on[A-Z]\w*|get[A-Z]\w*)\s*=""")


def _active(name: str, ct: str, kinds: set[str]) -> tuple[str, str] | None:
    """(kind, detail) for a part that is always removed."""
    base = posixpath.basename(name).lower()
    if ct == "application/vnd.ms-office.vbaproject" or "vbaProject" in kinds \
            or base == "vbaproject.bin":
        return "ooxml.vba", "VBA project"
    if ct.startswith("application/vnd.ms-office.vbaprojectsignature") or kinds & _SIG_KINDS \
            or base.startswith("vbaprojectsignature"):
        return "ooxml.vba_signature", "signature of the VBA project"
    if ct.startswith("application/vnd.ms-word.vbadata") or "wordVbaData" in kinds \
            or base == "vbadata.xml":
        return "ooxml.vba_data", "VBA data (vbaData.xml)"
    if ct.startswith(("application/vnd.ms-word.keymapcustomizations",
                      "application/vnd.ms-word.attachedtoolbars")) \
            or kinds & {"keyMapCustomizations", "attachedToolbars"}:
        return "ooxml.vba", "macro key bindings or toolbars"
    if ct.startswith("application/vnd.ms-office.activex") \
            or kinds & {"control", "activeXControlBinary"}:
        return "ooxml.activex", "ActiveX control"
    if ct.startswith(_XLM_CTS) or kinds & _XLM_KINDS or (
            re.fullmatch(r"xl/macrosheets/(?!binaryindex)[^/]+\.(xml|bin)", name.lower())):
        return "ooxml.xlm_macro", "Excel 4.0 (XLM) macro sheet"
    if "extensibility" in kinds or re.fullmatch(r"customui/customui\w*\.xml", name.lower()):
        return "ooxml.custom_ui", "custom ribbon (customUI)"
    if ct.startswith(_EXTLINK_CTS) or "externalLink" in kinds:
        return "ooxml.external_link", "link to another workbook"
    if ct == "application/vnd.ms-excel.connections":
        return "ooxml.external_data", "external data connections (binary)"
    return None


SVG = "ooxml.svg_image"
#: document content, not an embedded file: ``embedded: remove`` keeps them (cleaned)
_CONTENT = frozenset({"ooxml.alt_chunk", SVG})


def _embedding(name: str, ct: str, kinds: set[str]) -> str | None:
    if "aFChunk" in kinds:
        return "ooxml.alt_chunk"
    if "oleObject" in kinds or ct == "application/vnd.openxmlformats-officedocument.oleobject":
        return "ooxml.ole_object"
    if "package" in kinds or "/embeddings/" in "/" + name.lower():
        return "ooxml.embedded_package"
    if ct == "image/svg+xml" or name.lower().endswith(".svg"):
        # Office draws SVG pictures without running them, but "Save as Picture" hands
        # the file to a browser, and checkers read every XML part of a package
        return SVG
    return None


@dataclass(slots=True)
class Edits:
    removed: set[str] = field(default_factory=set)
    replaced: dict[str, bytes] = field(default_factory=dict)
    renamed: dict[str, str] = field(default_factory=dict)
    dead: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    retarget: defaultdict[str, dict[str, str]] = field(
        default_factory=lambda: defaultdict(dict))
    retype: defaultdict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))
    #: relationships written without TargetMode="External" (a jump within the document)
    internal: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    demote: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    added: dict[str, bytes] = field(default_factory=dict)
    substituted: dict[str, str] = field(default_factory=dict)
    output_type: tuple[str, str] | None = None


class Engine:
    def __init__(self, pkg: Package, ctx: StageContext) -> None:
        self.pkg = pkg
        self.ctx = ctx
        self.writing = ctx.mode is Mode.DISARM
        self.e = Edits()
        self.incoming: defaultdict[str, set[str]] = defaultdict(set)
        for _, rel in pkg.all_rels():
            if rel.part is not None:
                self.incoming[rel.part].add(rel.kind)
        self.recorded: set[str] = set()
        self.embeds: list[tuple[str, str]] = []
        self.ext_links_removed = False
        self.formulas_removed = False
        #: parts a part names outside its relationships (XPS markup), followed like them
        self.implicit: dict[str, set[str]] = {}

    # ------------------------------------------------------------------------ helpers

    def record(self, kind: str, location: str, action: Action, detail: str = "") -> None:
        self.ctx.record(kind, location, action=action, detail=detail)

    def ct(self, name: str) -> str:
        return self.pkg.ct.get(name).lower()

    def kill(self, rp: RelsPart, rel: Rel) -> None:
        self.e.dead[rp.source].add(rel.id)

    def remove_part(self, name: str, kind: str, detail: str) -> None:
        self.e.removed.add(name)
        self.recorded.add(name)
        self.record(kind, name, Action.REMOVED, detail)

    def sheet_entry(self, name: str) -> bool:
        """Whether the workbook (the main part) lists ``name`` as one of its sheets."""
        return any(rel.part == name for rel in self.pkg.rels_of(self.pkg.main))

    def family(self) -> str:
        main_ct = self.ct(self.pkg.main)
        for fam, keys in (("word", ("wordprocessingml", "ms-word")),
                          ("excel", ("spreadsheetml", "ms-excel")),
                          ("powerpoint", ("presentationml", "ms-powerpoint")),
                          ("visio", ("ms-visio",)),
                          ("xps", ("ms-package.xps-fixeddocumentsequence",))):
            if any(k in main_ct for k in keys):
                return fam
        return "other"

    # ---------------------------------------------------------------------------- run

    def run(self) -> Edits:
        if self.family() == "xps":   # documents and pages are named by attributes
            self.implicit = XPS.references(self.pkg)
        original = self.reachable()
        self.main_type()
        for name in self.pkg.parts:
            self.classify(name)
        self.relationships()
        self.collect(original)
        self.embedded()
        self.collect(original)
        self.prune()
        process_parts(self)
        self.signatures()
        if self.formulas_removed:
            for name in self.pkg.parts:
                if "calcChain" in self.incoming.get(name, ()) and name not in self.e.removed:
                    self.e.removed.add(name)    # Excel rebuilds it; stale entries need repair
            self.prune()
        self.content_types()
        return self.e

    def signatures(self) -> None:
        """A package signature no longer matches a changed package: Office would show it
        as invalid. It goes (with its parts) when anything was taken out or changed."""
        changed = any(f.action in _CHANGED for f in self.ctx.findings)
        for rel in self.pkg.rels_of(""):
            if changed and rel.kind == "origin" and "digital-signature" in rel.type:
                self.kill(self.pkg.rels[""], rel)
                self.record("ooxml.signature_removed", f"{self.pkg.rels[''].name}#{rel.id}",
                            Action.REMOVED, "package signature (invalid once disarmed)")
                self.collect(set(self.pkg.parts))
                self.prune()

    def main_type(self) -> None:
        plain = MACRO_MAIN.get(self.ct(self.pkg.main))
        if plain:
            old = self.pkg.ct.get(self.pkg.main)
            self.pkg.ct.set(self.pkg.main, plain[0])
            self.e.output_type = (plain[1], plain[2])
            self.record("ooxml.macro_enabled", self.pkg.main, Action.NEUTRALIZED,
                        f"{old.rsplit('.', 2)[-2] if '.' in old else old} -> {plain[2]}")

    def classify(self, name: str) -> None:
        ct = self.ct(name)
        kinds = self.incoming.get(name, set())
        found = _active(name, ct, kinds)
        if found:
            kind, detail = found
            if kind == "ooxml.custom_ui":
                names = sorted({m.decode() for m in _CALLBACK.findall(self.pkg.read(name))})
                detail += f", callbacks: {', '.join(names)}" if names else ", no callbacks"
            elif kind == "ooxml.external_link":
                kind, detail = external_link_kind(self.pkg, name)
                self.ext_links_removed = True
            elif kind == "ooxml.xlm_macro" and self.sheet_entry(name):
                with contextlib.suppress(Malformed):  # unreadable: it and its <sheet> go
                    detail += "; " + substitute_macrosheet(self, name)
            self.remove_part(name, kind, detail)
            return
        embed = _embedding(name, ct, kinds)
        if embed:
            self.embeds.append((name, embed))
        elif self.pkg.head(name, len(OLE_MAGIC)) == OLE_MAGIC:
            self.remove_part(name, "ooxml.ole_object", "OLE compound file in a part of type "
                             f"{ct}" if ct else "OLE compound file in a part without a type")

    def relationships(self) -> None:
        keep_links = self.ctx.keeps("hyperlinks")
        for rp in self.pkg.rels.values():
            if rp.source and (rp.source in self.e.removed or self.pkg.find(rp.source) is None):
                continue
            kept = 0
            for rel in rp.rels:
                where = f"{rp.name}#{rel.id}"
                target = _show(rel.target)
                if rel.kind == "hyperlink":
                    if rel.target.strip().startswith("#"):
                        # a place in this document ("#Data!A1" on a picture): it stays,
                        # marked internal as LibreOffice writes it (XlsxWriter says
                        # External, and oleobj reports it as a link out)
                        if rel.external:
                            self.e.internal[rp.source].add(rel.id)
                        continue
                    if keep_links and is_web(rel.target):
                        kept += 1
                        continue
                    self.kill(rp, rel)
                    why = "not a web link" if keep_links else "removed by policy"
                    self.record("ooxml.hyperlink", where, Action.REMOVED, f"{target} ({why})")
                elif rel.external:
                    self.kill(rp, rel)
                    self.record("ooxml.external_relationship", where, Action.REMOVED,
                                f"{rel.kind} -> {target}")
                elif rel.part is None:
                    self.kill(rp, rel)
                    self.record("ooxml.dangling_relationship", where, Action.REPAIRED,
                                f"{rel.kind} -> missing {target}")
            if kept:
                self.record("ooxml.hyperlink", rp.name, Action.KEPT,
                            f"{kept} web link{'s' if kept > 1 else ''} kept by policy")

    def reachable(self) -> set[str]:
        seen: set[str] = set()
        stack = [""]
        while stack:
            src = stack.pop()
            dead = self.e.dead.get(src, set())
            for rel in self.pkg.rels_of(src):
                part = rel.part
                if rel.external or part is None or rel.id in dead:
                    continue
                if part in self.e.removed or part in seen:
                    continue
                seen.add(part)
                stack.append(part)
            for part in self.implicit.get(src, ()):
                if part not in self.e.removed and part not in seen:
                    seen.add(part)
                    stack.append(part)
        return seen

    def collect(self, original: set[str]) -> None:
        live = self.reachable()
        for name in self.pkg.parts:
            if name in self.e.removed or name in live:
                continue
            self.e.removed.add(name)
            if name not in original and name not in self.recorded:
                self.recorded.add(name)
                self.record("ooxml.unreferenced_part", name, Action.REMOVED,
                            "macOS resource fork (__MACOSX), not part of the document"
                            if apple_double(name) else "part no relationship refers to")

    def prune(self) -> None:
        for rp, rel in self.pkg.all_rels():
            if rel.part is not None and rel.part in self.e.removed \
                    and rel.part not in self.e.substituted:
                self.kill(rp, rel)

    def embedded(self) -> None:
        remove = self.ctx.option("embedded", "disarm") == "remove"
        for name, kind in self.embeds:
            if name in self.e.removed:
                continue
            if remove and kind not in _CONTENT:
                self.remove_part(name, kind, "removed by policy")
                continue
            emb = self.ctx.recurse(self.pkg.read(name), name)
            if not emb.verdict.delivered:
                self.remove_part(name, kind, f"{emb.type} {emb.verdict}: {emb.reason or ''}"
                                 .strip(": "))
                continue
            self.recorded.add(name)
            if kind == SVG and emb.verdict is Verdict.CLEAN and emb.type == "svg":
                continue  # nothing in it to take out: the picture stays as it was
            if self.writing:
                if emb.data is None:
                    self.remove_part(name, kind, f"{emb.type}: no clean copy")
                    continue
                self.e.replaced[name] = (well_formed_html(emb.data) if emb.type == "html"
                                         and kind == "ooxml.alt_chunk" else emb.data)
                if posixpath.splitext(emb.name)[1].lower() != \
                        posixpath.splitext(name)[1].lower():
                    self.rename(name, emb.name, kind)
                action = Action.DISARMED if emb.verdict is Verdict.DISARMED else Action.KEPT
            else:
                action = Action.DISARMED if emb.residual else Action.KEPT
            what = "disarmed and kept" if action is Action.DISARMED else "checked, kept"
            self.record(kind, name, action, f"{emb.type} {what}")

    def rename(self, name: str, base: str, kind: str) -> None:
        folder = posixpath.dirname(name)
        stem, ext = posixpath.splitext(base)
        new, n = posixpath.join(folder, base), 1
        while self.pkg.find(new) is not None or new in self.e.renamed.values():
            new, n = posixpath.join(folder, f"{stem}_{n}{ext}"), n + 1
        self.e.renamed[name] = new
        for rp, rel in self.pkg.all_rels():
            if rel.part == name:
                self.e.retarget[rp.source][rel.id] = relative_target(rp.source, new)
                self.e.demote[rp.source].add(rel.id)
        ctype = EXT_CT.get(ext.lstrip(".").lower())
        if kind == "ooxml.alt_chunk" and ctype == _WML + "document":
            ctype = _WML + "document.main+xml"      # an imported docx is typed as a main part
        if ctype:
            self.pkg.ct.set(new, ctype)

    def content_types(self) -> None:
        for ext, ctype in list(self.pkg.ct.defaults.items()):
            if ctype.lower().startswith(MACRO_DEFAULTS):
                self.pkg.ct.drop_default(ext)
        for name in self.e.removed:
            self.pkg.ct.drop(name)


def well_formed_html(data: bytes) -> bytes:
    """A sanitized HTML chunk written with XML syntax (void elements closed). Word reads
    either; oletools' OOXML parser reads every part of a package as XML and fails an
    assertion on an unclosed <meta> (the HTML stage writes HTML syntax), and a checker
    that cannot read the output can vouch for nothing in it."""
    import lxml.etree  # noqa: PLC0415 - only for documents with an HTML altChunk
    import lxml.html  # noqa: PLC0415

    root = lxml.html.document_fromstring(data)
    return b"<!DOCTYPE html>\n" + lxml.etree.tostring(root, method="xml", encoding="unicode"
                                                      ).encode("utf-8")


def _show(target: str) -> str:
    clean = "".join(c if c.isprintable() else "?" for c in target)
    return clean if len(clean) <= 120 else clean[:117] + "..."
