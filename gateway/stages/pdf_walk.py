"""Phase 1 of the PDF stage: the carriers of active content, walked by structure.

Order (it decides which path names an object reached twice): the catalog's
/OpenAction and /AA, /Names (JavaScript, EmbeddedFiles, AlternatePresentations),
/AcroForm (/XFA, then the field tree through /Kids), the page tree (each page's
/AA and /Annots), then the outline tree (/First, /Next).
"""

from __future__ import annotations

from pikepdf import Array, Dictionary, Name, Object, ObjectSet, Pdf, Stream

from gateway.kinds import Action
from gateway.pipeline.api import StageContext
from gateway.stages.pdf_actions import (
    MEDIA_ANNOTS,
    Loc,
    Trigger,
    action_type,
    classify,
    flatten_chain,
    is_dictlike,
    name_of,
    rebuild_chain,
    split_entries,
)
from gateway.stages.pdf_embedded import EmbeddedFiles, text_of

ObjGen = tuple[int, int]


def clear(obj: Object) -> None:
    """Empty a dictionary in place, so every reference to it sees nothing (a stream
    keeps its /Length, which pikepdf will not delete, and loses its data)."""
    if isinstance(obj, Stream):
        obj.write(b"")
    for key in list(obj.keys()):
        if not (key == "/Length" and isinstance(obj, Stream)):
            del obj[key]


def name_tree(node: object, loc: Loc) -> list[tuple[Object, Object, Loc]]:
    """(key, value, location of the value) of every leaf entry of a name tree."""
    entries: list[tuple[Object, Object, Loc]] = []
    seen = ObjectSet()
    stack: list[tuple[object, Loc]] = [(node, loc)]
    while stack:
        here, hloc = stack.pop()
        if not is_dictlike(here) or not seen.add(here):
            continue
        names = here.get("/Names")
        if isinstance(names, Array):
            entries.extend((names[j - 1], names[j], hloc.index("Names", j))
                           for j in range(1, len(names), 2))
        kids = here.get("/Kids")
        if isinstance(kids, Array):
            stack.extend((kids[i], hloc.index("Kids", i)) for i in reversed(range(len(kids))))
    return entries


