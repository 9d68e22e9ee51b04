"""Mail headers: decode whatever arrives, write back only canonical, plain-ASCII headers.

Decoding: RFC 2047 encoded words (adjacent words of one charset are joined
before decoding, since Japanese mailers split characters across words), raw
8-bit bytes (parsed with surrogateescape; decoded as UTF-8, CP932 or EUC-JP)
and raw ISO-2022-JP escapes, all through mail_charset.

Encoding: unstructured values become UTF-8 encoded words (B encoding) whenever
they are not plain printable ASCII, or when the text itself looks like an
encoded word (so nothing is decoded twice downstream). Addresses are parsed and
re-formatted; a display name is always re-encoded.

The header allow-list is decided here (see ``TOP_HEADERS``).
"""

from __future__ import annotations

import base64
import binascii
import re
from email.header import Header
from email.utils import formataddr, getaddresses

from gateway.addresses import ascii_domain
from gateway.stages.mail_charset import decode_bytes, multibyte

#: top-level headers copied to the rebuilt message, in this order. Everything else
#: (DKIM-Signature, ARC-*, Authentication-Results: invalid or forgeable after the
#: rebuild; List-Unsubscribe and friends: links; X-*: unknown) is dropped. Received
#: stays: the relay chain is what an administrator needs to trace a mail, and
#: downstream MTAs count it for loop detection.
TOP_HEADERS: tuple[str, ...] = (
    "Received", "Date", "From", "Sender", "Reply-To", "To", "Cc", "Subject", "Message-ID",
    "In-Reply-To", "References", "List-Id", "Auto-Submitted", "Precedence", "Importance",
    "Priority", "X-Priority", "Thread-Topic", "Thread-Index")
#: RFC 5322 3.6: at most one of each; duplicates are ambiguous (first kept)
SINGLE: frozenset[str] = frozenset({
    "date", "from", "sender", "reply-to", "to", "cc", "bcc", "subject", "message-id",
    "in-reply-to", "references", "mime-version", "content-type", "content-transfer-encoding",
    "content-disposition", "content-id"})
ADDRESS: frozenset[str] = frozenset({"from", "sender", "reply-to", "to", "cc"})
#: identifiers: kept only when they are plain <...> ids
IDS: frozenset[str] = frozenset({"message-id", "in-reply-to", "references"})
#: read-receipt requests: tracking, removed with a finding
RECEIPTS: frozenset[str] = frozenset({
    "disposition-notification-to", "return-receipt-to", "x-confirm-reading-to",
    "read-receipt-to"})
MAX_RECEIVED = 50
MAX_VALUE = 4000   # characters of one decoded header value we keep
MAX_NAME = 200     # characters of one display name

_EW = re.compile(r"=\?([^?\s]{1,75})\?([bBqQ])\?([^?\s]*)\?=")
_EW_GAP = re.compile(r"(\?=)[ \t\r\n]+(?==\?)")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_CTRL = re.compile(r"[\x00-\x1f\x7f\u0080-\u009f\u2028\u2029\ud800-\udfff]")
#: a mailbox we write back: dot-atom or quoted local part (printable ASCII, no quote or
#: backslash inside), and a host name (underscores too: DNS has them, mailers accept them)
_ADDR = re.compile(r"^(?:[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
                   r"|\"[ !#-\[\]-~]{1,62}\")"
                   r"@[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$")
#: RFC 5321 asks for 64 at most, but SRS and VERP return addresses run longer (a
#: 103-character one lost its mailbox) and MTAs take them: a bound, not the RFC's
_MAX_LOCAL, _MAX_DOMAIN = 256, 253
#: identifiers (Message-ID and the ids that refer to it): <...> of atext, dots and "@";
#: mailers write ids without "@" too (<msg1>, <E7015E63-...>), and threading needs them.
#: Not starting with "@", "." or "[": Python's default email policy raises on those
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_ID = re.compile(rf"<{_ATEXT}(?:\.{_ATEXT})*@(?:{_ATEXT}(?:\.{_ATEXT})*|\[[!-Z^-~]*\])>"
                 rf'|<"[!#-\[\]-~]{{1,200}}"@{_ATEXT}(?:\.{_ATEXT})*>'  # obs-id-left
                 r"|<[A-Za-z0-9!#$%&'*+/=?^_`{|}~-][A-Za-z0-9!#$%&'*+/=?^_`{|}~.@-]{0,247}>")
