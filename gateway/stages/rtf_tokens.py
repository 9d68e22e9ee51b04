"""An RTF tokenizer over bytes that reads the way Microsoft Word reads.

Word, not the specification, is the reader that attackers target, so the rules
follow what oletools' rtfobj learned about Word's parser:

* ``{`` and ``}`` open and close groups; nesting is the caller's business (the
  tokenizer is a flat, iterative scanner, so deep nesting costs no stack).
* A control word is ``\\`` + ASCII letters + an optional signed decimal
  parameter + an optional single space (the delimiter, part of the token).
  Word reads at most 254 bytes for ``\\`` + name + parameter: a longer
  parameter is cut there and the rest is plain text; a name longer than 250
  letters is cut at 250 letters (rtfobj gives up on those; Word's exact
  behaviour is unknown — the cut can't turn text into a control word).
* ``\\'`` always swallows the next two bytes, whatever they are (Word does). If
  one of them is ``\\``, ``{`` or ``}`` readers disagree on the structure, so the
  input is refused (:class:`Malformed`) rather than guessed.
* ``\\binN`` is followed by N raw bytes that are never tokenized. A missing or
  negative N means 0 (as in Word). A length that runs past the end of the input
  gives a BIN token to the end named ``short``: readers disagree on what follows
  (the rest of the file as data, or as RTF), so the caller removes the word and
  everything after it. A parameter so long that Word would cut it (LibreOffice
  doesn't) is refused: readers disagree there, and no real writer produces it. So is
  ``\\BIN`` in any other case (control words are case-sensitive, but a reader
  that disagrees would skip different bytes).
* Everything else up to the next ``\\``, ``{`` or ``}`` is one text token.

A caller that has no use for most of a document's tokens can pass a ``run``
pattern and a ``plain`` callback. ``run`` must match at every position (possibly
nothing); the match up to the start of its group 1 is a stretch of whole tokens
(possibly empty), and the match goes on as far as a stretch could still start.
Where ``plain()`` says the caller has no use for plain tokens right now and the
stretch there is not empty, one RUN token stands for the tokens in it (the caller
vouches that nothing in them matters to it).

The scanner is one compiled regular expression applied at each position, so
long runs of text (hex object data) cost one match, not one loop per byte.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from gateway.errors import Malformed

TEXT, OPEN, CLOSE, WORD, SYMBOL, BIN, RUN = range(7)

MAX_NAME = 250        # letters Word reads in a control word name (rtfobj)
MAX_WORD = 254        # bytes of "\" + name + parameter Word reads (rtfobj)

_TOKEN = re.compile(
    rb"([^\\{}]+)"                              # 1 text
    rb"|([{}])"                                   # 2 brace
    rb"|\\(?:([A-Za-z]+)(-?[0-9]+)?( )?"        # 3 name, 4 parameter, 5 delimiter
    rb"|'(.{0,2})"                                # 6 hex escape
    rb"|(.)?)",                                   # 7 control symbol
    re.S)
_HEX = re.compile(rb"[0-9A-Fa-f]{2}")
_GLUE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-")


@dataclass(slots=True)
class Token:
    type: int
    start: int
    end: int
    name: bytes = b""          # WORD: the control word; SYMBOL: the character after "\"
    param: int | None = None   # WORD: numeric parameter; SYMBOL "\'": the byte value
    bare: bool = False         # WORD: ended without a delimiter space (see glue hazards)


def tokens(data: bytes, run: re.Pattern[bytes] | None = None,
           plain: Callable[[], bool] | None = None) -> Iterator[Token]:
    """Yield the tokens of ``data`` in order; together they cover every byte.

    ``run``/``plain``: at each boundary ``plain()`` is asked (lazily: after the caller
    has handled every token before it); where it says True and ``run`` finds a stretch,
    one RUN token is yielded for it. Where no stretch starts, none is looked for again
    before the end of ``run``'s match, so each byte is scanned about once however the
    document is made."""
    pos, size = 0, len(data)
    match = _TOKEN.match
    run_match = run.match if run is not None and plain is not None else None
    ask: Callable[[], bool] = plain or (lambda: False)
    quiet = 0  # no stretch is looked for before this offset
    while pos < size:
        if run_match is not None and pos >= quiet and ask():
            r = run_match(data, pos)
            assert r is not None  # it matches everywhere, possibly nothing
            stop = r.start(1)
            if stop > pos:
                yield Token(RUN, pos, stop)
                pos = stop
                continue
            quiet = r.end()
        m = match(data, pos)
        assert m is not None  # every byte starts some alternative
        end = m.end()
        text, brace, name, param, space, pair, sym = m.groups()
        if text is not None:
            yield Token(TEXT, pos, end)
        elif brace is not None:
            yield Token(OPEN if brace == b"{" else CLOSE, pos, end)
        elif name is not None:
            if len(name) > MAX_NAME or 1 + len(name) + len(param or b"") > MAX_WORD:
                tok = _long_word(pos, name, param or b"")
            else:
                tok = Token(WORD, pos, end, name, int(param) if param else None, space is None)
            if len(name) == 3 and name != b"bin" and name.lower() == b"bin":
                raise Malformed(f"\\{name.decode()} at byte {pos}: readers disagree on its case")
            yield tok
            end = tok.end
            if name == b"bin" and tok.param is not None and tok.param > 0:
                if end + tok.param > size:
                    yield Token(BIN, end, size, b"short", tok.param)
                    return
                yield Token(BIN, end, end + tok.param)
                end += tok.param
        elif pair is not None:
            if any(c in b"\\{}" for c in pair):
                raise Malformed(f"ambiguous hex escape at byte {pos}")
            yield Token(SYMBOL, pos, end, b"'", int(pair, 16) if _HEX.fullmatch(pair) else None)
        else:
            yield Token(SYMBOL, pos, end, sym or b"")
        pos = end


def _long_word(pos: int, name: bytes, param: bytes) -> Token:
    """A control word longer than Word reads: cut where Word cuts, the rest is text."""
    if len(name) > MAX_NAME:
        return Token(WORD, pos, pos + 1 + MAX_NAME, name[:MAX_NAME], None, True)
    if name == b"bin":  # Word cuts the length, other readers don't: they'd desync
        raise Malformed(f"\\bin at byte {pos} has a parameter longer than Word reads")
    param = param[:MAX_WORD - 1 - len(name)]
    if param in (b"", b"-"):
        return Token(WORD, pos, pos + 1 + len(name), name, None, True)
    return Token(WORD, pos, pos + 1 + len(name) + len(param), name, int(param), True)


# ----------------------------------------------------------------------- text decoding


def symbol_text(tok: Token) -> str:
    """The text a control symbol stands for (for reading field instructions)."""
    if tok.name == b"'":
        return chr(tok.param) if tok.param is not None else ""
    return {b"\\": "\\", b"{": "{", b"}": "}", b"~": " ", b"_": "-",
            b"\t": " "}.get(tok.name, "")


def unicode_char(param: int | None) -> str:
    """The character of ``\\uN`` (N is a signed 16-bit value in RTF)."""
    if param is None:
        return ""
    value = param + 65536 if param < 0 else param
    return chr(value) if 0 <= value < 0x110000 else ""


_WORD_TEXT = {b"tab": " ", b"par": " ", b"line": " ", b"emspace": " ", b"enspace": " ",
              b"qmspace": " ", b"lquote": "'", b"rquote": "'", b"ldblquote": '"',
              b"rdblquote": '"'}


def word_text(name: bytes) -> str:
    """The text a control word stands for, if any (``\\tab``, ``\\ldblquote``…)."""
    return _WORD_TEXT.get(name, "")


# ---------------------------------------------------------------------------- splicing


def merge(cuts: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Byte ranges to cut, sorted, with overlapping and touching ranges merged."""
    merged: list[tuple[int, int]] = []
    for start, stop in sorted(c for c in cuts if c[1] > c[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(stop, merged[-1][1]))
        else:
            merged.append((start, stop))
    return merged


def cut_test(cuts: list[tuple[int, int]]) -> Callable[[int], bool]:
    """Whether a position lies inside the merged ``cuts`` (a binary search each)."""
    starts = [c[0] for c in cuts]

    def inside(pos: int) -> bool:
        i = bisect.bisect_right(starts, pos) - 1
        return i >= 0 and cuts[i][0] <= pos < cuts[i][1]

    return inside


def count_uncut(positions: list[int], cuts: list[tuple[int, int]]) -> int:
    """How many of ``positions`` lie outside the merged ``cuts``."""
    inside = cut_test(cuts)
    return sum(not inside(pos) for pos in positions)


def splice(data: bytes, cuts: list[tuple[int, int]], bare_before: set[int]) -> bytes:
    """``data`` minus the merged ``cuts``. Where a cut starts right after a control
    word without its delimiter (``bare_before``) and a letter, digit or "-" follows
    it, a space is put in so the word can't absorb what follows (``\\b`` + ``old``
    must not become ``\\bold``; ``\\bin`` + ``5`` must not become ``\\bin5``)."""
    pieces: list[bytes] = []
    pos = 0
    for start, stop in cuts:
        pieces.append(data[pos:start])
        if start in bare_before and stop < len(data) and data[stop] in _GLUE:
            pieces.append(b" ")
        pos = stop
    pieces.append(data[pos:])
    return b"".join(pieces)
