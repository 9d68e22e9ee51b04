"""The OPC package model: parts, content types and relationships.

A package comes from a zip (:class:`ZipSource`) or from a Flat OPC document
(:class:`MemorySource`); the disarm logic only sees this model. Part names are the
zip entry names without a leading slash ("word/document.xml"); OPC compares them
case-insensitively, so lookups go through :meth:`Package.find`.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import unquote
from xml.etree.ElementTree import Element

from gateway.errors import Malformed
from gateway.stages import ooxml_xml as X

CT_PART = "[Content_Types].xml"
RELS_CT = "application/vnd.openxmlformats-package.relationships+xml"
OFFICE_DOCUMENT = "officeDocument"
#: a Visio package's main part (Visio names it its own way)
VISIO_DOCUMENT = "http://schemas.microsoft.com/visio/2010/relationships/document"
#: an XPS document's FixedDocumentSequence (XPS 1.0, OpenXPS)
XPS_DOCUMENT = ("http://schemas.microsoft.com/xps/2005/06/fixedrepresentation",
                "http://schemas.openxps.org/oxps/v1.0/fixedrepresentation")


class Source(Protocol):
    names: list[str]

    def read(self, name: str) -> bytes: ...
    def head(self, name: str, n: int) -> bytes: ...
    def check(self, name: str) -> None: ...
    def size(self, name: str) -> int: ...


@dataclass(slots=True)
class MemorySource:
    parts: dict[str, bytes]
    names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.names = list(self.parts)

    def read(self, name: str) -> bytes:
        return self.parts[name]

    def head(self, name: str, n: int) -> bytes:
        return self.parts[name][:n]

    def check(self, name: str) -> None:
        return None

    def size(self, name: str) -> int:
        return len(self.parts[name])


# ----------------------------------------------------------------------- relationships


@dataclass(slots=True)
class Rel:
    id: str
    type: str
    target: str
    external: bool
    part: str | None           # the resolved part name for an internal target present
    element: Element

    @property
    def kind(self) -> str:
        """The type's last segment: the same for transitional, strict and MS types."""
        return self.type.rstrip("/").rsplit("/", 1)[-1]


@dataclass(slots=True)
class RelsPart:
    name: str
    source: str                 # "" for the package itself
    doc: X.XmlDoc
    rels: list[Rel]


def rels_name(part: str) -> str:
    folder, base = posixpath.split(part)
    return posixpath.join(folder, "_rels", base + ".rels") if part else "_rels/.rels"


def rels_source(name: str) -> str | None:
    """The part a relationships part belongs to, or None if ``name`` is not one."""
    low = name.lower()
    if low == "_rels/.rels":
        return ""
    if apple_double(name):
        return None
    folder, base = posixpath.split(name)
    if not low.endswith(".rels") or posixpath.basename(folder).lower() != "_rels":
        return None
    return posixpath.join(posixpath.dirname(folder), base[:-5])


def apple_double(name: str) -> bool:
    """A macOS resource fork the Finder's zip adds (``__MACOSX/``, ``._name``): not a
    part of the package, whatever its name ends in; it goes as unreferenced."""
    return name.startswith("__MACOSX/") or posixpath.basename(name).startswith("._")


# ----------------------------------------------------------------------- content types