_ONE_MAILBOX = re.compile(r"^([^<>,]*)<([^<>]+)>\s*$")
_BARE_ID = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*@{_ATEXT}(?:\.{_ATEXT})*")
#: an empty group ("undisclosed-recipients:;"): kept as it is
#: "undisclosed-recipients:;", also with a comment after it ("unlisted-recipients:; (no
#: To-header on input)", Postfix's: the comment went and the whole header with it)
_EMPTY_GROUP = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9 _-]{0,63}):\s*;\s*(?:\([^()]*\)\s*)?$")
#: an empty group in angle brackets with a domain, as Enron-era Exchange wrote it
#: ("<Undisclosed-Recipient:@mailman.enron.com;>"): the group's name is what it says
_BRACKETED_GROUP = re.compile(r"^\s*<\s*([^<>:;@,\"]{1,200}):@[^<>:;,\s]{0,255};\s*>\s*$")


def unfold(value: str) -> str:
    return _FOLD.sub("", value)


def decode_value(raw: str, hint: str | None = None) -> tuple[str, bool]:
    """A header value as text: encoded words and raw 8-bit decoded; (text, clean).
    ``hint``: the charset the message declares for its text, tried first for raw
    8-bit bytes when it is UTF-8 or an East Asian multibyte charset."""
    text = unfold(str(raw))
    clean = True
    pieces: list[str] = []
    pos = 0
    text = _EW_GAP.sub(r"\1", text)  # whitespace between encoded words is not content
    pending: list[tuple[str, bytes]] = []

    def flush() -> None:
        nonlocal clean
        if not pending:
            return
        groups: list[tuple[str, bytes]] = []
        for charset, data in pending:
            if groups and groups[-1][0] == charset:
                groups[-1] = (charset, groups[-1][1] + data)
            else:
                groups.append((charset, data))
        for charset, data in groups:
            decoded, ok = decode_bytes(data, charset)
            clean = clean and ok
            pieces.append(decoded)
        pending.clear()

    for m in _EW.finditer(text):
        if m.start() > pos:
            flush()
            plain, ok = _raw(text[pos:m.start()], hint)
            clean = clean and ok
            pieces.append(plain)
        data = _ew_bytes(m.group(2), m.group(3))
        if data is None:
            flush()
            pieces.append(m.group(0))
            clean = False
        else:
            pending.append((m.group(1).lower().split("*", 1)[0], data))
        pos = m.end()
    flush()
    if pos < len(text):
        plain, ok = _raw(text[pos:], hint)
        clean = clean and ok
        pieces.append(plain)
    return "".join(pieces), clean


def raw_text(text: str) -> str:
    """Raw 8-bit bytes (surrogates) in a header decoded; encoded words left alone."""
    return _raw(text)[0]


def _raw(text: str, hint: str | None = None) -> tuple[str, bool]:
    """Unencoded header text; surrogates stand for raw 8-bit bytes (surrogateescape)."""
    if text.isascii() and "\x1b" not in text:
        return text, True
    if any("\udc80" <= ch <= "\udcff" for ch in text) or "\x1b" in text:
        try:
            data = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            return text.encode("utf-8", "replace").decode("utf-8"), False
        if hint and multibyte(hint):
            decoded, ok = decode_bytes(data, hint)
            if ok:
                return decoded, True
        elif hint and not data.isascii():
            # a single-byte charset (KOI8-R, windows-1251/1252, ISO-8859-x) reads any
            # bytes: raw UTF-8 still wins, but not a guess of CP932 or EUC-JP, which
            # made "Grüße" "Gr館e" and a KOI8-R subject kanji (MimeKit's test mail)
            try:
                return data.decode("utf-8"), True
            except UnicodeDecodeError:
                pass
            decoded, ok = decode_bytes(data, hint)
            if ok:
                return decoded, True
        return decode_bytes(data, None)
    return text, True  # already text (a header we synthesized)


