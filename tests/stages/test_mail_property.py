"""Property: every message the mail stage emits re-parses to the same structure under
email.policy.compat32 and email.policy.default, with no defects in any part."""

from __future__ import annotations

import email
import email.policy
import tempfile
from email.message import Message
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.pipeline.run import process_file
from gateway.policy import load
from tests.helpers import mailgen as g

POLICY = load("default")

texts = st.text(alphabet=st.sampled_from(
    list("abcXYZ 019.,-=+@:;!?\t\n") + list("あいう漢字髙①㈱～ｶﾅ　")),
    min_size=0, max_size=80)
names = st.text(alphabet=st.sampled_from(list("abc-_ 01") + list("見積書資料\u202e")),
                min_size=1, max_size=12)
charsets = st.sampled_from(["utf-8", "iso-2022-jp", "shift_jis"])


def _encode(text: str, charset: str) -> bytes:
    return g.iso2022jp(text.replace("\r\n", "\n")) if charset == "iso-2022-jp" \
        else text.encode("cp932" if charset == "shift_jis" else "utf-8")


@st.composite
def leaves(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["text", "html", "file", "png", "exe"]))
    body = draw(texts)
    if kind == "text":
        cs = draw(charsets)
        return g.entity(f"text/plain; charset={cs}", g.b64(_encode(body, cs)), cte="base64")
    if kind == "html":
        return g.text(f"<html><body><p>{body}</p><script>x()</script></body></html>",
                      subtype="html")
    name = draw(names)
    if kind == "file":
        return g.attachment(g.encoded_word(name + ".txt"), ("本文" + body).encode(),
                            "text/plain")
    if kind == "png":
        return g.attachment(g.encoded_word(name + ".png"), g.png_with_metadata(), "image/png")
    return g.attachment(name.encode("utf-8", "replace") + b".exe", g.EXE)


def trees(depth: int = 2) -> st.SearchStrategy[bytes]:
    if depth == 0:
        return leaves()
    return st.one_of(
        leaves(),
        st.builds(lambda sub, parts: g.multipart(sub, *parts),
                  st.sampled_from(["mixed", "alternative", "related"]),
                  st.lists(trees(depth - 1), min_size=1, max_size=3)),
        st.builds(lambda inner: g.entity("message/rfc822", g.message(inner)),
                  trees(depth - 1)),
    )


def shape(msg: Message) -> list[tuple[int, str]]:
    """The part tree as (depth, content type) in walk order."""
    out: list[tuple[int, str]] = []

    def walk(part: Message, depth: int) -> None:
        out.append((depth, part.get_content_type()))
        payload = part.get_payload()
        if isinstance(payload, list):
            for child in payload:
                walk(child, depth + 1)

    walk(msg, 0)
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=trees(), subject=texts)
def test_output_reparses_identically_without_defects(body: bytes, subject: str) -> None:
    data = g.message(body, subject=g.encoded_word(subject.replace("\r", "").replace("\n", " ")
                                                  or "件名"))
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in.eml", Path(tmp) / "out.eml"
        src.write_bytes(data)
        report = process_file(src, out, policy=POLICY)
        if not report.verdict.delivered:
            assert report.verdict.value == "blocked", report.reason
            return
        raw = out.read_bytes()
    old = email.message_from_bytes(raw, policy=email.policy.compat32)
    new = email.message_from_bytes(raw, policy=email.policy.default)
    for msg in (old, new):
        for part in msg.walk():
            assert not part.defects, (part.get_content_type(), part.defects)
    assert shape(old) == shape(new)
    for a, b in zip(old.walk(), new.walk(), strict=True):
        if not a.is_multipart() and a.get_content_maintype() == "text":
            assert a.get_payload(decode=True) == b.get_payload(decode=True)
