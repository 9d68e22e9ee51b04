"""PDF actions for the PDF stage: which are allowed, what a removed one is, /Next chains.

An action is allowed only when it is on the allow-list:

- ``/GoTo`` (navigation inside the document), in any slot;
- ``/Named`` with one of the standard page names (NextPage, PrevPage, FirstPage,
  LastPage), in any slot;
- ``/URI`` with an http, https or mailto address, only where a person clicks
  (``/A`` of annotations, fields and outline items) and only when the policy keeps
  hyperlinks. A ``/URI`` run automatically (``/OpenAction``, ``/AA``) is removed.

Everything else, including unknown types and actions without a type, is removed.
An action that carries ``/JS`` is JavaScript whatever its ``/S`` says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeGuard
from urllib.parse import urlsplit

from pikepdf import Array, Dictionary, Name, Object, ObjectSet, Stream, String

#: longest /Next chain walked; the rest of a longer chain is removed
MAX_CHAIN = 1000

STANDARD_NAMED = frozenset({"NextPage", "PrevPage", "FirstPage", "LastPage"})
URI_SCHEMES = frozenset({"http", "https", "mailto"})

#: action type (the /S value) -> finding kind when it is removed from a slot a person triggers
ACTION_KINDS: dict[str, str] = {
    "JavaScript": "pdf.javascript",
    "Launch": "pdf.launch",
    "SubmitForm": "pdf.submit_form",
    "ImportData": "pdf.import_data",
    "GoToR": "pdf.remote_goto",
    "GoToE": "pdf.embedded_goto",
    "Sound": "pdf.sound",
    "Movie": "pdf.movie",
    "RichMediaExecute": "pdf.rich_media",
    "Rendition": "pdf.rendition",
    "Hide": "pdf.hide",
    "SetOCGState": "pdf.set_ocg_state",
    "GoTo3DView": "pdf.goto_3d_view",
    "Trans": "pdf.transition",
    "URI": "pdf.uri",
    "Named": "pdf.other_action",      # a non-standard name (menu items: Print, SaveAs…)
    "ResetForm": "pdf.other_action",
    "Thread": "pdf.other_action",
    "GoToDp": "pdf.other_action",
    "NOP": "pdf.other_action",
    "SetState": "pdf.other_action",
}

#: annotation subtypes removed outright -> finding kind
MEDIA_ANNOTS: dict[str, str] = {
    "RichMedia": "pdf.rich_media",
    "3D": "pdf.rich_media",
    "Screen": "pdf.rendition",
    "Movie": "pdf.movie",
    "Sound": "pdf.sound",
}


class Trigger(StrEnum):
    OPEN = "open"    # /OpenAction: runs when the document opens
    EVENT = "event"  # /AA entries: run on page, field or annotation events
    USER = "user"    # /A, /PA and outline items: run when a person clicks

    @property
    def kind(self) -> str | None:
        """The kind every removed action in this slot is reported as (None: by type)."""
        return {"open": "pdf.open_action", "event": "pdf.additional_actions"}.get(self.value)


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    kind: str
    detail: str


def is_dictlike(obj: object) -> TypeGuard[Object]:
    """A dictionary or a stream (whose dictionary reads the same way)."""
    return isinstance(obj, Dictionary | Stream)


def name_of(obj: object) -> str | None:
    """The text of a PDF name without its slash, or None for anything else.

    A name whose bytes are not UTF-8 is returned as U+FFFD: it is never one of the
    names this stage allows or looks for.
    """
    if isinstance(obj, Name):
        try:
            return str(obj)[1:]
        except UnicodeError:
            return "\ufffd"
    return None


def entries(obj: Object) -> list[tuple[str, Object]]:
    """(key, value) of a dictionary in key order, leaving out keys pikepdf cannot read.

    pikepdf hands out names that are not UTF-8 as text it cannot take back (a
    TypeError on lookup). Such a key is never an action slot or an active-content
    key, so skipping it loses nothing this stage looks for.
    """
    return split_entries(obj)[0]


def split_entries(obj: Object) -> tuple[list[tuple[str, Object]], list[str]]:
    """``entries(obj)``, and the keys pikepdf cannot read (they can still be deleted)."""
    out: list[tuple[str, Object]] = []
    unreadable: list[str] = []
    for key in sorted(obj.keys()):
        try:
            value = obj.get(key)
        except (TypeError, UnicodeError):
            unreadable.append(key)
            continue
        if value is not None:
            out.append((key, value))
    return out, unreadable


def action_type(action: Object) -> str | None:
    return name_of(action.get("/S"))


_SCHEME = re.compile(rb"\s*([A-Za-z][A-Za-z0-9+.-]*):")


def _scheme(action: Object) -> str:
    raw = action.get("/URI")
    m = _SCHEME.match(bytes(raw)) if isinstance(raw, String) else None
    return m.group(1).decode("ascii").lower() if m else ""


def uri_target(action: Object) -> tuple[str, str]:
    """(scheme, short description) of a /URI action's address; never the full URI."""
    raw = action.get("/URI")
    text = bytes(raw).decode("latin-1") if isinstance(raw, String) else ""
    text = text.strip()
    try:
        parts = urlsplit(text)
    except ValueError:
        return "", "link with an invalid address"
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        host = (parts.hostname or "")[:100]
        return scheme, f"link to {scheme}://{host}"
    if scheme == "mailto":
        return scheme, "mailto link"
    if not scheme:
        return "", "link without a scheme"
    return scheme, f"link with scheme {scheme[:20]}:"


