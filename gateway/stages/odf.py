"""OpenDocument (odt, ods, odp, odg and their templates): the package rebuilt without
what runs, loads or links.

An ODF package is a zip: ``mimetype`` (stored, first), ``META-INF/manifest.xml``,
XML parts (``content.xml``, ``styles.xml``, ``meta.xml``, ``settings.xml``, the same
inside each embedded sub-document ``Object N/``), pictures. Removed:

* macro libraries and scripts: ``Basic/``, ``Dialogs/``, ``Scripts/`` (``odf.macro``,
  location the file) and custom toolbars, menus and shortcuts that can call them,
  ``Configurations2/`` (``odf.ui_config``); ``office:scripts`` in the XML;
* events that run a macro or script (``office:event-listeners``,
  ``presentation:event-listener``: on open, on click…; ``odf.event``), and macro
  fields (``text:execute-macro``, unwrapped: its text stays);
* OLE objects (a binary ``Object N`` and its ``draw:object-ole``; the replacement
  picture beside it stays; ``odf.ole_object``), applets and plugins (``odf.plugin``);
* links that load content from elsewhere (``odf.external_link``): linked sections,
  tables and cell ranges, DDE (the last result of a DDE field stays), objects and
  pictures outside the package, the template and the auto-reload URL of ``meta.xml``,
  a form's submission address;
* SVG pictures go through the SVG stage (``odf.svg_image``): kept cleaned of scripts,
  handlers and links, or removed when they cannot be read;
* hyperlinks (``text:a``, ``draw:a``) that are not web or mail addresses are unwrapped
  (their text stays); web and mail links stay or go by policy (``keep: [hyperlinks]``);
* an embedded sub-document with a part that is not well-formed XML goes whole
  (``odf.broken_object``; its preview picture stays, as LibreOffice shows it).

Encrypted documents (``manifest:encryption-data``) are blocked as encrypted. A
single-file OpenDocument (.fodt, .fods…: macros in ``office:scripts``, objects inline)
gets the same cleaning over its one XML document. Locations: a file
(``Basic/Standard/Module1.xml``) or a place in a part (``content.xml#event-listeners[1]``,
``document#scripts[1]`` in a single-file document; n counts that element in document
order).
"""

from __future__ import annotations

import posixpath
from typing import BinaryIO, ClassVar
from xml.etree.ElementTree import Element

from gateway.errors import EncryptedContent, Malformed
from gateway.kinds import Action
from gateway.models import Verdict
from gateway.pipeline import registry, xml_wide
from gateway.pipeline.api import Mode, StageContext
from gateway.stages import ooxml_xml as X
from gateway.stages import xml_dtd
from gateway.stages.links import describe_target, is_web, link_detail
from gateway.stages.ooxml_package import apple_double
from gateway.stages.ooxml_zip import ZipIn, ZipOut

ODF_TYPES = frozenset(f"odf.{kind}" for kind in (
    "text", "spreadsheet", "presentation", "graphics", "text-template",
    "spreadsheet-template", "presentation-template", "graphics-template", "flat"))
#: a single-file OpenDocument (.fodt, .fods, .fodp, .fodg): one XML document holding
#: what a package spreads over files (macros in office:scripts, objects inline)
FLAT = "odf.flat"

_OFFICE = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
_SCRIPT = "urn:oasis:names:tc:opendocument:xmlns:script:1.0"
_TEXT = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
_TABLE = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"
_DRAW = "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"
_PRESENTATION = "urn:oasis:names:tc:opendocument:xmlns:presentation:1.0"
_META = "urn:oasis:names:tc:opendocument:xmlns:meta:1.0"
_MANIFEST = "urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"
_XLINK_HREF = "{http://www.w3.org/1999/xlink}href"

MANIFEST = "META-INF/manifest.xml"
#: folders removed whole: (kind, detail)
_FOLDERS = {"Basic/": ("odf.macro", "LibreOffice Basic macro library"),
            "Dialogs/": ("odf.macro", "Basic dialog library"),
            "Scripts/": ("odf.macro", "script (Python, JavaScript, BeanShell)"),
            "Configurations2/": ("odf.ui_config", "custom toolbars, menus or shortcuts")}