@dataclass(slots=True)
class ContentTypes:
    defaults: dict[str, str] = field(default_factory=dict)      # ext (lower) -> type
    overrides: dict[str, str] = field(default_factory=dict)     # part (lower) -> type
    changed: bool = False

    @classmethod
    def parse(cls, data: bytes) -> ContentTypes:
        doc = X.parse(data, CT_PART)
        ct = cls()
        for el in doc.root:
            name = X.local(el.tag)
            if name == "Default":
                ct.defaults[el.get("Extension", "").lower()] = el.get("ContentType", "")
            elif name == "Override":
                part = unquote(el.get("PartName", "")).lstrip("/").lower()
                ct.overrides[part] = el.get("ContentType", "")
        return ct

    def get(self, part: str) -> str:
        found = self.overrides.get(part.lower())
        if found is not None:
            return found
        ext = posixpath.splitext(part)[1].lstrip(".").lower()
        return self.defaults.get(ext, "")

    def set(self, part: str, ctype: str) -> None:
        if self.get(part) != ctype or part.lower() not in self.overrides:
            self.overrides[part.lower()] = ctype
            self.changed = True

    def drop(self, part: str) -> None:
        if self.overrides.pop(part.lower(), None) is not None:
            self.changed = True

    def drop_default(self, ext: str) -> None:
        if self.defaults.pop(ext, None) is not None:
            self.changed = True

    def serialize(self, names: dict[str, str]) -> bytes:
        """[Content_Types].xml; ``names`` maps lower-case part names to their spelling."""
        out = ['<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">']
        for ext, ctype in self.defaults.items():
            out.append(f'<Default Extension="{_esc(ext)}" ContentType="{_esc(ctype)}"/>')
        for part, ctype in self.overrides.items():
            if part in names:
                out.append(f'<Override PartName="/{_esc(names[part])}" '
                           f'ContentType="{_esc(ctype)}"/>')
        out.append("</Types>")
        return X.XML_DECL + "".join(out).encode("utf-8")


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")


# ----------------------------------------------------------------------------- package


class Package:
    def __init__(self, source: Source, content_types: ContentTypes) -> None:
        self.source = source
        self.ct = content_types
        self.names = [n for n in source.names if n != CT_PART]
        self._lower = {n.lower(): n for n in self.names}
        self.rels: dict[str, RelsPart] = {}          # source part -> its relationships
        for name in self.names:
            src = rels_source(name)
            if src is not None:
                self.rels[self.find(src) or src] = self._load_rels(name, src)
        self.parts = [n for n in self.names if rels_source(n) is None]
        root = self.rels.get("")
        rels = [r for r in (root.rels if root else []) if r.part is not None]
        # Visio's and XPS's own types count only where no officeDocument relationship
        # exists: a Word package naming a second "main" part must not be read as a
        # drawing or a print-out
        main = [r for r in rels if r.kind == OFFICE_DOCUMENT] or \
            [r for r in rels if r.type == VISIO_DOCUMENT] or \
            [r for r in rels if r.type in XPS_DOCUMENT]
        if not main:
            raise Malformed("the package has no main document part")
        self.main = main[0].part or ""

    def find(self, name: str) -> str | None:
        return self._lower.get(name.lower())

    def read(self, name: str) -> bytes:
        return self.source.read(name)

    def head(self, name: str, n: int) -> bytes:
        """The first ``n`` bytes of a part (its magic number), without reading it all."""
        return self.source.head(name, n)

    def rels_of(self, part: str) -> list[Rel]:
        rp = self.rels.get(part)
        return rp.rels if rp else []

    def all_rels(self) -> Iterator[tuple[RelsPart, Rel]]:
        for rp in self.rels.values():
            for rel in rp.rels:
                yield rp, rel

    def _load_rels(self, name: str, source: str) -> RelsPart:
        data = self.read(name)
        doc = X.parse(data, name)
        rels: list[Rel] = []
        ids: set[str] = set()
        for el in doc.root:
            if X.local(el.tag) != "Relationship":
                continue
            rid = el.get("Id", "")
            if not rid or rid in ids:
                raise Malformed(f"{name}: missing or duplicate relationship id")
            ids.add(rid)
            target = el.get("Target", "")
            external = el.get("TargetMode", "").lower() == "external"
            part = None if external else self.resolve(source, target)
            rels.append(Rel(rid, el.get("Type", ""), target, external, part, el))
        return RelsPart(name, source, doc, rels)

    def resolve(self, source: str, target: str) -> str | None:
        """The part an internal target names, if it exists."""
        target = target.split("#", 1)[0].replace("\\", "/")
        if not target or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", target):
            return None
        base = "" if target.startswith("/") else posixpath.dirname(source)
        for candidate in (target, unquote(target)):
            joined = posixpath.normpath(posixpath.join("/", base, candidate.lstrip("/")))
            found = self.find(joined.lstrip("/"))
            if found is not None and found != CT_PART:
                return found
        return None


def relative_target(source: str, part: str) -> str:
    """A relationship target from ``source``'s folder to ``part``."""
    return posixpath.relpath("/" + part, "/" + posixpath.dirname(source))