class Walk:
    """One pass over one document; the state both phases share."""

    def __init__(self, pdf: Pdf, ctx: StageContext) -> None:
        self.pdf = pdf
        self.ctx = ctx
        self.keep_links = ctx.keeps("hyperlinks")
        self.anchors: dict[ObjGen, Loc] = {}   # indirect objects with their structural path
        self.cleaned: dict[ObjGen, set[str]] = {}  # action slots cleaned here, per holder
        self.carriers = ObjectSet()            # fields, pages, annotations handled here
        self.dropped = ObjectSet()             # annotations taken off their pages
        self.repairs: list[str] = []
        self.page_count = 0
        self.blanked = False  # the document had no page: one blank page was added
        self.files = EmbeddedFiles(ctx, self.record)
        self._recorded: set[tuple[str, str, str]] = set()

    # ------------------------------------------------------------------ helpers

    def record(self, kind: str, loc: Loc | str, action: Action = Action.REMOVED,
               detail: str = "") -> None:
        key = (kind, str(loc), str(action))
        if key not in self._recorded:
            self._recorded.add(key)
            self.ctx.record(kind, str(loc), action=action, detail=detail)

    def anchor(self, obj: Object, loc: Loc) -> None:
        if obj.is_indirect:
            self.anchors.setdefault(obj.objgen, loc)

    def drop(self, annot: Object) -> None:
        self.dropped.add(annot)
        if annot.is_indirect:
            clear(annot)

    def slot(self, holder: Object, key: str, loc: Loc, trigger: Trigger, *,
             report_kept: bool = True) -> None:
        """Keep only allowed actions in ``holder[key]`` (an action and its /Next chain)."""
        if holder.is_indirect:
            self.cleaned.setdefault(holder.objgen, set()).add(key)
        value = holder.get(key)
        if value is None:
            return
        if not is_dictlike(value):
            del holder[key]
            if trigger is Trigger.OPEN and isinstance(value, Array):
                self.record("pdf.open_view", loc, detail="opening page and zoom")
                return
            self.record(trigger.kind or "pdf.unknown_action", loc, detail="malformed action entry")
            return
        items, junk = flatten_chain(value, loc)
        keep: list[Object] = []
        for item in items:
            verdict = classify(item.action, trigger, self.keep_links)
            if verdict.allowed:
                keep.append(item.action)
                if verdict.kind and report_kept:
                    self.record(verdict.kind, item.loc, Action.KEPT, verdict.detail)
            else:
                self.record(verdict.kind, item.loc, Action.REMOVED, verdict.detail)
        if trigger is Trigger.OPEN:
            # what may stay (a /GoTo to a page) only sets the opening view; nothing at all
            # runs when the document opens, so no checker sees an /OpenAction left (an
            # emptied one included)
            del holder[key]
            if keep:
                self.record("pdf.open_view", loc, detail="opening page and zoom")
            return
        if len(keep) == len(items) and not junk:
            return
        if junk:
            self.repairs.append("malformed action chain rebuilt")
        if keep:
            holder[key] = rebuild_chain(keep)
        else:
            del holder[key]

    def aa(self, holder: Object, loc: Loc, *, report_kept: bool = True) -> None:
        """Clean the additional-actions dictionary (/AA) of ``holder``."""
        if holder.is_indirect:
            self.cleaned.setdefault(holder.objgen, set()).add("/AA")
        aa = holder.get("/AA")
        if aa is None:
            return
        here = loc / "AA"
        if not is_dictlike(aa) or isinstance(aa, Stream) or "/Type" in aa or (
                aa.is_indirect and holder.is_indirect and aa.objgen == holder.objgen):
            # not an actions dictionary: a page, the catalog, or the holder itself (a
            # page whose /AA points at the page: cleaning it as one emptied the page)
            del holder["/AA"]
            self.record("pdf.additional_actions", here, detail="malformed /AA entry")
            return
        events, unreadable = split_entries(aa)
        nulls = set(aa.keys()) - {event for event, _action in events} - set(unreadable)
        for event, _action in events:
            self.slot(aa, event, here / event, Trigger.EVENT, report_kept=report_kept)
        for key in nulls:
            del aa[key]
        for key in unreadable:  # a name that is not text: no viewer event
            del aa[key]
            self.repairs.append("unreadable /AA entry dropped")
        if not aa.keys():
            del holder["/AA"]

    # -------------------------------------------------------------------- phase 1

    def run(self, root: Object) -> None:
        loc = Loc.at("/Root")
        self.anchor(root, loc)
        self.slot(root, "/OpenAction", loc / "OpenAction", Trigger.OPEN)
        self.aa(root, loc)
        self.names(root, loc)
        self.collection(root, loc)
        self.acroform(root, loc)
        self.pages(root, loc)
        self.outlines(root, loc)

    def names(self, root: Object, rloc: Loc) -> None:
        names = root.get("/Names")
        if not is_dictlike(names):
            return
        loc = rloc / "Names"
        self.anchor(names, loc)
        if "/JavaScript" in names:
            tree = loc / "JavaScript"
            entries = name_tree(names.get("/JavaScript"), tree)
            for _key, value, vloc in entries:
                typ = action_type(value) if is_dictlike(value) else None
                what = "document JavaScript" if typ in (None, "JavaScript") else f"{typ} action"
                self.record("pdf.javascript", vloc, detail=f"{what} run on open")
            if not entries:
                self.record("pdf.javascript", tree, detail="document JavaScript tree")
            del names["/JavaScript"]
        if "/EmbeddedFiles" in names:
            self.embedded_tree(names, loc / "EmbeddedFiles")
        if "/AlternatePresentations" in names:
            del names["/AlternatePresentations"]
            self.record("pdf.rich_media", loc / "AlternatePresentations",
                        detail="slideshow (alternate presentation)")

    def collection(self, root: Object, rloc: Loc) -> None:
        """A portfolio (/Collection): its custom navigator (a Flash program, /Navigator)
        goes; a portfolio left without embedded files goes too, so that a reader shows
        the pages rather than an empty file list."""
        coll = root.get("/Collection")
        if coll is None:
            return
        if is_dictlike(coll) and "/Navigator" in coll:
            del coll["/Navigator"]
            self.record("pdf.rich_media", rloc / "Collection" / "Navigator",
                        detail="portfolio navigator (a Flash program)")
        names = root.get("/Names")
        if not is_dictlike(coll) or not (is_dictlike(names) and "/EmbeddedFiles" in names):
            del root["/Collection"]

    def embedded_tree(self, names: Object, loc: Loc) -> None:
        entries = name_tree(names.get("/EmbeddedFiles"), loc)
        kept: list[Object] = []
        for key, value, vloc in entries:
            fallback = text_of(key) or ""
            if not is_dictlike(value):  # no file specification: nothing to open, only clutter
                self.record("pdf.embedded_file", vloc, detail="entry without a file "
                                                              "specification")
                continue
            if self.files.filespec(value, vloc, "pdf.embedded_file", fallback):
                kept.extend((key, value))
        if len(kept) == 2 * len(entries):
            return
        if kept:
            names["/EmbeddedFiles"] = Dictionary(Names=Array(kept))
        else:
            del names["/EmbeddedFiles"]

    def acroform(self, root: Object, rloc: Loc) -> None:
        form = root.get("/AcroForm")
        if not is_dictlike(form):
            return
        loc = rloc / "AcroForm"
        self.anchor(form, loc)
        if "/XFA" in form:
            del form["/XFA"]
            if "/NeedsRendering" in root:
                del root["/NeedsRendering"]
            self.record("pdf.xfa", loc / "XFA", detail="XFA form removed; AcroForm fields stay")
        fields = form.get("/Fields")
        if not isinstance(fields, Array):
            return
        stack: list[tuple[object, Loc]] = [(fields[i], loc.index("Fields", i))
                                           for i in reversed(range(len(fields)))]
        while stack:
            field, floc = stack.pop()
            if not is_dictlike(field) or not self.carriers.add(field):
                continue
            self.anchor(field, floc)
            self.aa(field, floc)
            self.slot(field, "/A", floc / "A", Trigger.USER)
            kids = field.get("/Kids")
            if isinstance(kids, Array):
                stack.extend((kids[i], floc.index("Kids", i)) for i in reversed(range(len(kids))))

    def pages(self, root: Object, rloc: Loc) -> None:
        """Walk the page tree; break loops in it (qpdf refuses to write those)."""
        tree = root.get("/Pages")
        if not is_dictlike(tree) or not isinstance(tree.get("/Kids"), Array):
            self._rebuild_pages(root, rloc / "Pages")
            return
        seen = ObjectSet()
        claimed = ObjectSet()       # page tree nodes some /Kids already holds
        claimed.add(tree)
        order: list[Object] = []    # page tree nodes, parents before children
        stack: list[tuple[object, Loc]] = [(root.get("/Pages"), rloc / "Pages")]
        loops = False
        while stack:
            node, loc = stack.pop()
            if not is_dictlike(node) or not seen.add(node):
                continue
            kids = node.get("/Kids")
            if isinstance(kids, Array) and name_of(node.get("/Type")) != "Page":
                self.anchor(node, loc)
                order.append(node)
                # a node listed twice (in one /Kids too: PyMuPDF's test_4147.pdf) is a
                # loop to qpdf, which then refuses the whole file
                keep = [k for k in kids
                        if not (is_dictlike(k) and "/Kids" in k and not claimed.add(k))]
                if len(keep) != len(kids):
                    loops = True
                    kids = node["/Kids"] = Array(keep)
                stack.extend((kids[i], loc.index("Kids", i)) for i in reversed(range(len(kids))))
            else:
                self.page(node, loc)
        if loops:
            self.repairs.append("loop in the page tree removed")
            self._recount(order)

    def _rebuild_pages(self, root: Object, loc: Loc) -> None:
        """A new page tree holding every page object of the file, in object order."""
        found: list[Object] = []
        for each in self.pdf.objects:
            obj: object = each
            # an annotation must have /Rect (a widget has /Parent and /Contents too)
            if isinstance(obj, Dictionary) and "/Kids" not in obj and (
                    name_of(obj.get("/Type")) == "Page"
                    or ("/Parent" in obj and "/Rect" not in obj
                        and ("/Contents" in obj or "/MediaBox" in obj))):
                found.append(obj)
        tree = self.pdf.make_indirect(Dictionary(Type=Name.Pages, Kids=Array(found),
                                                 Count=len(found)))
        for page in found:
            page["/Parent"] = tree
        root["/Pages"] = tree
        self.repairs.append(f"page tree rebuilt from {len(found)} page objects")
        self.anchor(tree, loc)
        for i, page in enumerate(found):
            self.page(page, loc.index("Kids", i))

    def blank_page(self, root: Object) -> None:
        """Give a document without a single page one blank A4 page.

        Script-only files (proofs of concept that run from /OpenAction or the
        /JavaScript name tree) and fuzzed files whose only page is unreadable have
        no page; most readers refuse a document without one. Nothing visible is lost:
        no reader found a page to show either."""
        tree = self.pdf.make_indirect(Dictionary(Type=Name.Pages, Kids=Array(), Count=1))
        page = self.pdf.make_indirect(Dictionary(
            Type=Name.Page, Parent=tree, MediaBox=Array([0, 0, 595, 842]),
            Resources=Dictionary()))
        tree["/Kids"].append(page)
        root["/Pages"] = tree
        self.page_count = 1
        self.blanked = True

    @staticmethod
    def _recount(order: list[Object]) -> None:
        counts: dict[ObjGen, int] = {}
        for node in reversed(order):
            total = 0
            kids = node.get("/Kids")
            for kid in kids if isinstance(kids, Array) else ():
                if not is_dictlike(kid):
                    continue
                if "/Kids" in kid:
                    total += counts.get(kid.objgen, 0) if kid.is_indirect else 0
                else:
                    total += 1
            node["/Count"] = total
            if node.is_indirect:
                counts[node.objgen] = total

    def page(self, page: Object, loc: Loc) -> None:
        self.page_count += 1
        self.anchor(page, loc)
        self.carriers.add(page)
        if name_of(page.get("/Type")) != "Page":
            page["/Type"] = Name.Page  # viewers skip leaves that do not say they are pages
            self.repairs.append("page without /Type /Page")
        self._contents(page)
        self.aa(page, loc)
        annots = page.get("/Annots")
        if not isinstance(annots, Array):
            return
        keep = [a for i, a in enumerate(annots) if self.annotation(a, loc.index("Annots", i))]
        if len(keep) != len(annots):
            page["/Annots"] = Array(keep)

    def _contents(self, page: Object) -> None:
        """Keep only streams in a page's /Contents: a reference to a missing object or
        any other value is drawn by no reader, and qpdf --check reports it as an error."""
        contents = page.get("/Contents")
        if contents is None or isinstance(contents, Stream):
            return
        streams = [c for c in contents if isinstance(c, Stream)] \
            if isinstance(contents, Array) else []
        if isinstance(contents, Array) and len(streams) == len(contents):
            return
        if streams:
            page["/Contents"] = Array(streams)
        else:
            del page["/Contents"]
        self.repairs.append("page content that is not a stream dropped")

    def annotation(self, annot: Object, loc: Loc) -> bool:
        """Handle one annotation of a page; False: take it off the page."""
        if not is_dictlike(annot):
            return True
        if annot in self.dropped:
            return False
        subtype = name_of(annot.get("/Subtype"))
        if subtype in MEDIA_ANNOTS:
            self.drop(annot)
            self.record(MEDIA_ANNOTS[subtype], loc, detail=f"{subtype} annotation")
            return False
        if not self.carriers.add(annot):
            return True  # a form field's widget, or an annotation on two pages: done
        self.anchor(annot, loc)
        if subtype == "FileAttachment" and not self.files.filespec(
                annot.get("/FS"), loc, "pdf.file_attachment") and not _as_stamp(annot):
            self.drop(annot)
            return False
        self.aa(annot, loc)
        self.slot(annot, "/A", loc / "A", Trigger.USER)
        self.slot(annot, "/PA", loc / "PA", Trigger.USER)
        return True

    def outlines(self, root: Object, rloc: Loc) -> None:
        outlines = root.get("/Outlines")
        if not is_dictlike(outlines):
            return
        loc = rloc / "Outlines"
        self.anchor(outlines, loc)
        seen = ObjectSet([outlines])
        # /Last and /Prev too: a viewer may walk the outline from either end
        stack: list[tuple[object, Loc]] = [(outlines.get("/Last"), loc / "Last"),
                                           (outlines.get("/First"), loc / "First")]
        while stack:
            item, iloc = stack.pop()
            if not is_dictlike(item) or not seen.add(item):
                continue
            self.anchor(item, iloc)
            self.slot(item, "/A", iloc / "A", Trigger.USER)
            stack.extend(((item.get("/Prev"), iloc / "Prev"), (item.get("/Last"), iloc / "Last"),
                          (item.get("/Next"), iloc / "Next"), (item.get("/First"), iloc / "First")))


def _as_stamp(annot: Object) -> bool:
    """A file attachment whose file went, kept as what it shows: with an appearance of
    its own (LaTeX's attachfile draws the file's name, "click here", an icon), the
    annotation becomes a stamp of that appearance without the file. Taken off the page,
    its text was lost (texlive's attachfile.pdf, etoc.pdf: 27 of them). False: it has
    no appearance to keep."""
    appearance = annot.get("/AP")
    if not is_dictlike(appearance) or "/N" not in appearance:
        return False
    annot["/Subtype"] = Name.Stamp
    for key in ("/FS", "/Name"):
        if key in annot:
            del annot[key]
    return True