#: elements removed with everything inside: (namespace, local name) -> (kind, detail)
_REMOVE = {
    (_OFFICE, "scripts"): ("odf.macro", "scripts and their events"),
    (_OFFICE, "event-listeners"): ("odf.event", "events that run macros or scripts"),
    (_SCRIPT, "event-listener"): ("odf.event", "event that runs a macro or script"),
    (_PRESENTATION, "event-listener"): ("odf.event", "click action"),
    (_DRAW, "plugin"): ("odf.plugin", "plugin"),
    (_DRAW, "applet"): ("odf.plugin", "Java applet"),
    (_DRAW, "object-ole"): ("odf.ole_object", "OLE object (its preview picture stays)"),
    (_TABLE, "table-source"): ("odf.external_link", "table linked to another file"),
    (_TABLE, "cell-range-source"): ("odf.external_link", "cell range linked to a file"),
    (_TEXT, "section-source"): ("odf.external_link", "section linked to another file"),
    (_OFFICE, "dde-source"): ("odf.external_link", "DDE link"),
    (_TEXT, "dde-connection-decls"): ("odf.external_link", "DDE links"),
    (_TABLE, "dde-links"): ("odf.external_link", "DDE links"),
    (_META, "template"): ("odf.external_link", "document template"),
    (_META, "auto-reload"): ("odf.external_link", "automatic reload from an address"),
}
#: elements replaced by their content (their text stays)
_UNWRAP = {
    (_TEXT, "execute-macro"): ("odf.macro", "macro field (its text stays)"),
    (_TEXT, "dde-connection"): ("odf.external_link", "DDE field (its last result stays)"),
}
_LINKS = {(_TEXT, "a"), (_DRAW, "a")}
_SCRIPTS = (_OFFICE, "scripts")
#: containers LibreOffice writes empty into every document: nothing to report then
_CONTAINERS = {(_OFFICE, "scripts"), (_OFFICE, "event-listeners"),
               (_TEXT, "dde-connection-decls"), (_TABLE, "dde-links")}


class OdfStage:
    name: ClassVar[str] = "odf"
    formats: ClassVar[frozenset[str]] = ODF_TYPES

    def scan(self, src: BinaryIO, ctx: StageContext) -> None:
        _run(src, None, ctx)

    def disarm(self, src: BinaryIO, dst: BinaryIO, ctx: StageContext) -> None:
        _run(src, dst, ctx)


def _run(src: BinaryIO, dst: BinaryIO | None, ctx: StageContext) -> None:
    if ctx.type_id == FLAT:
        _flat(src, dst, ctx)
        return
    zin = ZipIn(src, ctx.account)
    mimetype: bytes | None = None
    if "mimetype" not in zin.entries:
        # old OpenOffice.org packages have none (LibreOffice opens them by the manifest,
        # as the sniffer does): the output gets the one the manifest names
        mimetype = f"application/vnd.oasis.opendocument.{ctx.type_id.split('.', 1)[1]}"\
            .encode()
        ctx.record("odf.repaired", "mimetype", action=Action.REPAIRED,
                   detail="the package had no mimetype entry: the manifest's type written")
    if MANIFEST not in zin.entries:
        raise Malformed("the package has no META-INF/manifest.xml")
    manifest = _parse(zin, MANIFEST)
    if any(X.local(el.tag) == "encryption-data" for el in manifest.root.iter()):
        raise EncryptedContent("document is password-protected")
    media = {el.get(f"{{{_MANIFEST}}}full-path", ""): el.get(f"{{{_MANIFEST}}}media-type", "")
             for el in manifest.root if X.local(el.tag) == "file-entry"}
    removed: set[str] = set()
    for name in zin.names:
        folder = _folder(name)
        if apple_double(name):  # the Finder's resource forks: not part of the document
            removed.add(name)
            ctx.record("odf.resource_fork", name, action=Action.REMOVED)
        elif folder is not None:
            removed.add(name)
            if zin.size(name):  # LibreOffice writes empty Configurations2/ files: no finding
                kind, detail = _FOLDERS[folder]
                ctx.record(kind, name, action=Action.REMOVED, detail=detail)
        elif media.get(name) == "application/vnd.sun.star.oleobject" or (
                _is_object(name) and zin.head(name, 8) == bytes.fromhex("D0CF11E0A1B11AE1")):
            removed.add(name)
            ctx.record("odf.ole_object", name, action=Action.REMOVED,
                       detail="OLE object (its preview picture stays)")
    keep_links = ctx.keeps("hyperlinks")
    replaced: dict[str, bytes] = {}
    for name in zin.names:
        if name not in removed and (name.lower().endswith(".svg")
                                    or media.get(name) == "image/svg+xml"):
            _svg_picture(zin, name, ctx, removed, replaced)
    for name in zin.names:
        if name in removed or name == MANIFEST or not name.endswith(".xml"):
            continue
        try:
            doc = _parse(zin, name)
        except Malformed as exc:
            if name in _OPTIONAL:
                # metadata or view settings that do not parse (LibreOffice's
                # tdf112122.odt: an unbound prefix in meta.xml): LibreOffice opens the
                # document without them, and so it goes, without them
                removed.add(name)
                ctx.record("odf.repaired", name, action=Action.REMOVED,
                           detail=f"{exc}: left out")
                continue
            _broken_object(zin, name, exc, ctx, removed, replaced)
            continue
        if _clean(doc, name, ctx, keep_links):
            replaced[name] = X.serialize(doc)
    if removed:
        _prune_manifest(manifest, removed)
        replaced[MANIFEST] = X.serialize(manifest)
    for name, scrubbed in zin.scrubbed.items():
        ctx.record("xml.dtd", name, action=Action.REMOVED, detail=scrubbed.detail)
    if dst is not None and ctx.mode is Mode.DISARM:
        _write(zin, removed, replaced, dst, mimetype)