def classify(action: Object, trigger: Trigger, keep_links: bool) -> Verdict:
    """Whether ``action`` may stay in a slot with ``trigger``, and how to report it."""
    auto = trigger.kind
    typ = action_type(action)
    if typ is None:
        return Verdict(False, auto or "pdf.unknown_action", "action without a type")
    if "/JS" in action and typ != "JavaScript":
        return Verdict(False, auto or "pdf.javascript", f"{typ} action carrying JavaScript")
    if typ == "GoTo":
        return Verdict(True, "", "")
    if typ == "Named":
        named = name_of(action.get("/N"))
        if named in STANDARD_NAMED:
            return Verdict(True, "", "")
        return Verdict(False, auto or "pdf.other_action", f"named action {(named or '?')[:40]}")
    if typ == "URI":
        scheme, what = uri_target(action)
        if trigger is not Trigger.USER:
            return Verdict(False, auto or "pdf.uri", f"{what}, opened automatically")
        if not keep_links:
            return Verdict(False, "pdf.uri", f"{what}, removed by policy")
        if scheme not in URI_SCHEMES:
            return Verdict(False, "pdf.uri", f"{what}, scheme not allowed")
        return Verdict(True, "pdf.uri", what)
    kind = ACTION_KINDS.get(typ, "pdf.unknown_action")
    what = f"{typ[:40]} action" if typ in ACTION_KINDS else f"unknown action type {typ[:40]}"
    return Verdict(False, auto or kind, what)


def is_known_bad(action: Object, keep_links: bool) -> Verdict | None:
    """For a dictionary found anywhere: a Verdict if it is certainly a disallowed action.

    Outside action slots an unknown /S is not evidence of an action (structure
    elements, borders and page labels all use /S), so only known action types,
    ``/JS`` and ``/Type /Action`` count here.
    """
    typ = action_type(action)
    has_js = "/JS" in action
    if typ == "GoTo" and not has_js:
        return None  # the common case, decided without more lookups
    if typ == "URI" and keep_links and not has_js and _scheme(action) in URI_SCHEMES:
        return None
    is_action = (typ in ACTION_KINDS or has_js or name_of(action.get("/Type")) == "Action")
    if not is_action:
        return None
    verdict = classify(action, Trigger.USER, keep_links)
    return None if verdict.allowed else verdict


# ------------------------------------------------------------------------------ chains


@dataclass(frozen=True, slots=True)
class ChainItem:
    action: Object
    loc: Loc