def _ew_bytes(kind: str, payload: str) -> bytes | None:
    try:
        if kind in "bB":
            payload = re.sub(r"[^A-Za-z0-9+/]", "", payload)
            payload += "=" * (-len(payload) % 4)
            return base64.b64decode(payload)
        data = payload.replace("_", " ").encode("ascii", "replace")
        return binascii.a2b_qp(data, header=False)
    except (binascii.Error, ValueError):
        return None


def clean_text(text: str, limit: int = MAX_VALUE) -> str:
    """One line of displayable text: no control or line-break characters, bounded."""
    text = _CTRL.sub(" ", text.replace("\ufffd", "?"))
    text = re.sub(r"[ \t]+", " ", text).strip()
    return text[:limit]


def encode_text(text: str, name: str) -> str | Header:
    """An unstructured header value ready for compat32: ASCII as is, else encoded words."""
    text = clean_text(text)
    if text.isascii() and "=?" not in text and "%PDF-" not in text:
        return text
    return Header(text, "utf-8", header_name=name)


def _addresses(text: str) -> list[tuple[str, str]]:
    """(name, address) pairs of a list. email.utils' parser recurses once per ':' it
    reads as a group (MimeKit's stack-overflow.eml: thousands of encoded words holding
    times, and the whole message was blocked as "nested too deeply"): then each entry
    between top-level commas is read alone, and one that still cannot be read is kept
    as text (no address)."""
    try:
        return getaddresses([_quote_address_names(text)])
    except RecursionError:
        pass
    pairs: list[tuple[str, str]] = []
    for entry in _top_level_entries(text):
        try:
            pairs.extend(getaddresses([_quote_address_names(entry)]))
        except RecursionError:
            pairs.append((entry, ""))
    return pairs


def _top_level_entries(text: str) -> list[str]:
    """``text`` split at the commas outside quotes, angle brackets and comments."""
    entries, start, quoted, depth = [], 0, False, 0
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        elif not quoted and c in "<(":
            depth += 1
        elif not quoted and c in ">)" and depth:
            depth -= 1
        elif c == "," and not quoted and not depth:
            entries.append(text[start:i])
            start = i + 1
        i += 1
    entries.append(text[start:])
    return [e for e in entries if e.strip()]