#: parts a document opens without (its metadata and view settings)
_OPTIONAL = frozenset({"meta.xml", "settings.xml"})


def _broken_object(zin: ZipIn, name: str, exc: Malformed, ctx: StageContext,
                   removed: set[str], replaced: dict[str, bytes]) -> None:
    """A part of an embedded sub-document (``Object 1/content.xml``) that does not
    parse: the object goes whole, the document keeps its preview picture
    (``ObjectReplacements/Object 1``), as LibreOffice shows it. A broken part of the
    document itself stays fatal (Malformed)."""
    folder = name.split("/", 1)[0] + "/" if "/" in name else ""
    if not folder or not _is_object(folder.rstrip("/")):
        raise exc
    gone = {n for n in zin.names if n.startswith(folder)}
    removed.update(gone | {folder})
    for n in gone:
        replaced.pop(n, None)
    ctx.record("odf.broken_object", folder.rstrip("/"), action=Action.REMOVED,
               detail=f"embedded object that cannot be read ({exc}); its preview picture "
               "stays")


def _svg_picture(zin: ZipIn, name: str, ctx: StageContext, removed: set[str],
                 replaced: dict[str, bytes]) -> None:
    """An SVG picture goes through the SVG stage: LibreOffice draws it without running
    it, but exporting the picture hands it to a browser. Kept cleaned, or removed."""
    result = ctx.recurse(zin.read(name), name)
    writing = ctx.mode is Mode.DISARM
    if not result.verdict.delivered or (writing and result.data is None):
        removed.add(name)
        ctx.record("odf.svg_image", name, action=Action.REMOVED,
                   detail=f"{result.type} {result.verdict}: {result.reason or ''}".strip(": "))
    elif writing and result.data is not None and (result.verdict is not Verdict.CLEAN
                                                  or result.type != "svg"):
        replaced[name] = result.data
        ctx.record("odf.svg_image", name, action=Action.DISARMED,
                   detail=f"{result.type} disarmed and kept")
    elif not writing and result.residual:
        ctx.record("odf.svg_image", name, action=Action.DISARMED,
                   detail=f"{result.type} disarmed and kept")


def _flat(src: BinaryIO, dst: BinaryIO | None, ctx: StageContext) -> None:
    """A single-file OpenDocument: the same cleaning over the one XML document."""
    data = src.read()
    data = xml_wide.as_utf8(data, "the XML document") or data
    scrubbed = xml_dtd.scrub(data)
    if scrubbed is not None:
        ctx.record("xml.dtd", "!DOCTYPE", action=Action.REMOVED, detail=scrubbed.detail)
        data = scrubbed.data
    doc = X.parse(xml_dtd.without_doctype(data) or data, "the XML document")
    if X.local(doc.root.tag) != "document" or X.ns(doc.root.tag) != _OFFICE:
        raise Malformed("not a single-file OpenDocument (no office:document root)")
    changed = _clean(doc, "document", ctx, ctx.keeps("hyperlinks"))
    if dst is not None and ctx.mode is Mode.DISARM:
        dst.write(X.serialize(doc) if changed or scrubbed is not None else data)


def _parse(zin: ZipIn, name: str) -> X.XmlDoc:
    """A part parsed with DTDs refused: an entity-declaring DTD was already cut out by
    ZipIn (reported), a DTD without entities (OpenOffice.org's manifest) is skipped."""
    data = zin.read(name)  # in UTF-8 already when stored in UTF-16, UTF-7, EBCDIC
    return X.parse(xml_dtd.without_doctype(data) or data, name)


def _folder(name: str) -> str | None:
    """The removed folder ``name`` lies in, at the top or in an embedded sub-document
    (``Object 1/Basic/…``: an embedded document carries its own libraries)."""
    return next((f for f in _FOLDERS if name.startswith(f) or f"/{f}" in name), None)


def _is_object(name: str) -> bool:
    return posixpath.basename(name).startswith("Object ")