def flatten_chain(head: object, loc: Loc) -> tuple[list[ChainItem], bool]:
    """The actions of a /Next chain in the order a viewer runs them.

    Returns the items and whether the chain held anything besides action
    dictionaries (junk, cycles, a chain longer than MAX_CHAIN) that a rebuild drops.
    """
    items: list[ChainItem] = []
    junk = False
    seen = ObjectSet()
    stack: list[tuple[object, Loc]] = [(head, loc)]
    while stack:
        action, here = stack.pop()
        if not is_dictlike(action) or not seen.add(action):
            junk = True
            continue
        if len(items) >= MAX_CHAIN:
            junk = True
            break
        items.append(ChainItem(action, here))
        nxt = action.get("/Next")
        if nxt is None:
            continue
        if isinstance(nxt, Array):
            stack.extend((nxt[i], here.index("Next", i)) for i in reversed(range(len(nxt))))
        else:
            stack.append((nxt, here / "Next"))
    return items, junk


#: keys no action has, left out of a rebuilt chain: an action whose own /A pointed back
#: at it (fuzzing) was copied with that /A, whose cleaning made a new copy, and so on
#: until the worker ran out of memory
_NOT_IN_ACTIONS = frozenset({"/Next", "/A", "/AA", "/PA", "/OpenAction"})


def rebuild_chain(actions: list[Object]) -> Dictionary:
    """A new direct action: the first of ``actions``, the others in its /Next array."""
    copies = [Dictionary({k: v for k, v in entries(a) if k not in _NOT_IN_ACTIONS})
              for a in actions]
    head = copies[0]
    if len(copies) > 1:
        head["/Next"] = Array(copies[1:])
    return head


# ----------------------------------------------------------------------------- locations


_PLAIN = re.compile(r"[A-Za-z0-9_.:\-]*\Z")


def _escape_segment(text: str) -> str:
    if _PLAIN.match(text):
        return text
    out = []
    for ch in text:
        if ch.isascii() and ch.isprintable() and ch not in " /#[]{}":
            out.append(ch)
        else:
            out.extend(f"#{b:02X}" for b in ch.encode("utf-8", "surrogateescape"))
    return "".join(out)


_State = tuple[str, str, int]  # (text before the last run, the run's segment, its length)


class Loc:
    """An object path such as ``/Root/Pages/Kids[0]/Annots[2]/A``.

    Built as a chain of segments and rendered only when a finding needs it. A run
    of more than four equal segments is written once with a count
    (``/Outlines/First/Next{12}`` is the 13th top-level outline item), so paths
    along long /Next or /Kids chains stay short.
    """

    __slots__ = ("_parent", "_seg", "_state")

    def __init__(self, parent: Loc | None = None, seg: str = "",
                 state: _State | None = None) -> None:
        self._parent, self._seg, self._state = parent, seg, state

    @classmethod
    def at(cls, path: str) -> Loc:
        return cls(state=(path, "", 0))

    def __truediv__(self, key: str) -> Loc:
        """Child by dictionary key; ``key`` with or without its leading slash."""
        return Loc(self, "/" + _escape_segment(key.removeprefix("/")))

    def index(self, key: str, i: int) -> Loc:
        """Child ``key[i]``: element ``i`` of the array under ``key``."""
        return Loc(self, f"/{_escape_segment(key.removeprefix('/'))}[{i}]")

    def item(self, i: int) -> Loc:
        """Element ``i`` of an array that is itself an element (``…/Kids[0][1]``)."""
        return Loc(self, f"[{i}]")

    def _resolve(self) -> _State:
        chain: list[Loc] = []
        node: Loc | None = self
        while node is not None and node._state is None:
            chain.append(node)
            node = node._parent
        state: _State = node._state if node is not None and node._state else ("", "", 0)
        for each in reversed(chain):
            prefix, seg, run = state
            state = (prefix, seg, run + 1) if each._seg == seg else (_render(state), each._seg, 1)
            each._state = state
        return state

    def __str__(self) -> str:
        return _render(self._resolve())

    def __repr__(self) -> str:
        return f"Loc({str(self)!r})"


def _render(state: _State) -> str:
    prefix, seg, run = state
    return prefix + seg * run if run <= 4 else f"{prefix}{seg}{{{run}}}"