def encode_addresses(raw: str, hint: str | None = None) -> tuple[str, int]:
    """Addresses re-formatted; (header value or "", number of entries kept as text).

    ``raw``: the header as received. It is parsed before encoded words are decoded, so
    a display name that decodes to an address stays a name (RFC 2047 section 5). An
    entry without a mailbox we can write back (no domain, ``<>``, a non-ASCII local
    part, ``user at host``) stays readable as an empty group named after it
    (RFC 6854 allows one in From too): the recipient sees who it was, and nothing
    there can be replied to. ``hint``: as for ``decode_value``.
    """
    text = _raw(unfold(raw), hint)[0].replace("\n", " ")
    group = _EMPTY_GROUP.match(text) or _BRACKETED_GROUP.match(text)
    if group:
        return f"{group.group(1).strip()}:;", 0
    words = text.split()
    if len(words) > 1 and not any(c in text for c in ',<>"():;\\'):
        if all(_ADDR.match(_ascii_host(w)) for w in words):
            text = ", ".join(words)  # "a@example.com b@example.com": a list without commas
        elif _ADDR.match(_ascii_host(words[-1])) and not any("@" in w for w in words[:-1]):
            # "Big Bug bb@bug.com": a name before the address, without the brackets
            text = f'"{" ".join(words[:-1])}" <{words[-1]}>'
    one = _ONE_MAILBOX.match(text)
    if one and _ADDR.match(_ascii_host(one.group(2).strip())) and (
            any(c in one.group(1) for c in ":;\\") or one.group(1).count('"') % 2):
        # one mailbox whose name a parser cannot read ('\"Alice: Personal\" <a@x>',
        # geary's test mail): the name as it reads, the address in its brackets
        name = clean_text(decode_value(one.group(1).replace("\\", "").replace('"', ""))[0],
                          MAX_NAME)
        addr = _ascii_host(one.group(2).strip())
        return (f"{_phrase(name)} <{addr}>" if name else addr), 0
    pairs = _addresses(text)
    out: list[str] = []
    unusable = 0
    for raw_name, raw_addr in pairs:
        addr = _ascii_host(raw_addr.strip())
        name = clean_text(decode_value(raw_name)[0], MAX_NAME)
        local, _, domain = addr.rpartition("@")
        if not _ADDR.match(addr) or len(local) > _MAX_LOCAL or len(domain) > _MAX_DOMAIN:
            # one entry: the field as it reads ("user at host (Name)" keeps its host)
            whole = clean_text(decode_value(text)[0], MAX_NAME) \
                if len(pairs) == 1 and addr else ""
            shown = whole or clean_text(f"{name} <{addr}>" if name and addr else name or addr,
                                        MAX_NAME)
            if shown:
                unusable += 1
                out.append(f"{_phrase(shown)}:;")
            continue
        out.append(f"{_phrase(name)} <{addr}>" if name else addr)
    return ", ".join(out), unusable


def _quote_address_names(text: str) -> str:
    """A display name that is an address itself, unquoted ("a@example.com <b@x.jp>"),
    quoted: one mailbox to a mail client, two to a strict parser. In one pass over the
    comma-separated entries (a pattern doing this backtracked quadratically on a long
    header full of "@")."""
    out: list[str] = []
    at = 0
    for entry in text.split(","):
        start = at
        at += len(entry) + 1
        body = entry.lstrip()
        lt = body.find("<")
        before = body[:lt]
        name = before.rstrip()
        if lt < 0 or "@" not in name or ">" in before or '"' in before:
            out.append(entry)
            continue
        after = start + len(entry) - len(body) + lt + 1   # just past this "<" in text
        gt, nxt = text.find(">", after), text.find("<", after)
        if gt < 0 or 0 <= nxt < gt:   # no <...> follows: not a display name
            out.append(entry)
            continue
        lead = entry[:len(entry) - len(body)]
        out.append(f'{lead}"{name}"{before[len(name):]}{body[lt:]}')
    return ",".join(out)


def _ascii_host(addr: str) -> str:
    """An internationalized host name (RFC 6532 mail: user@例え.jp) in its A-label form,
    which every reader takes; a non-ASCII local part has none and stays as it is."""
    local, at, host = addr.rpartition("@")
    if not at or host.isascii() or not local.isascii():
        return addr
    a_label = ascii_domain(host)
    return f"{local}@{a_label}" if a_label else addr


def _phrase(name: str) -> str:
    """A display name as a header phrase: quoted ASCII, else one UTF-8 encoded word
    (a literal "=?" in the name is encoded too)."""
    if name.isascii() and "=?" not in name:
        return formataddr((name, "x@x")).rpartition(" <")[0] or '""'
    return Header(name, "utf-8").encode(maxlinelen=0)


def encode_ids(decoded: str) -> str:
    """Message identifiers: only <...> tokens of the characters above survive; one id
    written without its brackets (``201002191008.30117.foo@example.com``) gets them."""
    ids = [i for i in _ID.findall(decoded) if len(i) <= 250][:100]
    bare = decoded.strip()
    if not ids and _BARE_ID.fullmatch(bare) and len(bare) <= 248:
        return f"<{bare}>"
    return " ".join(ids)
