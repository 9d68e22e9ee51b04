"""Last-resort repair for PDFs qpdf cannot open: rebuild the file from its objects.

qpdf already reconstructs damaged cross-reference tables, but it gives up on some
files every viewer opens: a catalog written directly into the trailer, objects
without ``endobj``, a trailer that is missing or unreadable. Here the raw bytes are
scanned for ``N G obj`` headers; each object's extent is found with a small lexer
(strings, hex strings, comments, nested ``<< >>`` and ``[ ]``), streams are cut
at ``endstream`` and get a true /Length, and a new file with a correct
cross-reference table and trailer is written. A dictionary or array whose brackets
do not balance (a fuzzed ``> >>`` for ``>> >>``: qpdf then finds no catalog) gets
them balanced as lenient readers such as poppler read it: a stray ``>`` or a closer
that matches nothing is dropped, what is still open at the object's end (a string
too) is closed. Page objects found by shape (for a new page tree) leave out
annotations: a widget has /Parent and /Contents as a page does, but also /Rect.
qpdf then parses every object itself; nothing here interprets content, and the
rebuilt document goes through the same two phases and the same verify step as any
other.

Encrypted files and files whose objects live in object streams are not salvaged; a
trailer's /Encrypt that is not a dictionary is ignored, as poppler ignores it.
"""

from __future__ import annotations

import re

_WS = b" \t\r\n\f\x00"
_DELIMS = b"()<>[]{}/%"
_HEADER = re.compile(rb"(?<![0-9])(\d{1,10})[ \t\r\n\f\x00]+(\d{1,5})[ \t\r\n\f\x00]+"
                     rb"obj(?![A-Za-z])")
_TRAILER = re.compile(rb"trailer(?![A-Za-z])")
_ENDSTREAM = re.compile(rb"\r?\n?endstream")
_LENGTH = re.compile(rb"/Length(?=[\s/\[<(])\s*(?:\d+\s+\d+\s+R(?![A-Za-z])|\d+)")
_REF = re.compile(rb"\s*(\d+)\s+(\d+)\s+R(?![A-Za-z])")
_REF_TAIL = re.compile(rb"\s+\d+\s+R(?![A-Za-z])")
_BOUND = re.compile(rb"(?<![A-Za-z])(?:endobj|stream|endstream|xref|trailer)(?![A-Za-z])"
                    rb"|(?<![0-9])\d{1,10}[ \t\r\n\f\x00]+\d{1,5}[ \t\r\n\f\x00]+obj(?![A-Za-z])")
_PAGE = re.compile(rb"/Type\s*/Page(?![A-Za-z0-9])|/Parent(?=[\s/<\[(]).*?/(?:Contents|MediaBox)"
                   rb"|/(?:Contents|MediaBox)(?=[\s/<\[(]).*?/Parent(?![A-Za-z])", re.DOTALL)
_KIDS = re.compile(rb"/Kids(?![A-Za-z])")
#: annotations (widgets have /Parent and /Contents too) must have /Rect; a page has none
_RECT = re.compile(rb"/Rect(?=[\s/<\[(])")
_TYPED_PAGE = re.compile(rb"/Type\s*/Page(?![A-Za-z0-9])")
_PAGES = re.compile(rb"/Pages(?=[\s/<\[(])")
ENCRYPT = re.compile(rb"/Encrypt(?![A-Za-z])")
_CATALOG = re.compile(rb"/Type\s*/Catalog(?![A-Za-z0-9])")

#: objects beyond this many are not salvaged (a file this broken is not worth it)
MAX_OBJECTS = 100_000


def _skip(data: bytes, i: int) -> int:
    """Skip whitespace and comments."""
    n = len(data)
    while i < n:
        c = data[i]
        if c in _WS:
            i += 1
        elif c == 0x25:  # %
            while i < n and data[i] not in b"\r\n":
                i += 1
        else:
            break
    return i


def _string_end(data: bytes, i: int, limit: int | None = None) -> int:
    depth, n = 0, len(data) if limit is None else min(limit, len(data))
    while i < n:
        c = data[i]
        if c == 0x5C:  # backslash
            i += 2
            continue
        if c == 0x28:
            depth += 1
        elif c == 0x29:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return n


