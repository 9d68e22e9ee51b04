"""xml_dtd.scrub: the DTD cut out, entity references resolved as text, or None."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import defusedxml.ElementTree as DET
import pytest

from gateway.stages.xml_dtd import MAX_GROWTH, MAX_VALUE, scrub, without_doctype


def _clean(doc: bytes) -> bytes:
    s = scrub(doc)
    assert s is not None
    DET.fromstring(s.data, forbid_dtd=True)  # an independent parser that refuses DTDs
    return s.data


def test_no_entities_no_change() -> None:
    assert scrub(b'<?xml version="1.0"?><a>&amp;</a>') is None
    assert scrub(b"<!DOCTYPE html><html><body>&nbsp;</body></html>") is None
    assert scrub(b'<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://x/svg11.dtd">'
                 b"<svg/>") is None
    assert scrub(b"\x89PNG\r\n\x1a\n<!DOCTYPE") is None  # not XML


def test_references_in_comments_cdata_and_pis_are_text() -> None:
    out = _clean(b'<!DOCTYPE a [<!ENTITY e "E">]><a>&e;<!-- &e; --><![CDATA[&e;]]>'
                 b"<?pi &e;?>&lt;&#65;&#x42;</a>")
    assert out == b"<a>E<!-- &e; --><![CDATA[&e;]]><?pi &e;?>&lt;&#65;&#x42;</a>"


def test_values_are_escaped_for_attributes() -> None:
    out = _clean(b"""<!DOCTYPE a [<!ENTITY q 'say "hi" ]]>'>]><a t="&q;">&q;</a>""")
    root = ET.fromstring(out)
    assert root.get("t") == 'say "hi" ]]>' and root.text == 'say "hi" ]]>'


@pytest.mark.parametrize(("decl", "why"), [
    ('<!ENTITY e SYSTEM "file:///etc/passwd">', "external"),
    ('<!ENTITY e PUBLIC "-//x//y" "http://attacker.example/">', "external"),
    ('<!ENTITY d "x"><!ENTITY e "&d;&d;">', "nested"),
    ('<!ENTITY e "&#60;b&#62;">', "markup"),           # the value is markup after all
    ('<!ENTITY e "' + "x" * (MAX_VALUE + 1) + '">', "too long"),
    ('<!ENTITY % e "x">', "parameter entity, never a general one"),
    ('<!ENTITY d "x">', "undeclared"),
])
def test_anything_but_a_plain_text_value_is_removed(decl: str, why: str) -> None:
    s = scrub(f"<!DOCTYPE a [{decl}]><a>1&e;2</a>".encode())
    assert s is not None, why
    assert s.data == b"<a>12</a>", why
    assert (s.replaced, s.removed) == (0, 1)


def test_the_first_declaration_binds() -> None:
    assert _clean(b'<!DOCTYPE a [<!ENTITY e "1"><!ENTITY e "2">]><a>&e;</a>') == b"<a>1</a>"


def test_prolog_around_the_dtd_is_kept() -> None:
    doc = (b'\xef\xbb\xbf<?xml version="1.0" encoding="UTF-8"?>\n<!-- before -->\n'
           b'<!DOCTYPE a SYSTEM "http://x/a.dtd" [ <!ENTITY e "]>"> ]>\n<?after x?><a>&e;</a>')
    assert _clean(doc) == (b'\xef\xbb\xbf<?xml version="1.0" encoding="UTF-8"?>\n'
                           b"<!-- before -->\n\n<?after x?><a>]&gt;</a>")


def test_non_ascii_values_only_into_utf8_documents() -> None:
    utf8 = scrub('<?xml version="1.0" encoding="UTF-8"?><!DOCTYPE a [<!ENTITY e "市役所">'
                 '<!ENTITY f "ok">]><a>&e;&f;</a>'.encode())
    assert utf8 is not None and utf8.data.endswith("<a>市役所ok</a>".encode())
    latin = scrub('<?xml version="1.0" encoding="ISO-8859-1"?><!DOCTYPE a [<!ENTITY e "café">'
                  '<!ENTITY f "ok">]><a>&e;&f;</a>'.encode("latin-1"))
    assert latin is not None and latin.data.endswith(b"<a>ok</a>") and latin.removed == 1


def test_growth_is_limited() -> None:
    value = "x" * MAX_VALUE
    refs = (MAX_GROWTH // MAX_VALUE) + 2
    assert scrub(f'<!DOCTYPE a [<!ENTITY e "{value}">]><a>{"&e;" * refs}</a>'.encode()) is None
    fits = scrub(f'<!DOCTYPE a [<!ENTITY e "{value}">]><a>{"&e;" * 8}</a>'.encode())
    assert fits is not None and fits.replaced == 8


@pytest.mark.parametrize("doc", [
    "<!DOCTYPE a [<!ENTITY e 'x'>]><a>&e;</a>".encode("utf-16"),  # UTF-16: refused
    b"<!DOCTYPE a [<!ENTITY e 'x'><a>&e;</a>",                    # DTD never closed
    b"<!DOCTYPE a [<!ENTITY e 'x'>]>",                             # no root element
    b"<!DOCTYPE a [<!ENTITY e 'x'>]><a><!-- &e; </a>",             # comment never closed
])
def test_documents_not_handled_stay_refused(doc: bytes) -> None:
    assert scrub(doc) is None


def test_without_doctype_only_for_a_dtd_without_entities() -> None:
    ooo = (b'<?xml version="1.0"?>\n<!DOCTYPE manifest:manifest PUBLIC "-//OpenOffice.org//DTD'
           b' Manifest 1.0//EN" "Manifest.dtd">\n<m/>')
    assert without_doctype(ooo) == b'<?xml version="1.0"?>\n\n<m/>'
    assert without_doctype(b"<m/>") is None
    assert without_doctype(b'<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>') is None  # scrub's


def test_doctype_beside_an_encoding_python_does_not_know_is_no_crash() -> None:
    """Found by fuzzing: pyexpat raised LookupError (not listed) for a DOCTYPE and
    encoding="bogus", an internal error in the ODF and OOXML stages."""
    data = (b'<?xml version="1.0" encoding="bogus"?><!DOCTYPE r [<!ENTITY a "b">]>'
            b"<r>&a;</r>")
    scrub(data)            # no exception but the stage's own
    without_doctype(data)