def _clean(doc: X.XmlDoc, part: str, ctx: StageContext, keep_links: bool) -> bool:
    """Remove what runs, loads or links from one XML part; whether it changed."""
    parents = doc.parents()
    counts: dict[str, int] = {}
    remove: list[Element] = []
    unwrap: list[Element] = []
    dropped = False                                         # an attribute removed

    def where(name: str) -> str:
        counts[name] = counts.get(name, 0) + 1
        return f"{part}#{name}[{counts[name]}]"

    stack = [doc.root]
    while stack:
        el = stack.pop()
        key = (X.ns(el.tag), X.local(el.tag))
        name = key[1]
        if key in _CONTAINERS and (len(el) == 0 or (key == _SCRIPTS and _empty(el))):
            continue
        found = _REMOVE.get(key) or _UNWRAP.get(key)
        if found is not None:
            kind, detail = found
            ctx.record(kind, where(name), action=Action.REMOVED, detail=detail)
            if key in _REMOVE:
                remove.append(el)
                continue                                    # its content goes with it
            unwrap.append(el)
        href = el.get(_XLINK_HREF)
        target = (href or "").strip()
        if href is None or found is not None or _internal(target, part, key):
            pass
        elif key in _LINKS:
            web = is_web(target)
            keep = web and keep_links
            ctx.record("odf.hyperlink", where(name),
                       action=Action.KEPT if keep else Action.REMOVED,
                       detail=link_detail(target, keep) if web else describe_target(target))
            if not keep:
                unwrap.append(el)                           # its text stays
        else:
            ctx.record("odf.external_link", where(name), action=Action.REMOVED,
                       detail=f"{name} loading {describe_target(target)}")
            if key == (_DRAW, "object"):
                remove.append(el)                           # a linked object: nothing left
                continue
            del el.attrib[_XLINK_HREF]
            dropped = True
        stack.extend(reversed(list(el)))
    for el in remove:
        X.remove(parents, el)
    X.unwrap_all(parents, unwrap)
    return bool(remove or unwrap) or dropped


#: what makes a script container more than LibreOffice's empty Basic library list
_SUBSTANCE = frozenset({"module", "source-code", "library-linked", "event-listener"})


def _empty(el: Element) -> bool:
    """office:scripts holding only empty library declarations, as LibreOffice writes
    into every single-file document."""
    for sub in el.iter():
        if sub is not el and X.local(sub.tag) in _SUBSTANCE:
            return False
        if (sub.text or "").strip() or (sub is not el and (sub.tail or "").strip()):
            return False
    return True


_CHART_NS = "urn:oasis:names:tc:opendocument:xmlns:chart:1.0"


def _internal(target: str, part: str = "", key: tuple[str, str] = ("", "")) -> bool:
    """A place in the document ("#Table1"), a file of the package ("./Object 1",
    "Pictures/1.png"), or, from inside an embedded sub-document (``Object 1/``), the
    document holding it: an embedded chart names its data source ``..``, the
    spreadsheet it sits in."""
    if target.startswith("#") or _packaged(target.removeprefix("./")):
        return True
    folder = part.split("/", 1)[0] if "/" in part else ""
    if part == "document" and key == (_CHART_NS, "chart") and target.rstrip("/") == "..":
        return True          # a single-file document's inline chart says the same
    if not _is_object(folder) or ":" in target or target.startswith(("/", "\\")):
        return False
    inside = posixpath.normpath(posixpath.join(folder, target.replace("\\", "/")
                                               .removeprefix("./")))
    return inside == "." or _packaged(inside)


def _packaged(target: str) -> bool:
    """A reference to a file of the package itself ("Pictures/1.png", "Object 1")."""
    return ":" not in target and not target.startswith(("/", "\\")) \
        and ".." not in target.replace("\\", "/").split("/")   # Windows reads \ as /


def _prune_manifest(manifest: X.XmlDoc, removed: set[str]) -> None:
    gone = {n.rstrip("/") for n in removed}
    for el in list(manifest.root):
        path = el.get(f"{{{_MANIFEST}}}full-path", "").rstrip("/")
        if path in gone or _folder(path + "/") is not None:
            manifest.root.remove(el)


def _write(zin: ZipIn, removed: set[str], replaced: dict[str, bytes], dst: BinaryIO,
           mimetype: bytes | None = None) -> None:
    """``mimetype``: the entry to write first when the package had none."""
    zout = ZipOut(dst)
    if mimetype is not None:
        zout.add_stored("mimetype", mimetype)
    elif zin.entries["mimetype"].info.compress_type == 0:
        zout.copy(zin, "mimetype")
    else:
        zout.add_stored("mimetype", zin.read("mimetype"),
                        zin.entries["mimetype"].info.date_time)
    for name in zin.names:
        if name in removed or name == "mimetype":
            continue
        if name in replaced:
            zout.add(name, replaced[name], zin.entries[name].info.date_time)
        else:
            zout.copy(zin, name)
    zout.close()


registry.register(OdfStage())