def _token_end(data: bytes, i: int, limit: int | None = None) -> int:
    n = len(data) if limit is None else min(limit, len(data))
    while i < n and data[i] not in _WS and data[i] not in _DELIMS:
        i += 1
    return i


def value_end(data: bytes, i: int, limit: int | None = None) -> int:
    """End of the PDF value starting at ``i`` (after whitespace); a bare token stops early.
    ``limit``: where the value must end at the latest (the next object or trailer of a
    damaged file: an unclosed ``<<`` or ``(`` would otherwise run to the end of the data
    from every object, quadratic time)."""
    i = _skip(data, i)
    n, depth = len(data) if limit is None else min(limit, len(data)), 0
    while i < n:
        i = _skip(data, i)
        if i >= n:
            break
        c = data[i]
        if data.startswith(b"<<", i):
            depth += 1
            i += 2
        elif data.startswith(b">>", i):
            depth -= 1
            i += 2
        elif c == 0x28:
            i = _string_end(data, i, n)
        elif c == 0x3C:  # hex string
            end = data.find(b">", i, n)
            i = n if end < 0 else end + 1
        elif c in b"[{":
            depth += 1
            i += 1
        elif c in b"]}":
            depth -= 1
            i += 1
        elif c == 0x2F:  # name
            i = _token_end(data, i + 1, n)
        else:
            end = _token_end(data, i, n)
            word = data[i:end]
            if depth <= 0 and word in (b"endobj", b"stream", b"obj", b"trailer", b"xref"):
                return i
            i = max(end, i + 1)
            if depth <= 0:
                m = _REF_TAIL.match(data, i)
                return m.end() if m and word.isdigit() else i
        if depth <= 0:
            return i
    return n


class _Object:
    __slots__ = ("body", "gen", "stream")

    def __init__(self, gen: int, body: bytes, stream: bytes | None) -> None:
        self.gen, self.body, self.stream = gen, body, stream


def _open_parens(data: bytes, i: int) -> int:
    """How many of the string starting at ``i`` are still open at the end of ``data``."""
    depth, n = 0, len(data)
    while i < n:
        c = data[i]
        if c == 0x5C:
            i += 2
            continue
        depth += (c == 0x28) - (c == 0x29)
        if depth == 0:
            return 0
        i += 1
    return depth


#: arrays and dictionaries nested deeper than this are cut (qpdf refuses the whole
#: object from depth 500 on; poppler reads it): the part beyond becomes null
MAX_DEPTH = 400


def balanced(body: bytes) -> bytes:
    """``body`` with its ``<< >>`` and ``[ ]`` balanced (unchanged when they are), and
    anything nested deeper than ``MAX_DEPTH`` replaced by ``null``."""
    if not body.startswith((b"<<", b"[")):
        return body
    out = bytearray()
    stack: list[bytes] = []
    cut = -1                # the depth at which a too deep part is being left out
    i, n, changed = 0, len(body), False

    def emit(chunk: bytes) -> None:
        if cut < 0:
            out.extend(chunk)

    def push(closer: bytes) -> None:
        nonlocal cut, changed
        if cut < 0 and len(stack) >= MAX_DEPTH:
            cut, changed = len(stack), True
            out.extend(b" null ")
        stack.append(closer)

    def pop() -> bool:
        """Pop; whether the closer is to be written (not when it ends a cut part)."""
        nonlocal cut
        stack.pop()
        if cut >= 0 and len(stack) == cut:
            cut = -1
            return False
        return cut < 0

    while i < n:
        c = body[i]
        if c == 0x25:  # a comment runs to the end of its line
            end = _skip(body, i)
        elif body.startswith(b"<<", i):
            push(b">>")
            emit(b"<<")
            i += 2
            continue
        elif body.startswith(b">>", i):
            while stack and stack[-1] == b"]":  # an array left open inside the dict
                if pop():
                    out.extend(b"]")
                changed = True
            if not stack:
                i, changed = i + 2, True
                continue
            if pop():
                out.extend(b">>")
            i += 2
            continue
        elif c == 0x28:
            end = _string_end(body, i)
            if end == n and (missing := _open_parens(body, i)):  # a string left open
                emit(body[i:end] + b")" * missing)
                i, changed = end, True
                continue
        elif c == 0x3C:  # hex string
            end = body.find(b">", i)
            end = n if end < 0 else end + 1
        elif c == 0x5B:
            push(b"]")
            emit(b"[")
            i += 1
            continue
        elif c in (0x5D, 0x3E):  # a closer that matches nothing, or a stray ">"
            if c == 0x5D and stack and stack[-1] == b"]":
                if pop():
                    out.extend(b"]")
                i += 1
                continue
            emit(b" ")
            i, changed = i + 1, True
            continue
        else:
            end = i + 1
        emit(body[i:end])
        i = end
    if stack:  # on a line of its own: the body may end in a comment
        closers = list(reversed(stack[:cut] if cut >= 0 else stack))
        out += b"\n" + b" ".join(closers)
        changed = True
    return bytes(out) if changed else body


