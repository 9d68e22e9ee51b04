"""XML in encodings that do not write ASCII as ASCII, read as UTF-8 (xml_wide)."""

from __future__ import annotations

import pytest

from gateway.errors import Malformed
from gateway.pipeline.xml_wide import as_utf8

DOC = '<?xml version="1.0" encoding="{}"?>\n<r a="b">関所 DDEAUTO</r>\n'


@pytest.mark.parametrize(("codec", "label", "bom"), [
    ("utf-16-le", "UTF-16", b"\xff\xfe"), ("utf-16-be", "UTF-16", b""),
    ("utf-32-le", "UTF-32", b"\xff\xfe\x00\x00"), ("utf-7", "UTF-7", b""),
    ("cp037", "IBM037", b""), ("hz", "HZ-GB-2312", b""),
])
def test_encodings_that_hide_ascii_are_read_as_utf8(codec: str, label: str,
                                                     bom: bytes) -> None:
    text = DOC.format(label)
    data = bom + text.encode(codec, "replace")
    assert b"DDEAUTO" not in data or codec in ("utf-7", "hz")
    got = as_utf8(data, "r.xml")
    assert got is not None
    expected = text.replace(f'encoding="{label}"', 'encoding="UTF-8"')
    if codec == "cp037":  # EBCDIC has no kanji
        expected = expected.replace("関所", "??")
    elif codec == "hz":  # nor GB 2312 this one
        expected = expected.replace("関", "?")
    assert got.decode("utf-8") == expected


@pytest.mark.parametrize(("codec", "label"), [
    ("utf-8", "UTF-8"), ("shift_jis", "Shift_JIS"), ("euc-jp", "EUC-JP"),
    ("iso2022_jp", "ISO-2022-JP"), ("latin-1", "ISO-8859-1"), ("utf-8", "UTF-1U"),
    ("utf-8", "UTF-16"),   # mislabelled: the bytes say UTF-8, and readers follow them
])
def test_encodings_that_write_ascii_as_ascii_are_left_alone(codec: str, label: str) -> None:
    assert as_utf8(DOC.format(label).encode(codec, "replace"), "r.xml") is None


def test_undecodable_or_unknown_ebcdic_is_refused() -> None:
    with pytest.raises(Malformed, match="not valid utf-16"):
        as_utf8(b"\xff\xfe<\x00?\x00\x00\xd8", "r.xml")  # a lone surrogate
    with pytest.raises(Malformed, match="cannot be read"):
        as_utf8(DOC.format("EBCDIC-NOSUCH").encode("cp037", "replace"), "r.xml")
    with pytest.raises(Malformed, match="without naming"):
        as_utf8('<?xml version="1.0"?><r/>'.encode("cp037"), "r.xml")


def test_an_encoding_name_with_a_nul_byte_is_no_crash() -> None:
    """Found by mutating the corpus: 'encoding="\\x00"' in a part of a presentation made
    codecs.lookup raise ValueError ("embedded null character"), an internal error; a
    name no reader knows is read as it is, like any unknown one."""
    assert as_utf8(b'<?xml version="1.0" encoding="\x00"?><r/>', "r.xml") is None


@pytest.mark.parametrize("label", ["punycode", "undefined", "idna"])
def test_codecs_that_fail_in_their_own_way_are_refused_not_crashed(label: str) -> None:
    """Found by fuzzing: these raise UnicodeError (not UnicodeDecodeError) on the bytes
    of an ordinary document, an internal error in four stages."""
    data = f'<?xml version="1.0" encoding="{label}"?><r>\u00e9\u3042</r>'.encode()
    try:
        as_utf8(data, "r.xml")
    except Malformed as exc:
        assert "is not valid" in str(exc)