def _bound(data: bytes, start: int) -> int:
    """Where the next object, stream, trailer or xref section starts after ``start``."""
    found = _BOUND.search(data, start)
    return found.start() if found is not None else len(data)


def _objects(data: bytes) -> dict[int, _Object]:
    found: dict[int, _Object] = {}
    pos = 0
    while len(found) < MAX_OBJECTS:
        m = _HEADER.search(data, pos)
        if m is None:
            break
        num, gen = int(m.group(1)), int(m.group(2))
        start = _skip(data, m.end())
        # a damaged value must not swallow the objects after it
        end = value_end(data, start, _bound(data, start))
        body = balanced(data[start:end].strip())
        pos = max(end, m.end())
        stream = None
        after = _skip(data, end)
        if data.startswith(b"stream", after):
            begin = after + 6
            if data.startswith(b"\r\n", begin):
                begin += 2
            elif data[begin:begin + 1] in (b"\n", b"\r"):
                begin += 1
            close = _ENDSTREAM.search(data, begin)
            following = _HEADER.search(data, begin)
            if close is not None and (following is None or close.start() < following.start()):
                stream, pos = data[begin:close.start()], close.end()
            else:  # no endstream before the next object: the stream ends there
                stop = following.start() if following is not None else len(data)
                stream, pos = data[begin:stop], stop
        if body and 0 < num < 10_000_000:
            found[num] = _Object(gen, body, stream)  # later revisions win
    return found


def _trailer_root(data: bytes) -> tuple[bytes | None, bytes | None]:
    """(root, info) of the last readable trailer: each a reference or a direct dict."""
    for m in reversed(list(_TRAILER.finditer(data))):
        start = _skip(data, m.end())
        if not data.startswith(b"<<", start):
            continue
        text = data[start:value_end(data, start, _bound(data, start))]
        got: dict[bytes, bytes] = {}
        for key in (b"/Root", b"/Info"):
            at = re.search(re.escape(key) + rb"(?=[\s/<\[(])", text)
            if at is None:
                continue
            vstart = _skip(text, at.end())
            ref = _REF.match(text, vstart)
            got[key] = ref.group(0).strip() if ref else text[vstart:value_end(text, vstart)]
        if b"/Root" in got:
            return got[b"/Root"], got.get(b"/Info")
    return None, None


def salvage(data: bytes) -> list[bytes]:
    """Well-formed PDFs holding the objects found in ``data``, to try in order.

    The second candidate also gets a new page tree listing every page object, for
    files whose own page tree is beyond qpdf's repair.
    """
    if re.search(rb"/ObjStm(?![A-Za-z])", data):
        return []
    objects = _objects(data)
    if ENCRYPT.search(data) and _encrypted(data, objects):
        return []
    found = _root(objects, data)
    if found is None:
        return []
    root, info = found
    candidates = [_write(objects, root, info)]
    rebuilt = _with_page_tree(objects, root)
    if rebuilt is not None:
        candidates.append(_write(rebuilt, root, info))
    return candidates


def _encrypted(data: bytes, objects: dict[int, _Object]) -> bool:
    """Whether the file is encrypted as a reader sees it: some trailer's /Encrypt is a
    dictionary. One that is not (a fuzzed ``E< /Filter ...``, a missing object) is
    ignored by poppler, which shows the file unencrypted; qpdf refuses to open it.
    /Encrypt anywhere but in a classic trailer (an xref stream) counts as encrypted."""
    seen = False
    for m in _TRAILER.finditer(data):
        start = _skip(data, m.end())
        if not data.startswith(b"<<", start):
            continue
        text = data[start:value_end(data, start, _bound(data, start))]
        at = ENCRYPT.search(text)
        if at is None:
            continue
        seen = True
        vstart = _skip(text, at.end())
        ref = _REF.match(text, vstart)
        if ref is None:
            if text.startswith(b"<<", vstart):
                return True
            continue
        obj = objects.get(int(ref.group(1)))
        if obj is not None and obj.body.startswith(b"<<"):
            return True
    return not seen or len(ENCRYPT.findall(data)) > len(_TRAILER.findall(data))


def _with_page_tree(objects: dict[int, _Object], root: bytes) -> dict[int, _Object] | None:
    ref = _REF.fullmatch(root)
    assert ref is not None
    catalog = objects[int(ref.group(1))]
    pages = [n for n, o in sorted(objects.items()) if o.stream is None and _PAGE.search(o.body)
             and not _KIDS.search(o.body)
             and (_TYPED_PAGE.search(o.body) or not _RECT.search(o.body))]
    if not pages or not catalog.body.startswith(b"<<"):
        return None
    tree = max(objects) + 1
    kids = b" ".join(b"%d %d R" % (n, objects[n].gen) for n in pages)
    out = dict(objects)
    out[tree] = _Object(0, b"<< /Type /Pages /Kids [ %s ] /Count %d >>" % (kids, len(pages)),
                        None)
    body = catalog.body
    key = _PAGES.search(body)
    if key is None:
        body = b"<< /Pages %d 0 R " % tree + body[2:]
    else:
        vstart = _skip(body, key.end())
        body = body[:vstart] + b"%d 0 R" % tree + body[value_end(body, vstart):]
    out[int(ref.group(1))] = _Object(catalog.gen, body, None)
    return out


def _root(objects: dict[int, _Object], data: bytes) -> tuple[bytes, bytes | None] | None:
    """The catalog reference (adding an object for a direct one) and /Info."""
    root, info = _trailer_root(data)
    if root is not None and not _REF.fullmatch(root):
        if not root.startswith(b"<<"):
            root = None
        else:
            num = max(objects, default=0) + 1
            objects[num] = _Object(0, root, None)
            root = b"%d 0 R" % num
    if root is not None:
        ref = _REF.fullmatch(root)
        if ref is None or int(ref.group(1)) not in objects:
            root = None
    if root is None:
        catalogs = [n for n, o in objects.items() if _CATALOG.search(o.body)]
        if not catalogs:
            return None
        root = b"%d %d R" % (catalogs[-1], objects[catalogs[-1]].gen)
    if info is not None:
        ref = _REF.fullmatch(info)
        info = info if ref and int(ref.group(1)) in objects else None
    return root, info


def _write(objects: dict[int, _Object], root: bytes, info: bytes | None) -> bytes:
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    for num in sorted(objects):
        obj = objects[num]
        offsets[num] = len(out)
        out += b"%d %d obj\n" % (num, obj.gen)
        if obj.stream is None:
            out += obj.body
        else:
            body = _LENGTH.sub(b"", obj.body, count=1)
            if body.startswith(b"<<"):
                body = b"<< /Length %d " % len(obj.stream) + body[2:]
            else:
                body = b"<< /Length %d >>" % len(obj.stream)
            out += body + b"\nstream\n" + obj.stream + b"\nendstream"
        out += b"\nendobj\n"
    size = max(objects) + 1
    xref = len(out)
    out += b"xref\n0 %d\n" % size
    for num in range(size):
        if num in offsets:
            out += b"%010d %05d n \n" % (offsets[num], objects[num].gen)
        else:
            out += b"0000000000 65535 f \n"
    extra = b" /Info " + info if info else b""
    out += b"trailer\n<< /Size %d /Root %s%s >>\nstartxref\n%d\n%%%%EOF\n" % (
        size, root, extra, xref)
    return bytes(out)
