"""Legacy OLE stage (doc/xls/ppt): hostile grafts on real bases, the corpus, the writer.

Every delivered output is checked by tools that share no code with the stage:
olefile (no defects), olevba (no VBA/XLM), msodde (no DDE), oleobj (no embedded
file) and LibreOffice (opens it, text preserved).
"""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import olefile
import pytest

import gateway.stages.ole  # registers the stage
import gateway.stages.ooxml  # noqa: F401 - embedded and converted OOXML go through it
from gateway.errors import LimitExceeded, Malformed
from gateway.models import Report, Verdict
from gateway.pipeline.run import process_file, scan_file
from gateway.pipeline.sniff import sniff_bytes
from gateway.policy import FormatPolicy, Policy, load
from gateway.stages import cfb_writer, ole_drs, ole_excel
from gateway.stages.cfb_writer import Node
from tests.conftest import ROOT, check_report_schema, corpus_dir
from tests.helpers import olegen
from tests.helpers.xlscrypt import rekey_xls

CORPUS = "c_ole"


@pytest.fixture(scope="session")
def bases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    paths = olegen.make_bases(tmp_path_factory.mktemp("ole-bases"))
    return {name: path.read_bytes() for name, path in paths.items()}


def sample(rel: str) -> bytes:
    return (corpus_dir() / CORPUS / rel).read_bytes()


def policy(**ole: str) -> Policy:
    base = load("default")
    formats = dict(base.formats)
    old = formats["ole"]
    formats["ole"] = FormatPolicy(action="disarm", keep=old.keep,
                                  options={**old.options, **ole})
    return Policy(name="test-ole", formats=formats)


def keep_links() -> Policy:
    """The default policy with ``ole: {keep: [hyperlinks]}`` (the default takes web links
    out too)."""
    base = load("default")
    old = base.formats["ole"]
    formats = {**base.formats, "ole": FormatPolicy(action=old.action,
                                                   keep=frozenset({"hyperlinks"}),
                                                   options=dict(old.options))}
    return Policy(name="keep-links", formats=formats)


def run(tmp_path: Path, data: bytes, name: str, pol: Policy | None = None) -> tuple[Report, Path]:
    src = tmp_path / name
    src.write_bytes(data)
    out = tmp_path / f"out-{name}"
    report = process_file(src, out, policy=pol or load("default"))
    check_report_schema(report)
    return report, out


def found(report: Report, item: int = 0) -> set[tuple[str, str, str]]:
    return {(f.kind, f.location, f.action) for f in report.items[item].findings}


def assert_clean_output(out: Path, original: bytes, edited: set[str]) -> None:
    """olefile parses it without defects, kept streams are byte-identical, oletools
    find nothing."""
    data = out.read_bytes()
    olegen.olefile_check(data)
    before, after = olegen.streams(original), olegen.streams(data)
    for path, content in after.items():
        if path in before and path not in edited:
            assert content == before[path], f"kept stream {path!r} changed"
    assert olegen.oletools_flags(out) == []


def assert_opens(tmp_path: Path, out: Path, *phrases: str) -> None:
    text = olegen.lo_texts([out], tmp_path)[out.name]
    assert text is not None, f"LibreOffice could not open {out.name}"
    for phrase in phrases:
        assert phrase in text, f"{phrase!r} missing from LibreOffice's text of {out.name}"


# ---------------------------------------------------------------------------- Word


def test_word_hostile(tmp_path: Path, bases: dict[str, bytes]) -> None:
    data = olegen.hostile_doc(bases["base.doc"], sample("poi/60279.doc"),
                              sample("oletools/embedded-simple-2007.doc"),
                              "\\\\evil.example\\share\\t.dot")
    assert olegen.oletools_flags(_write(tmp_path, "in.doc", data)) != []
    report, out = run(tmp_path, data, "hostile.doc")
    assert report.verdict is Verdict.DISARMED
    assert found(report) == {
        ("ole.package", "ObjectPool/_1000000001", "removed"),
        ("ole.equation", "ObjectPool/_1000000002", "removed"),
        ("ole.activex", "ObjectPool/_1000000003", "removed"),
        ("ole.object", "ObjectPool/_1000000004", "disarmed"),
        ("ole.vba", "Macros", "removed"),
        ("ole.external_template", "1Table#SttbfAssoc", "neutralized"),
    }
    child = report.items[1]
    assert child.location == "hostile.doc/_1000000004.doc"
    assert {(f.kind, f.location) for f in child.findings} == {("ole.vba", "Macros")}
    assert_clean_output(out, data, edited={"1Table"})
    names = {"/".join(p) for p in olefile.OleFileIO(str(out)).listdir(storages=True)}
    assert "ObjectPool/_1000000004/WordDocument" in names
    assert not any(n.startswith("Macros") or "Macros" in n for n in names)
    assert "\\\\evil".encode("utf-16-le") not in out.read_bytes()
    assert_opens(tmp_path, out, olegen.TEXT)


@pytest.mark.parametrize(("name", "stream", "flat", "phrase", "shape_link"), [
    ("pictures.doc", "1Table", "fodt", olegen.TEXT, True),
    ("pictures.xls", "Workbook", "fods", olegen.CELL, True),
    ("pictures.ppt", "PowerPoint Document", "fodp", olegen.SLIDE, False)])
def test_linked_pictures_of_drawing_shapes(tmp_path: Path, bases: dict[str, bytes], name: str,
                                           stream: str, flat: str, phrase: str,
                                           shape_link: bool) -> None:
    """A floating picture linked to a web address or a share: LibreOffice keeps the
    address in the shape's pibName and loads it when the file opens (a tracker, or the
    Windows logon sent to the share); a picture whose click runs a program on a share
    keeps it in the shape's pihlShape (.doc, .xls). All went through as clean."""
    data = bases[name]
    addresses = (olegen.PICTURE_WEB, olegen.PICTURE_SHARE)
    before = olegen.streams(data)[stream]
    tables = []
    for address in addresses:
        at = before.find(address.encode("utf-16-le"))
        assert at > 0, f"LibreOffice did not keep {address} in {stream}"
        tables.append(before.rfind(b"\x0b\xf0", 0, at) - 2)  # the shape's property table
    expected = {("ole.external_link", f"{stream}#shape@0x{t:x}/pibName", "removed")
                for t in tables}
    if shape_link:
        at = before.find(b"\\\\evil.example\\share\\run.exe")  # the file moniker's path
        table = before.rfind(b"\x0b\xf0", 0, at) - 2
        expected.add(("ole.hyperlink", f"{stream}#shape@0x{table:x}/pihlShape", "removed"))
    report, out = run(tmp_path, data, name)
    assert report.verdict is Verdict.DISARMED
    assert found(report) == expected
    assert_clean_output(out, data, edited={stream})
    result = olegen.streams(out.read_bytes())[stream]
    for address in addresses:
        assert address.encode("utf-16-le") not in result
    assert b"run.exe" not in result and "run.exe".encode("utf-16-le") not in result
    olegen.lo_convert([out], flat, tmp_path / "lo")
    shown = (tmp_path / "lo" / f"out-{Path(name).stem}.{flat}").read_text(encoding="utf-8")
    assert phrase in shown
    assert "tracker.example" not in shown and "evil.example" not in shown
    original = tmp_path / "original" / name
    original.parent.mkdir()
    original.write_bytes(data)          # and LibreOffice does link the input's pictures
    olegen.lo_convert([original], flat, tmp_path / "lo-in")
    assert "tracker.example" in (tmp_path / "lo-in" / f"{Path(name).stem}.{flat}").read_text(
        encoding="utf-8")


def test_stream_of_crafted_property_table_headers_is_refused_quickly(
        tmp_path: Path, bases: dict[str, bytes]) -> None:
    """Drawing property tables are checked entry by entry where their header is found:
    a table stream full of headers each claiming 4,095 entries took 12 s per 200 kB
    (until the job's CPU limit). Run in a worker held to 5 s of CPU: refused."""
    from tests.helpers.pipeline import run_in_worker

    root = olegen.tree(bases["base.doc"])
    table = root.child("1Table")
    assert table is not None
    table.data += struct.pack("<HHI", 0xFFF3, 0xF00B, 6 * 0xFFF) * 250_000
    report, _ = run_in_worker(tmp_path, cfb_writer.write(root), "crafted.doc")
    assert report.verdict is Verdict.BLOCKED
    assert report.items[0].error == ("1Table: too many drawing property tables to check "
                                     "(a crafted stream)")


def test_picture_name_that_only_records_where_it_came_from_stays(tmp_path: Path,
                                                                  bases: dict[str, bytes]) -> None:
    """Word records the file an embedded picture came from in pibName with the name
    type "URL" but no link flag (MimeKit's VIA_Nytt_1402.doc: "U:\\LOGO\\...GIF",
    "..\\fly.gif"): nothing is loaded from it, nothing to report."""
    data = bytearray(bases["pictures.doc"])
    for flags in (b"\x06\x01\x0e\x00\x00\x00", b"\x06\x41\x0e\x00\x00\x00"):
        at = data.find(flags)       # pibFlags: URL | not saved | linked
        while at >= 0:
            data[at + 2:at + 6] = struct.pack("<I", 0x2)   # URL only: a comment
            at = data.find(flags, at + 1)
    report, _ = run(tmp_path, bytes(data), "embedded.doc")
    assert not any(f.location.endswith("/pibName") for f in report.items[0].findings)


def test_word_fields(tmp_path: Path, bases: dict[str, bytes]) -> None:
    data = olegen.patch_fields_doc(bases["fields.doc"])
    report, out = run(tmp_path, data, "fields.doc")
    assert report.verdict is Verdict.DISARMED
    assert found(report) == {
        ("ole.dde", "WordDocument#field[0]", "neutralized"),
        ("ole.include_field", "WordDocument#field[1]", "neutralized"),
        ("ole.include_field", "WordDocument#field[2]", "neutralized"),
        ("ole.include_field", "WordDocument#field[4]", "neutralized"),   # DATABASE
        ("ole.include_field", "WordDocument#field[5]", "neutralized"),   # RD
        # MACROBUTTON (oletools' dde-test-from-office2003.doc kept one): the command's
        # name is overwritten, the button's text stays
        ("ole.macro_field", "WordDocument#field[6]", "neutralized"),
    }
    assert_clean_output(out, data, edited={"WordDocument", "1Table"})
    raw = out.read_bytes()
    for gone in ("DDEAUTO", "INCLUDETEXT", "INCLUDEPICTURE", "calc.exe", "DATABASE \\d",
                 "names.mdb", "chapter2.doc", "FileOpen"):
        assert gone.encode("latin-1") not in raw and gone.encode("utf-16-le") not in raw
    button = "MACROBUTTON -------- Open it now"
    assert button.encode("latin-1") in raw or button.encode("utf-16-le") in raw
    assert_opens(tmp_path, out, "DDE RESULT TEXT", "INCTEXT RESULT", "QUOTE RESULT",
                 "PLAIN RESULT", "DATABASE RESULT", "RD RESULT")


def test_word_hyperlinks_to_scripts_files_and_shares_are_neutralized(
        tmp_path: Path, bases: dict[str, bytes]) -> None:
    """With keep: [hyperlinks], web, mail and bookmark links stay; javascript:, file and
    share targets lose their field and the hyperlink object in the Data stream; every
    link text stays. The default policy takes the web and mail links out too."""
    data = bases["links.doc"]
    report, default_out = run(tmp_path, data, "default.doc")
    assert found(report) == {("ole.hyperlink", f"WordDocument#field[{n}]", "neutralized")
                             for n in (0, 1, 2, 3, 4)}
    web = next(f for f in report.items[0].findings if f.location == "WordDocument#field[0]")
    assert "www.city.example.lg.jp" in web.detail and "removed by policy" in web.detail
    for gone in ("www.city.example.lg.jp", "info@city.example.lg.jp"):
        assert gone.encode("utf-16-le") not in default_out.read_bytes()
    report, out = run(tmp_path, data, "links.doc", keep_links())
    assert report.verdict is Verdict.DISARMED
    assert found(report) == {("ole.hyperlink", f"WordDocument#field[{n}]", "neutralized")
                             for n in (2, 3, 4)}
    details = sorted(f.detail for f in report.items[0].findings)
    assert details[0].startswith("HYPERLINK to a javascript address")
    assert_clean_output(out, data, edited={"WordDocument", "1Table", "Data"})
    before, raw = data, out.read_bytes()
    for gone in ("javascript", "evil.example", "calc.exe"):
        assert gone.encode("utf-16-le") in before  # in the field and the Data stream
        assert gone.encode("latin-1") not in raw and gone.encode("utf-16-le") not in raw
    for kept in ("www.city.example.lg.jp", "info@city.example.lg.jp"):
        assert kept.encode("utf-16-le") in raw
    assert_opens(tmp_path, out, "WEB LINK", "MAIL LINK", "SCRIPT LINK", "SHARE LINK",
                 "FILE LINK", "JUMP LINK")


def test_truncated_properties_stream_is_left_out(tmp_path: Path,
                                                  bases: dict[str, bytes]) -> None:
    """A SummaryInformation stream shorter than its directory entry says: LibreOffice
    opens the document anyway, so it is delivered without that stream (was: blocked).
    A content stream is read as far as its sectors go, as LibreOffice reads it."""
    data = olegen.grow_stream_size(bases["base.doc"], "\x05SummaryInformation", 700)
    assert olegen.lo_texts([_write(tmp_path, "in.doc", data)], tmp_path)["in.doc"]
    report, out = run(tmp_path, data, "props.doc")
    assert report.verdict is Verdict.CLEAN
    assert [(f.kind, f.location, f.action, f.detail) for f in report.items[0].findings] == [
        ("ole.repaired", "", "repaired",
         "document-properties stream 'SummaryInformation' is truncated: left out")]
    assert "\x05SummaryInformation" not in olegen.streams(out.read_bytes())
    assert_opens(tmp_path, out, olegen.TEXT)
    # under the 4096-byte cutoff the stream stays in the mini stream, whose last 64-byte
    # sector is read whole
    size = -(-len(olegen.streams(bases["base.doc"])["WordDocument"]) // 64) * 64
    assert size + 300 < 4096
    body = olegen.grow_stream_size(bases["base.doc"], "WordDocument", 300)
    report, out = run(tmp_path, body, "body.doc")
    assert report.verdict is Verdict.CLEAN
    assert [(f.kind, f.detail) for f in report.items[0].findings] == [
        ("ole.repaired", f"stream 'WordDocument' is truncated: its {size} readable bytes kept")]
    assert len(olegen.streams(out.read_bytes())["WordDocument"]) == size
    assert_opens(tmp_path, out, olegen.TEXT)


def test_entry_of_unknown_type_is_left_out(tmp_path: Path, bases: dict[str, bytes]) -> None:
    """A directory entry whose type byte is damaged (62): LibreOffice skips it and opens
    the document; so is it left out here (was: blocked)."""
    data = olegen.set_entry_type(bases["base.doc"], "\x05SummaryInformation", 62)
    report, out = run(tmp_path, data, "type.doc")
    assert report.verdict is Verdict.CLEAN
    assert [(f.kind, f.detail) for f in report.items[0].findings] == [
        ("ole.repaired", "entry '\\x05SummaryInformation' of unknown type 62 left out")]
    assert "\x05SummaryInformation" not in olegen.streams(out.read_bytes())
    assert_opens(tmp_path, out, olegen.TEXT)


def test_word_dde_corpus_sample(tmp_path: Path) -> None:
    data = sample("oletools/dde-test-from-office2016.doc")
    report, out = run(tmp_path, data, "dde.doc")
    assert found(report) == {("ole.dde", f"WordDocument#field[{n}]", "neutralized")
                             for n in (0, 1, 3)} | {
        ("ole.macro_field", "WordDocument#field[2]", "neutralized")}  # MACROBUTTON Abbrechen
    assert_clean_output(out, data, edited={"WordDocument", "1Table"})
    raw = out.read_bytes()
    assert b"Abbrechen" not in raw and "Abbrechen".encode("utf-16-le") not in raw
    assert b"MACROBUTTON  --------- feldname" in raw or \
        "MACROBUTTON  --------- feldname".encode("utf-16-le") in raw
    assert_opens(tmp_path, out, "Fehler! Kein Thema angegeben.", "feldname")


# ------------------------------------------------------------------- Word 6.0/95

#: real Word 6.0 files (Apache POI's test data, see samples/catalog.yaml): text in one
#: run, and text through a piece table with a DATE field and an empty ObjectPool
WORD6 = ROOT / "samples" / "office" / "poi-word6.doc"
WORD6_FAX = ROOT / "samples" / "office" / "poi-word6-fax.doc"


def _w6_pair(index: int) -> int:
    """Offset of FC/LCB pair ``index`` in a Word 6.0/95 FIB (LibreOffice ww8scan.cxx)."""
    return 88 + 8 * index if index < 38 else 402 + 8 * (index - 38)


def _w6_append(wd: bytearray, index: int, blob: bytes) -> None:
    struct.pack_into("<II", wd, _w6_pair(index), len(wd), len(blob))
    wd += blob


def _w6_stream(data: bytes) -> bytes:
    return olegen.streams(data)["WordDocument"]


def test_word6_fields_template_and_wordbasic(tmp_path: Path) -> None:
    """A DDEAUTO field over the first words, a remote attached template and a command
    table with a WordBasic macro (names and list too): all three go, the text stays."""
    base = WORD6.read_bytes()
    root = olegen.tree(base)
    wd_node = root.child("WordDocument")
    assert wd_node is not None
    wd = bytearray(wd_node.data)
    old = b"The quick brown fox jumps over"
    new = b"\x13DDEAUTO cmd calc\x14quick brown\x15"
    assert len(old) == len(new) and wd.count(old) == 1
    wd[wd.index(old):wd.index(old) + len(old)] = new
    template = b"\\\\evil.example\\share\\normal.dot"
    _w6_append(wd, 32, struct.pack("<H", 4 + len(template)) + b"\x00"
               + bytes([len(template)]) + template)
    _w6_append(wd, 24, b"\xff\x01\x01\x00" + b"Sub MAIN Shell \"calc.exe\" End Sub" + b"\x40")
    _w6_append(wd, 26, b"\x0c\x00\x09AutoOpen\x00")
    wd_node.data = bytes(wd)
    data = cfb_writer.write(root)

    report, out = run(tmp_path, data, "word6.doc")
    assert report.verdict is Verdict.DISARMED
    assert found(report) == {
        ("ole.dde", "WordDocument#field[0]", "neutralized"),
        ("ole.external_template", "WordDocument#SttbfAssoc", "neutralized"),
        ("ole.wordbasic", "WordDocument#Cmds", "removed"),
    }
    assert_clean_output(out, data, {"WordDocument"})
    got = _w6_stream(out.read_bytes())
    assert b"DDEAUTO" not in got and b"evil.example" not in got
    assert b"Shell" not in got and b"AutoOpen" not in got
    fc_cmds, lcb_cmds = struct.unpack_from("<II", got, _w6_pair(24))
    assert lcb_cmds == 2 and got[fc_cmds:fc_cmds + 2] == b"\xff\x40"
    assert struct.unpack_from("<II", got, _w6_pair(26))[1] == 0
    assert len(got) == len(wd)    # every edit in place
    assert_opens(tmp_path, out, "quick brown", "the lazy dog")
    assert "DDEAUTO" not in (olegen.lo_texts([out], tmp_path / "lo")[out.name] or "")


def test_word6_real_field_in_a_piece_table(tmp_path: Path) -> None:
    """The fax's real DATE field, rewritten into DDEAUTO (same length): found through the
    piece table, its instruction blanked and its type made inert; an OLE package put in
    its ObjectPool goes."""
    base = WORD6_FAX.read_bytes()
    root = olegen.tree(base)
    wd_node, pool = root.child("WordDocument"), root.child("ObjectPool")
    assert wd_node is not None and pool is not None and not pool.children
    wd = bytearray(wd_node.data)
    assert wd[10] & 0x04    # fComplex: the text is read through the piece table
    old, new = b"DATE \\@ jj/MM/aa", b"DDEAUTO cmd calc"
    assert len(old) == len(new) and wd.count(old) == 1
    wd[wd.index(old):wd.index(old) + len(old)] = new
    wd_node.data = bytes(wd)
    pool.children.append(olegen.with_name(
        olegen.subtree(sample("oletools/embedded-simple-2007.doc"), "ObjectPool",
                       "_1577691201"), "_1000000001"))
    data = cfb_writer.write(root)
    assert olegen.oletools_flags(_write(tmp_path, "in.doc", data)) != []

    report, out = run(tmp_path, data, "fax.doc")
    assert report.verdict is Verdict.DISARMED
    assert found(report) == {
        ("ole.dde", "WordDocument#field[0]", "neutralized"),
        ("ole.package", "ObjectPool/_1000000001", "removed"),
    }
    assert_clean_output(out, data, {"WordDocument", "ObjectPool"})
    got = _w6_stream(out.read_bytes())
    at = wd.index(new)
    assert got[at:at + len(new)].strip() == b"" and got[at - 1] == 0x13
    # PlcffldMom: the field's begin, separator and end (4 CPs, 3 FLDs); begin's type QUOTE
    fc, lcb = struct.unpack_from("<II", got, _w6_pair(16))
    assert lcb == 4 * 4 + 2 * 3 and got[fc + 16:fc + 18] == b"\x13\x23"
    assert wd[fc + 16:fc + 18] == b"\x13\x1f"                 # DATE in the input
    assert_opens(tmp_path, out, "KATALYSE", "Date 12 12 97", "APPLICOLOR")


@pytest.mark.parametrize("path", [WORD6, WORD6_FAX], ids=["run", "pieces"])
def test_word6_clean_is_left_as_it_is(tmp_path: Path, path: Path) -> None:
    data = path.read_bytes()
    report, out = run(tmp_path, data, path.name)
    assert report.verdict is Verdict.CLEAN and found(report) == set()
    assert olegen.streams(out.read_bytes()) == olegen.streams(data)


@pytest.mark.parametrize("ident", [0xA697, 0xA698])
def test_word6_of_far_east_versions_is_read(tmp_path: Path, ident: int) -> None:
    """Far East versions of Word 6 write wIdent 0xA697-0xA699 (LibreOffice reads them
    all): a Korean document with 0xA698 (LibreOffice's ooo17498-2.doc) was refused as
    having no FIB."""
    root = olegen.tree(WORD6.read_bytes())
    wd_node = root.child("WordDocument")
    assert wd_node is not None
    wd = bytearray(wd_node.data)
    struct.pack_into("<H", wd, 0, ident)
    wd_node.data = bytes(wd)
    data = cfb_writer.write(root)
    report, out = run(tmp_path, data, "far-east.doc")
    assert report.verdict is Verdict.CLEAN and found(report) == set()
    assert olegen.streams(out.read_bytes()) == olegen.streams(data)


def test_word6_encrypted_and_word2_are_refused(tmp_path: Path) -> None:
    root = olegen.tree(WORD6.read_bytes())
    wd_node = root.child("WordDocument")
    assert wd_node is not None
    wd = bytearray(wd_node.data)
    wd[11] |= 0x01                               # fEncrypted
    wd_node.data = bytes(wd)
    report, _ = run(tmp_path, cfb_writer.write(root), "enc.doc")
    assert report.verdict is Verdict.BLOCKED
    assert found(report) == {("block.encrypted", "", "blocked")}
    wd[11] &= 0xFE
    struct.pack_into("<H", wd, 2, 0x2D)          # a Word 2.0 nFib
    wd_node.data = bytes(wd)
    report, _ = run(tmp_path, cfb_writer.write(root), "word2.doc")
    assert report.verdict is Verdict.BLOCKED
    assert found(report) == {("block.unsupported", "", "blocked")}


def test_word6_tables_over_the_fib_are_malformed(tmp_path: Path) -> None:
    """A command table (or the text) said to start inside the FIB: zeroing or blanking it
    would wreck the FIB, so the file is refused as damaged before anything is written."""
    for index, fc, lcb in ((24, 0, 64), (-1, 16, 0)):
        root = olegen.tree(WORD6.read_bytes())
        wd_node = root.child("WordDocument")
        assert wd_node is not None
        wd = bytearray(wd_node.data)
        if index >= 0:
            struct.pack_into("<II", wd, _w6_pair(index), fc, lcb)
        else:
            struct.pack_into("<I", wd, 24, fc)            # fcMin
        wd_node.data = bytes(wd)
        report, out = run(tmp_path, cfb_writer.write(root), f"overlap{index}.doc")
        assert report.verdict is Verdict.BLOCKED and not out.exists()
        assert found(report) == {("block.malformed", "", "blocked")}


# --------------------------------------------------------------------------- Excel


def test_excel_hostile(tmp_path: Path, bases: dict[str, bytes]) -> None:
    data = olegen.hostile_xls(bases["base.xls"], sample("poi/39234.xls"),
                              sample("oletools/embedded-simple-2007.xls"))
    flags = olegen.oletools_flags(_write(tmp_path, "in.xls", data))
    assert len(flags) == 4, flags      # VBA, XLM, DDE, embedded file
    report, out = run(tmp_path, data, "hostile.xls")
    assert report.verdict is Verdict.DISARMED
    assert found(report) == {
        ("ole.vba", "_VBA_PROJECT_CUR", "removed"),
        ("ole.vba", "Workbook#OBPROJ", "removed"),
        ("ole.package", "MBD0009CF7B", "removed"),
        ("ole.xlm_macro", "Workbook#sheet[Macro1]", "removed"),
        ("ole.auto_action", "Workbook#NAME[Auto_Open]", "neutralized"),
        ("ole.dde", "Workbook#SUPBOOK[0]", "neutralized"),
    }
    assert_clean_output(out, data, edited={"Workbook"})
    recs = ole_excel.records(olegen.streams(out.read_bytes())["Workbook"])
    assert not [r for r in recs if r.type == ole_excel.OBPROJ]
    # the macro sheet is a worksheet of its values: each formula became its cached value
    sheet = next(r for r in recs if r.type == ole_excel.BOUNDSHEET and r.data.endswith(b"Macro1"))
    assert sheet.data[5] == 0                                   # dt: worksheet
    start = next(i for i, r in enumerate(recs) if r.pos == struct.unpack_from("<I", sheet.data)[0])
    sub = recs[start:ole_excel._substream_end(recs, start) + 1]
    assert struct.unpack_from("<H", sub[0].data, 2)[0] == 0x0010  # BOF dt: worksheet
    assert [(r.type, r.data[:2]) for r in sub[2:-2]] == [
        (ole_excel.NUMBER, b"\x00\x00"), (ole_excel.NUMBER, b"\x01\x00"),
        (ole_excel.LABEL, b"\x02\x00"), (ole_excel.BOOLERR, b"\x03\x00"),
        (ole_excel.BOOLERR, b"\x04\x00"), (ole_excel.BLANK, b"\x05\x00")]
    assert_opens(tmp_path, out, olegen.CELL, *olegen.MACRO_VALUES)


def test_excel_hyperlinks_to_scripts_files_and_shares_are_removed(
        tmp_path: Path, bases: dict[str, bytes]) -> None:
    """Cell hyperlinks (HLINK records) to file paths and shares (file monikers) or
    javascript: go; with keep: [hyperlinks] web, mail and in-workbook links stay (the
    default takes web and mail links out too); every cell keeps its text."""
    data = bases["links.xls"]
    report, _ = run(tmp_path, data, "default.xls")
    assert found(report) == {("ole.hyperlink", f"Workbook#HLINK[{n}]", "removed")
                             for n in (0, 1, 2, 3, 4)}
    report, out = run(tmp_path, data, "links.xls", keep_links())
    assert report.verdict is Verdict.DISARMED
    assert found(report) == {("ole.hyperlink", f"Workbook#HLINK[{n}]", "removed")
                             for n in (2, 3, 4)}
    assert_clean_output(out, data, edited={"Workbook"})
    raw = out.read_bytes()
    for gone in ("javascript", "evil.example", "calc.exe"):
        assert gone.encode("utf-16-le") in data
        assert gone.encode("latin-1") not in raw and gone.encode("utf-16-le") not in raw
    for kept in ("www.city.example.lg.jp", "info@city.example.lg.jp", "Links!A1"):
        assert kept.encode("utf-16-le") in raw
    assert_opens(tmp_path, out, "WEB LINK", "MAIL LINK", "FILE LINK", "SHARE LINK",
                 "SCRIPT LINK", "JUMP LINK")


@pytest.fixture(scope="session")
def formulas_xls(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return olegen.make_formulas_xls(tmp_path_factory.mktemp("ole-formulas")).read_bytes()


def _formula_cells(tmp_path: Path, out: Path) -> dict[str, object]:
    """Column A of the output as LibreOffice reads it (converted to .xlsx, read by
    openpyxl: a formula as its text, starting with "=")."""
    import openpyxl
    olegen.lo_convert([out], "xlsx", tmp_path / "lo")
    ws = openpyxl.load_workbook(tmp_path / "lo" / (out.stem + ".xlsx")).active
    assert ws is not None
    return {f"A{row}": ws[f"A{row}"].value for row in range(1, len(olegen.FORMULA_CELLS) + 1)}


def test_excel_formulas_that_open_or_fetch_become_their_values(
        tmp_path: Path, formulas_xls: bytes) -> None:
    """HYPERLINK formulas to a share, a file or a computed address, and (by the default
    policy) to a web address, and WEBSERVICE (an add-in function called through its
    name) become their cached values; a jump within the workbook and other formulas
    stay formulas."""
    where = "Workbook#sheet[Formulas]!"
    report, out = run(tmp_path, formulas_xls, "formulas.xls")
    assert report.verdict is Verdict.DISARMED
    assert found(report) == {
        ("ole.hyperlink", where + "A1", "neutralized"),
        ("ole.hyperlink", where + "A2", "neutralized"),
        ("ole.external_link", where + "A4", "neutralized"),
        ("ole.hyperlink", where + "A5", "neutralized"),
        ("ole.hyperlink", where + "A6", "neutralized")}
    assert_clean_output(out, formulas_xls, edited={"Workbook"})
    cells = _formula_cells(tmp_path, out)
    for row, (formula, value, stays) in enumerate(olegen.FORMULA_CELLS, 1):
        got = cells[f"A{row}"]
        if stays:
            assert isinstance(got, str) and got.startswith("=") and got[1:5] == formula[1:5]
        elif value == "#N/A":
            assert got in ("#N/A", "=NA()"), got      # LibreOffice writes an error so
        else:
            assert got == value
    assert_opens(tmp_path, out, "SHARE FORMULA", "WEB FORMULA", "COMPUTED FORMULA",
                 "CELL FORMULA")
    report, _ = run(tmp_path, formulas_xls, "links.xls", keep_links())
    assert ("ole.hyperlink", where + "A2", "neutralized") not in found(report)
    assert ("ole.hyperlink", where + "A1", "neutralized") in found(report)


def _patched_formulas(data: bytes) -> bytes:
    """formulas.xls with A7 calling CALL("kernel32","WinExec","JCJ","calc",0) and the
    shared formula of A8:A10 calling RTD("evil.progid",,"topic")."""
    def string(text: str) -> bytes:
        return bytes([0x17, len(text), 0]) + text.encode("latin-1")

    call = b"".join(map(string, ("kernel32", "WinExec", "JCJ", "calc"))) \
        + b"\x1e\x00\x00" + b"\x42\x05" + struct.pack("<H", 150)
    rtd = string("evil.progid") + b"\x16" + string("topic") + b"\x42\x03" + struct.pack("<H", 379)
    root = olegen.tree(data)
    wb = root.child("Workbook")
    assert wb is not None
    recs = ole_excel.records(wb.data)
    final = []
    for rec in recs:
        if rec.type == ole_excel.FORMULA and rec.data[:4] == b"\x06\x00\x00\x00":
            rec = ole_excel.Rec(rec.type, rec.data[:20] + struct.pack("<H", len(call)) + call,
                                rec.pos)
        elif rec.type == ole_excel.SHRFMLA:
            rec = ole_excel.Rec(rec.type, rec.data[:8] + struct.pack("<H", len(rtd)) + rtd,
                                rec.pos)
        final.append(rec)
    wb.data = ole_excel.serialize(recs, final, True)
    return cfb_writer.write(root)


def test_excel_formulas_that_call_a_dll_or_com_server_become_their_values(
        tmp_path: Path, formulas_xls: bytes) -> None:
    """CALL in a cell formula and RTD in a shared formula (every cell using it, and the
    shared formula itself, goes) become the cached values."""
    data = _patched_formulas(formulas_xls)
    report, out = run(tmp_path, data, "calls.xls")
    where = "Workbook#sheet[Formulas]!"
    assert {f for f in found(report) if f[1][-2:] in ("A7", "A8", "A9") or f[1].endswith("10")} \
        == {("ole.xlm_macro", where + "A7", "neutralized"),
            ("ole.dde", where + "A8", "neutralized"), ("ole.dde", where + "A9", "neutralized"),
            ("ole.dde", where + "A10", "neutralized")}
    recs = ole_excel.records(olegen.streams(out.read_bytes())["Workbook"])
    assert not [r for r in recs if r.type in (ole_excel.SHRFMLA, ole_excel.FORMULA)
                and r.data[:2] in (b"\x06\x00", b"\x07\x00", b"\x08\x00", b"\x09\x00")]
    values = {struct.unpack_from("<H", r.data)[0]: r for r in recs
              if r.type in (ole_excel.NUMBER, ole_excel.LABEL)}
    assert values[6].type == ole_excel.LABEL and values[6].data.endswith(b"plain formula")
    assert [struct.unpack_from("<d", values[row].data, 6)[0] for row in (7, 8, 9)] == [8, 9, 10]
    assert_clean_output(out, data, edited={"Workbook"})
    assert_opens(tmp_path, out, "plain formula", "SHARE FORMULA")


def test_excel_formulas_of_a_sheet_whose_chart_has_no_end_are_judged(
        tmp_path: Path, formulas_xls: bytes) -> None:
    """A chart substream opened inside the sheet and never closed (the sheet's end
    cannot be found) does not stop the formulas being judged, nor the file delivered."""
    root = olegen.tree(formulas_xls)
    wb = root.child("Workbook")
    assert wb is not None
    recs = ole_excel.records(wb.data)
    at = next(i for i, r in enumerate(recs) if r.type == ole_excel.WINDOW2)
    chart = ole_excel.Rec(ole_excel.BOF, struct.pack("<HHHHII", 0x0600, 0x0020, 0x0DBB, 0x07CC,
                                                     0, 0x0206))
    wb.data = ole_excel.serialize(recs, [*recs[:at], chart, *recs[at:]], True)
    report, out = run(tmp_path, cfb_writer.write(root), "open-chart.xls")
    assert report.verdict is Verdict.DISARMED
    cells = {f[1].rsplit("!", 1)[-1] for f in found(report) if "!" in f[1]}
    assert cells == {"A1", "A2", "A4", "A5", "A6"}
    assert {f[0] for f in found(report) if "!" not in f[1]} == {"ole.repaired"}
    olegen.olefile_check(out.read_bytes())


def test_excel_formulas_no_sheet_entry_leads_to_are_judged(tmp_path: Path,
                                                           formulas_xls: bytes) -> None:
    """A BOUNDSHEET offset one byte off (its sheet's BOF not found): the sheet's
    formulas were not judged, verdict clean with WEBSERVICE and HYPERLINK live (found by
    fuzzing). Formulas no sheet entry leads to are judged all the same."""
    root = olegen.tree(formulas_xls)
    wb = root.child("Workbook")
    assert wb is not None
    data = bytearray(wb.data)
    sheet = next(r for r in ole_excel.records(wb.data) if r.type == ole_excel.BOUNDSHEET)
    struct.pack_into("<I", data, sheet.pos + 4, struct.unpack_from("<I", sheet.data)[0] + 1)
    wb.data = bytes(data)
    report, out = run(tmp_path, cfb_writer.write(root), "offset.xls")
    assert report.verdict is Verdict.DISARMED
    assert {f[1] for f in found(report)} >= {f"Workbook#sheet[?]!A{n}" for n in (1, 2, 4, 5, 6)}
    recs = ole_excel.records(olegen.streams(out.read_bytes())["Workbook"])
    assert not [r for r in recs if r.type == ole_excel.FORMULA and r.data[:2] in (
        b"\x00\x00", b"\x01\x00", b"\x03\x00", b"\x04\x00", b"\x05\x00")]


def test_formula_not_read_to_its_end_is_judged_by_its_bytes() -> None:
    """A token the walker does not know (ptgExtend before a CALL) stopped the walk and
    the call after it went unjudged; the formula's bytes are searched for a call to an
    active function then (fail closed). A harmless one stays."""
    from gateway.stages import ole_formula

    def string(text: str) -> bytes:
        return bytes([0x17, len(text), 0]) + text.encode("latin-1")

    call = string("kernel32") + string("WinExec") + b"\x1e\x00\x00\x42\x03\x96\x00"
    assert ole_formula.problem(call, lambda _n: None, False) is not None
    why = ole_formula.problem(b"\x18\x01" + call, lambda _n: None, False)
    assert why is not None and why[0] == "ole.xlm_macro"
    assert ole_formula.problem(b"\x18\x01" + string("ok") + b"\x41\x20\x00",
                               lambda _n: None, False) is None
    assert ole_formula.problem(b"\x01\x00\x00\x00\x00", lambda _n: None, False) is None


def test_excel_cell_block_offsets_follow_formulas_that_became_values(
        tmp_path: Path, formulas_xls: bytes) -> None:
    """A DBCELL record (offsets back to its rows and on to each row's first cell) still
    points at the right records after cells changed length."""
    root = olegen.tree(formulas_xls)
    wb = root.child("Workbook")
    assert wb is not None
    recs = ole_excel.records(wb.data)
    rows = [r for r in recs if r.type == 0x0208]
    at = next(i for i, r in enumerate(recs) if r.type == ole_excel.WINDOW2)
    dbcell_pos = recs[at].pos
    firsts = [next(r for r in recs if r.type in (ole_excel.FORMULA, ole_excel.LABEL)
                   and r.data[:2] == row.data[:2]) for row in rows]
    offsets, prev = [], rows[0].pos + 20
    for cell in firsts:
        offsets.append(cell.pos - prev)
        prev = cell.pos
    dbcell = ole_excel.Rec(ole_excel.DBCELL, struct.pack("<I", dbcell_pos - rows[0].pos)
                           + struct.pack(f"<{len(offsets)}H", *offsets))
    wb.data = ole_excel.serialize(recs, [*recs[:at], dbcell, *recs[at:]], True)
    data = cfb_writer.write(root)
    _, out = run(tmp_path, data, "dbcell.xls")
    recs = ole_excel.records(olegen.streams(out.read_bytes())["Workbook"])
    by_pos = {r.pos: r for r in recs}
    cell = next(r for r in recs if r.type == ole_excel.DBCELL)
    first_row = cell.pos - struct.unpack_from("<I", cell.data)[0]
    assert by_pos[first_row].type == 0x0208 and by_pos[first_row].data[:2] == b"\x00\x00"
    pos, chain = first_row + 20, []
    for n, offset in enumerate(struct.unpack_from(f"<{len(offsets)}H", cell.data, 4)):
        pos += offset
        chain.append(by_pos[pos])
        assert by_pos[pos].data[:2] == struct.pack("<H", n), n
    assert chain[0].type == ole_excel.LABEL          # A1, a formula that became its value


def _biff(rtype: int, payload: bytes) -> bytes:
    return struct.pack("<HH", rtype, len(payload)) + payload


def _two_sheet_stream(damage: str) -> tuple[bytes, int, int]:
    """A BIFF8 workbook stream: globals with two BOUNDSHEETs, two sheets of one LABEL
    each; ``damage`` ("sheet1" or "globals") gets a record whose length runs past the
    end. Returns the stream, the damaged record's offset and sheet 2's."""
    def bof(dt: int) -> bytes:
        return _biff(ole_excel.BOF, struct.pack("<HH", 0x0600, dt) + bytes(12))

    def label(text: bytes) -> bytes:
        return _biff(ole_excel.LABEL, struct.pack("<HHHH", 0, 0, 0, len(text)) + b"\x00" + text)

    eof = _biff(ole_excel.EOF, b"")
    broken = struct.pack("<HH", 0x023E, 0xFFFF) + bytes(4)

    def sheet_entry(pos: int, name: bytes) -> bytes:
        return _biff(ole_excel.BOUNDSHEET, struct.pack("<IBBBB", pos, 0, 0, len(name), 0)
                     + name)

    head_len = len(bof(5)) + 2 * len(sheet_entry(0, b"S1")) + len(eof)
    if damage == "globals":
        head_len += len(broken)
    sheet1 = bof(0x10) + label(b"first sheet") + (broken if damage == "sheet1" else b"") \
        + bytes(40) + eof
    sheet2 = bof(0x10) + label(b"second sheet") + eof
    s1, s2 = head_len, head_len + len(sheet1)
    head = bof(5) + sheet_entry(s1, b"S1") + sheet_entry(s2, b"S2") \
        + (broken if damage == "globals" else b"") + eof
    assert len(head) == head_len
    at = (s1 + len(bof(0x10)) + len(label(b"first sheet"))) if damage == "sheet1" \
        else head_len - len(broken) - len(eof)
    return head + sheet1 + sheet2, at, s2


def test_excel_record_running_past_the_end_resyncs_at_the_next_sheet() -> None:
    """Excel and LibreOffice read each sheet from its BOUNDSHEET offset: a damaged
    record length ends its sheet, reading goes on at the next one; the bytes between
    are dropped. Damage inside the globals (where the offsets are) is still refused."""
    data, at, sheet2 = _two_sheet_stream("sheet1")
    with pytest.raises(Malformed, match="runs past the end of the stream"):
        ole_excel.records(data)
    repairs: list[str] = []
    recs = ole_excel.records(data, repairs)
    labels = [r.data[8:] for r in recs if r.type == ole_excel.LABEL]
    assert labels == [b"\x00first sheet", b"\x00second sheet"]
    assert [r.type for r in recs].count(ole_excel.EOF) == 3
    assert next(r.pos for r in recs if r.data.endswith(b"second sheet")) > sheet2
    assert repairs == [f"Excel record at 0x{at:x} runs past the end of the stream: "
                       f"its sheet ends there, reading goes on at 0x{sheet2:x}"]
    data, _, _ = _two_sheet_stream("globals")
    with pytest.raises(Malformed, match="runs past the end of the stream"):
        ole_excel.records(data, [])


def test_excel_record_running_past_the_end_of_the_last_sheet(
        tmp_path: Path, bases: dict[str, bytes]) -> None:
    """The damaged record is the last sheet's WINDOW2: the sheet ends before it, its
    cells stay, LibreOffice shows the same text as in the damaged original."""
    tree = olegen.tree(bases["base.xls"])
    wb = tree.child("Workbook")
    assert wb is not None
    window2 = next(r for r in ole_excel.records(wb.data) if r.type == 0x023E)
    raw = bytearray(wb.data)
    struct.pack_into("<H", raw, window2.pos + 2, 0xFFFF)
    wb.data = bytes(raw)
    data = cfb_writer.write(tree)
    report, out = run(tmp_path, data, "damaged.xls")
    assert report.verdict is Verdict.CLEAN
    assert [(f.kind, f.location, f.detail) for f in report.items[0].findings] == [
        ("ole.repaired", "Workbook", f"Excel record at 0x{window2.pos:x} runs past the end "
         "of the stream: its sheet ends there")]
    assert_opens(tmp_path, out, olegen.CELL)


@pytest.mark.parametrize(("tail", "kept"), [(bytes(701), True), (bytes(4) + b"\x07", False)],
                         ids=["zero-padding", "junk"])
def test_excel_stream_after_its_last_record(tmp_path: Path, bases: dict[str, bytes],
                                            tail: bytes, kept: bool) -> None:
    """Zero padding after the last EOF (what Excel leaves to a sector's end) keeps an
    unchanged workbook stream as it is: one that did not end on a whole record (zero
    records are read as records) was rewritten, 0.24 s of a 4.7 MB file's 0.72 s in
    POI's ex45698-22488.xls. A byte that is no padding still goes with a rewrite."""
    tree = olegen.tree(bases["base.xls"])
    wb = tree.child("Workbook")
    assert wb is not None
    recs = ole_excel.records(wb.data)
    end = recs[-1].pos + 4 + len(recs[-1].data)
    wb.data = wb.data[:end] + tail
    report, out = run(tmp_path, cfb_writer.write(tree), "padded.xls")
    assert report.verdict is Verdict.CLEAN and report.items[0].findings == []
    got = olegen.streams(out.read_bytes())["Workbook"]
    assert got == (wb.data if kept else wb.data[:-1])
    assert_opens(tmp_path, out, olegen.CELL)


@pytest.mark.parametrize("rel", ["oletools/excel4_sample_macro.xls",
                                 "oletools/excel4_sample_macro_excel5_format.xls"])
def test_excel_xlm_corpus(tmp_path: Path, rel: str) -> None:
    data = sample(rel)
    report, out = run(tmp_path, data, Path(rel).name)
    stream = "Book" if "excel5" in rel else "Workbook"
    assert found(report) == {
        ("ole.xlm_macro", f"{stream}#sheet[Macro1]", "removed"),
        ("ole.auto_action", f"{stream}#NAME[Auto_Open]", "neutralized"),
    }
    assert_clean_output(out, data, edited={stream})
    assert_opens(tmp_path, out)


def test_excel_external_workbook_links(tmp_path: Path) -> None:
    data = sample("poi/external_name.xls")
    report, out = run(tmp_path, data, "external_name.xls")
    assert found(report) == {
        ("ole.vba", "_VBA_PROJECT_CUR", "removed"),
        ("ole.vba", "Workbook#OBPROJ", "removed"),
        ("ole.external_link", "Workbook#SUPBOOK[1]", "neutralized"),
        ("ole.external_link", "Workbook#SUPBOOK[3]", "neutralized"),
    }
    assert_clean_output(out, data, edited={"Workbook"})
    # the links lose their paths only: their sheet names and cached values stay, for
    # the formulas through them (emptied of its sheets, a link cost LibreOffice the
    # 120 words of its cached data here, and visible cell values in other workbooks)
    src = _write(tmp_path, "external_name.xls", data)
    texts = olegen.lo_texts([src, out], tmp_path / "lo")
    assert texts[src.name] is not None and texts[out.name] == texts[src.name]
    workbook = olegen.streams(out.read_bytes())["Workbook"]
    assert b"\x00\x00\x01\x00\x00 " not in workbook     # no link left without sheets


def test_shape_copy_package_loses_its_external_links(tmp_path: Path,
                                                     bases: dict[str, bytes]) -> None:
    """The OPC package Office 2007+ keeps inside a legacy file for a shape: its click
    hyperlink and linked picture go (oleobj reports them as it does for a .docx); the
    package stays readable, at the same length, and the workbook opens as before."""
    package = olegen.shape_package({"rId1": ("hyperlink", "http://tracker.example/t?e=1"),
                                    "rId2": ("image", "file://evil.example/share/p.png")})
    data, at = olegen.with_theme_record(bases["base.xls"], package)
    assert olegen.oletools_flags(_write(tmp_path, "in.xls", data)) != []
    report, out = run(tmp_path, data, "shapes.xls")
    assert report.verdict is Verdict.DISARMED
    where = f"Workbook#package@0x{at:x}/drs/_rels/shapexml.xml.rels"
    assert found(report) == {("ole.hyperlink", f"{where}#rId1", "removed"),
                             ("ole.external_link", f"{where}#rId2", "removed")}
    assert_clean_output(out, data, edited={"Workbook"})      # oleobj finds nothing
    stream = olegen.streams(out.read_bytes())["Workbook"]
    assert len(stream) == len(olegen.streams(data)["Workbook"])
    with zipfile.ZipFile(io.BytesIO(stream[at:at + len(package)])) as zf:
        assert zf.testzip() is None
        rels = zf.read("drs/_rels/shapexml.xml.rels")
        shape = zf.read("drs/shapexml.xml")
    assert b"tracker.example" not in rels and b"evil.example" not in rels
    assert b"hlinkClick" not in shape and b"Picture 1" in shape
    assert_opens(tmp_path, out, olegen.CELL)
    # a web link stays when the policy keeps hyperlinks; the linked picture still goes
    report, _ = run(tmp_path, data, "kept.xls", keep_links())
    assert found(report) == {("ole.external_link", f"{where}#rId2", "removed")}


def test_shape_copy_link_marked_external_in_lower_case_goes_too(
        tmp_path: Path, bases: dict[str, bytes]) -> None:
    """TargetMode="external": the OOXML engine reads the mode without regard to case, the
    shape-copy cleaning read only "External" and kept the link."""
    package = olegen.shape_package({"rId1": ("hyperlink", "file://evil.example/share/x")},
                                   mode="external")
    data, at = olegen.with_theme_record(bases["base.xls"], package)
    report, out = run(tmp_path, data, "shapes.xls")
    where = f"Workbook#package@0x{at:x}/drs/_rels/shapexml.xml.rels"
    assert found(report) == {("ole.hyperlink", f"{where}#rId1", "removed")}
    assert b"evil.example" not in olegen.streams(out.read_bytes())["Workbook"]


def test_shape_copy_package_named_in_another_letter_case_loses_its_links(
        tmp_path: Path, bases: dict[str, bytes]) -> None:
    """OPC part names ignore case: a package whose "[CONTENT_TYPES].XML" and ".RELS"
    are upper case was not taken for one and kept its links."""
    package = olegen.shape_package({"rId1": ("hyperlink", "file://evil.example/share/x")},
                                   upper=True)
    data, at = olegen.with_theme_record(bases["base.xls"], package)
    report, out = run(tmp_path, data, "shapes.xls")
    where = f"Workbook#package@0x{at:x}/drs/_rels/shapexml.xml.RELS"
    assert found(report) == {("ole.hyperlink", f"{where}#rId1", "removed")}
    assert b"evil.example" not in olegen.streams(out.read_bytes())["Workbook"]


def _bare_biff(version: int, dt: int, *records: tuple[int, bytes]) -> bytes:
    """A bare BIFF2/3/4 stream (no compound file): BOF, ``records``, EOF."""
    bof = {2: 0x0009, 3: 0x0209, 4: 0x0409}[version]
    body = struct.pack("<HH", 0x0002 if version == 2 else 0, dt) + (
        b"" if version == 2 else struct.pack("<H", 0x0600))
    out = struct.pack("<HH", bof, len(body)) + body
    for rtype, data in records:
        out += struct.pack("<HH", rtype, len(data)) + data
    return out + struct.pack("<HH", 0x000A, 0)


def _label(row: int, col: int, text: str) -> tuple[int, bytes]:
    raw = text.encode("latin-1")
    return 0x0204, struct.pack("<HHHH", row, col, 15, len(raw)) + raw


def test_excel_2_to_4_files_are_delivered_unchanged_when_nothing_acts(tmp_path: Path) -> None:
    """Excel 3.0 and 4.0 worksheets (records without a compound file; LibreOffice opens
    them): read to their end and delivered byte for byte."""
    for version in (3, 4):
        data = _bare_biff(version, 0x0010, _label(0, 0, "Budget 1994"),
                     (0x0203, struct.pack("<HHHd", 1, 0, 15, 1994.0)))
        assert sniff_bytes(data, "old.xls").type_id == "ole.biff"
        report, out = run(tmp_path, data, f"excel{version}.xls")
        assert report.verdict is Verdict.CLEAN and found(report) == set()
        assert out.read_bytes() == data
        assert_opens(tmp_path, out, "Budget 1994")
        report, _ = run(tmp_path, data[:-2], f"cut{version}.xls")
        assert found(report) == {("block.malformed", "", "blocked")}
    # a built-in name that runs nothing (Extract, Database, Print_Area) is no reason
    data = _bare_biff(4, 0x0010, _label(0, 0, "x"),
                      (0x0218, struct.pack("<HBBH", 0x0020, 0, 1, 0) + b"\x03"))
    report, _ = run(tmp_path, data, "extract.xls")
    assert report.verdict is Verdict.CLEAN
    # UTF-16 text starting with a tab is not taken for one
    assert sniff_bytes("\tname\tvalue\n".encode("utf-16-le"), "t.txt").type_id != "ole.biff"


@pytest.mark.parametrize(("records", "dt", "kind"), [
    ([], 0x0040, "block.unsupported"),                                  # a macro sheet
    ([(0x0017, b"\x0b\x01cmd\x03/c calc")], 0x0010, "block.unsupported"),   # DDE link
    ([(0x0218, struct.pack("<HBBH", 0x0020, 0, 1, 0) + b"\x01")], 0x0010,
     "block.unsupported"),                                              # Auto_Open
    ([(0x0218, struct.pack("<HBBH", 0x0020, 0, 1, 0) + b"\x0a")], 0x0010,
     "block.unsupported"),                                              # Auto_Activate
    ([(0x0218, struct.pack("<HBBH", 0, 0, 9, 0) + b"Auto_Open")], 0x0010,
     "block.unsupported"),
    ([(0x002F, b"\x00\x00\x00\x00")], 0x0010, "block.encrypted"),
], ids=["macro-sheet", "dde", "builtin-auto-open", "builtin-auto-activate", "auto-open",
        "filepass"])
def test_excel_2_to_4_files_that_can_act_are_refused(tmp_path: Path, records: list[
        tuple[int, bytes]], dt: int, kind: str) -> None:
    data = _bare_biff(4, dt, _label(0, 0, "x"), *records)
    report, out = run(tmp_path, data, "act.xls")
    assert report.verdict is Verdict.BLOCKED and not out.exists()
    assert found(report) == {(kind, "", "blocked")}


def test_package_behind_many_stray_end_records_is_still_cleaned(
        tmp_path: Path, bases: dict[str, bytes]) -> None:
    """Every zip end record of a stream is looked at: 300 stray ones do not hide the
    package behind them; 5000 make the file absurd and refused."""
    package = olegen.shape_package({"rId1": ("hyperlink", "http://tracker.example/t")})
    data, at = olegen.with_theme_record(bases["base.xls"],
                                        (b"PK\x05\x06" + bytes(18)) * 300 + package)
    at += 22 * 300
    report, out = run(tmp_path, data, "stray.xls")
    where = f"Workbook#package@0x{at:x}/drs/_rels/shapexml.xml.rels#rId1"
    assert found(report) == {("ole.hyperlink", where, "removed")}
    stream = olegen.streams(out.read_bytes())["Workbook"]
    with zipfile.ZipFile(io.BytesIO(stream[at:at + len(package)])) as zf:
        assert b"tracker.example" not in zf.read("drs/_rels/shapexml.xml.rels")
    with pytest.raises(LimitExceeded):
        ole_drs.clean_stream(bytearray((b"PK\x05\x06" + bytes(18)) * 5000), "Workbook",
                             None, apply=True)  # type: ignore[arg-type]  # never reached


def test_package_with_a_damaged_member_and_an_external_link_is_made_unreadable(
        tmp_path: Path, bases: dict[str, bytes]) -> None:
    """The links must go but the package cannot be written again without its damaged
    member: its zip signatures are zeroed (no reader finds a package; Office falls back
    to the binary shape), never left as it was."""
    package = bytearray(olegen.shape_package(
        {"rId1": ("hyperlink", "http://tracker.example/t")},
        extra={"drs/downrev.xml": b"<downrev/>" * 40}))
    at = package.find(b"drs/downrev.xml") - 30          # its local header (name at +30)
    assert package[at:at + 4] == b"PK\x03\x04"
    name_len, extra_len = struct.unpack_from("<HH", package, at + 26)
    body = at + 30 + name_len + extra_len
    package[body:body + 8] = b"\xff" * 8
    data, where = olegen.with_theme_record(bases["base.xls"], bytes(package))
    report, out = run(tmp_path, data, "damaged-link.xls")
    assert found(report) == {
        ("ole.hyperlink", f"Workbook#package@0x{where:x}/drs/_rels/shapexml.xml.rels#rId1",
         "removed")}
    stream = olegen.streams(out.read_bytes())["Workbook"]
    region = stream[where:where + len(package)]
    assert b"PK\x03\x04" not in region and b"PK\x05\x06" not in region
    assert_opens(tmp_path, out, olegen.CELL)


@pytest.mark.parametrize("damage", ["encrypted", "deflate"])
def test_unreadable_package_in_a_stream_is_left_alone(tmp_path: Path, bases: dict[str, bytes],
                                                      damage: str) -> None:
    """A package zipfile cannot read (a member flagged encrypted, broken deflate data) is
    no package oleobj or Office reads either: the workbook is delivered, not failed."""
    package = bytearray(olegen.shape_package({"rId1": ("hyperlink", "http://t.example/")}))
    if damage == "encrypted":
        for sig, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
            at = package.find(sig)
            while at >= 0:
                package[at + flag_at] |= 0x01
                at = package.find(sig, at + 4)
    else:
        at = package.rfind(b"PK\x03\x04")
        name_len, extra = struct.unpack_from("<HH", package, at + 26)
        package[at + 30 + name_len + extra:at + 38 + name_len + extra] = b"\xff" * 8
    data, _ = olegen.with_theme_record(bases["base.xls"], bytes(package))
    report, out = run(tmp_path, data, "damaged.xls")
    assert report.verdict is Verdict.CLEAN and found(report) == set()
    assert out.read_bytes() == data


# ---------------------------------------------------------------------- PowerPoint


def test_ppt_hostile(tmp_path: Path, bases: dict[str, bytes]) -> None:
    data = olegen.hostile_ppt(bases["base.ppt"], sample("poi/SimpleMacro.ppt"),
                              sample("oletools/embedded-simple-2007.doc"))
    assert olegen.oletools_flags(_write(tmp_path, "in.ppt", data)) != []
    report, out = run(tmp_path, data, "hostile.ppt")
    assert report.verdict is Verdict.DISARMED
    doc = olegen.streams(bases["base.ppt"])["PowerPoint Document"]
    vba_at = len(doc)
    vba_len = len(olegen.find_ex_ole_obj_stg(
        olegen.streams(sample("poi/SimpleMacro.ppt"))["PowerPoint Document"])[0][1])
    assert found(report) == {
        ("ole.vba", f"PowerPoint Document#ExOleObjStg@0x{vba_at:x}", "removed"),
        ("ole.package", f"PowerPoint Document#ExOleObjStg@0x{vba_at + vba_len:x}", "removed"),
    }
    after = olegen.streams(out.read_bytes())["PowerPoint Document"]
    before = olegen.streams(data)["PowerPoint Document"]
    assert len(after) == len(before)
    assert after[:len(doc)] == before[:len(doc)]      # the slides are untouched
    assert_clean_output(out, data, edited={"PowerPoint Document"})
    assert_opens(tmp_path, out, olegen.SLIDE)


def test_ppt_hyperlinks_to_scripts_files_and_shares_are_blanked(
        tmp_path: Path, bases: dict[str, bytes]) -> None:
    """ExHyperlink targets to file paths, shares and javascript: are zeroed in place;
    with keep: [hyperlinks] the web link stays (the default blanks it too); every text
    stays."""
    data = bases["links.ppt"]
    stream = olegen.streams(data)["PowerPoint Document"]
    bad = set()  # the ExHyperlink containers (0x0FD7) holding a bad target
    for word in ("calc.exe", "evil.example", "javascript"):
        at = stream.find(word.encode("utf-16-le"))
        assert at > 0, word
        bad.add(stream.rfind(b"\x0f\x00\xd7\x0f", 0, at))
    web = stream.rfind(b"\x0f\x00\xd7\x0f", 0,
                       stream.find("www.city.example.lg.jp".encode("utf-16-le")))
    report, default_out = run(tmp_path, data, "default.ppt")
    assert found(report) == {("ole.hyperlink", f"PowerPoint Document#ExHyperlink@0x{pos:x}",
                              "neutralized") for pos in {*bad, web}}
    assert "www.city.example.lg.jp".encode("utf-16-le") not in \
        olegen.streams(default_out.read_bytes())["PowerPoint Document"]
    report, out = run(tmp_path, data, "links.ppt", keep_links())
    assert report.verdict is Verdict.DISARMED
    assert found(report) == {("ole.hyperlink", f"PowerPoint Document#ExHyperlink@0x{pos:x}",
                              "neutralized") for pos in bad}
    assert_clean_output(out, data, edited={"PowerPoint Document",
                                           "\x05DocumentSummaryInformation"})
    after = olegen.streams(out.read_bytes())["PowerPoint Document"]
    for word in ("calc.exe", "evil.example", "javascript"):
        assert word.encode("utf-16-le") not in after
    assert "www.city.example.lg.jp".encode("utf-16-le") in after
    assert b"j\x00a\x00v\x00a\x00s\x00c\x00r\x00i\x00p\x00t" not in out.read_bytes()
    assert_opens(tmp_path, out, "WEB LINK", "FILE LINK", "SHARE LINK", "SCRIPT LINK")


def test_ppt_vba_and_click_macro_corpus(tmp_path: Path) -> None:
    data = sample("oletools/sample_with_vba.ppt")
    report, out = run(tmp_path, data, "sample_with_vba.ppt")
    assert found(report) == {
        ("ole.vba", "PowerPoint Document#ExOleObjStg@0x9ad1", "removed"),
        ("ole.auto_action", "PowerPoint Document#InteractiveInfo@0x996a", "neutralized"),
    }
    assert_clean_output(out, data, edited={"PowerPoint Document"})
    assert_opens(tmp_path, out)


# -------------------------------------------------------- embedded documents / policy


def test_embedded_documents_are_disarmed_and_kept(tmp_path: Path) -> None:
    data = sample("poi/word_with_embeded.doc")
    report, out = run(tmp_path, data, "word_with_embeded.doc")
    assert report.verdict is Verdict.CLEAN
    assert {(k, a) for k, _, a in found(report)} == {("ole.object", "kept")}
    assert len(report.items) == 5          # the document and its four objects
    assert_clean_output(out, data, edited=set())


def test_embedded_remove_policy(tmp_path: Path) -> None:
    data = sample("poi/word_with_embeded.doc")
    report, out = run(tmp_path, data, "w.doc", policy(embedded="remove"))
    assert report.verdict is Verdict.DISARMED
    assert {(k, a) for k, _, a in found(report)} == {("ole.object", "removed")}
    assert len(report.items) == 1
    names = olefile.OleFileIO(str(out)).listdir(storages=True)
    assert not [n for n in names if n[0] == "ObjectPool" and len(n) > 1]
    assert_opens(tmp_path, out)


def test_scan_reports_what_disarm_removes(tmp_path: Path, bases: dict[str, bytes]) -> None:
    data = olegen.hostile_xls(bases["base.xls"], sample("poi/39234.xls"),
                              sample("oletools/embedded-simple-2007.xls"))
    src = tmp_path / "h.xls"
    src.write_bytes(data)
    scanned = scan_file(src, policy=load("default"))
    disarmed, _ = run(tmp_path, data, "h.xls")
    assert found(scanned) == found(disarmed)


# ---------------------------------------------------------- encrypted and malformed


def test_encrypted_word_is_blocked(tmp_path: Path) -> None:
    report, out = run(tmp_path, sample("poi/PasswordProtected.doc"), "p.doc")
    assert report.verdict is Verdict.BLOCKED
    assert {(f.kind, f.action) for f in report.items[0].findings} == {
        ("block.encrypted", "blocked")}
    assert not out.exists()


def test_encrypted_excel_is_blocked(tmp_path: Path, bases: dict[str, bytes]) -> None:
    root = olegen.tree(bases["base.xls"])
    wb = root.child("Workbook")
    assert wb is not None
    recs = ole_excel.records(wb.data)
    filepass = ole_excel.Rec(ole_excel.FILEPASS, struct.pack("<HHH", 1, 1, 1) + bytes(48))
    wb.data = ole_excel.serialize(recs, [recs[0], filepass, *recs[1:]], True)
    report, _ = run(tmp_path, cfb_writer.write(root), "enc.xls")
    assert report.verdict is Verdict.BLOCKED
    assert report.reason == "the Excel workbook is encrypted"


VELVET_XLS = "oletools-autostart-velvetsweatshop.xls"


def velvet_xls() -> bytes:
    return (ROOT / "samples" / "office" / VELVET_XLS).read_bytes()


def assert_not_encrypted(out: Path) -> None:
    import msoffcrypto  # the independent reader: it would need a password

    with out.open("rb") as fh:
        assert not msoffcrypto.OfficeFile(fh).is_encrypted()


def test_excel_with_the_default_password_is_opened_and_disarmed(tmp_path: Path) -> None:
    """Excel encrypts a workbook with "VelvetSweatshop" when only "read-only recommended"
    or a modify password is set, and opens it without asking: Emotet's workbooks did
    this to hide their macros. It is opened, disarmed and delivered unencrypted."""
    report, out = run(tmp_path, velvet_xls(), "invoice.xls")
    assert report.verdict is Verdict.DISARMED
    assert found(report) == {("ole.encrypted", "Workbook#FILEPASS", "removed"),
                             ("ole.vba", "_VBA_PROJECT_CUR", "removed"),
                             ("ole.vba", "Workbook#OBPROJ", "removed")}
    detail = {f.kind: f.detail for f in report.items[0].findings}["ole.encrypted"]
    assert detail == "opened with Excel's default password (VelvetSweatshop)"
    assert_not_encrypted(out)
    assert olegen.oletools_flags(out) == []
    assert_opens(tmp_path, out, "Contains an autostart macro")


def test_excel_with_a_password_opens_with_that_password_only(tmp_path: Path) -> None:
    locked = rekey_xls(velvet_xls(), "VelvetSweatshop", "見積2026")
    src, out = tmp_path / "locked.xls", tmp_path / "out.xls"
    src.write_bytes(locked)
    for password, reason in ((None, "the Excel workbook is encrypted"),
                             ("guess", "the password is not correct")):
        report = process_file(src, out, policy=load("default"), password=password)
        assert (report.verdict, report.reason) == (Verdict.BLOCKED, reason)
        assert found(report) == {("block.encrypted", "", "blocked")} and not out.exists()
    report = process_file(src, out, policy=load("default"), password="見積2026")
    assert report.verdict is Verdict.DISARMED
    assert ("ole.encrypted", "Workbook#FILEPASS", "removed") in found(report)
    detail = {f.kind: f.detail for f in report.items[0].findings}["ole.encrypted"]
    assert detail == "opened with the password given"
    assert_not_encrypted(out)
    assert olegen.oletools_flags(out) == []
    assert_opens(tmp_path, out, "Contains an autostart macro")


def test_encrypted_excel_whose_filepass_overruns_the_stream_is_malformed(
        tmp_path: Path) -> None:
    """A FILEPASS record claiming more bytes than the stream holds: the decrypter's
    own parse error is a damaged file, not an internal error (found by fuzzing)."""
    root = olegen.tree(velvet_xls())
    wb = root.child("Workbook")
    assert wb is not None
    data = bytearray(wb.data)
    at = 4 + struct.unpack_from("<H", data, 2)[0]  # the record after BOF
    assert struct.unpack_from("<H", data, at)[0] == ole_excel.FILEPASS
    struct.pack_into("<H", data, at + 2, 0xFE36)
    wb.data = bytes(data)
    report, out = run(tmp_path, cfb_writer.write(root), "overrun.xls")
    assert report.verdict is Verdict.BLOCKED and not out.exists()
    assert found(report) == {("block.malformed", "", "blocked")}
    assert report.reason is not None and "cannot be read" in report.reason


def point_a_leaf_at_a_free_slot(data: bytes) -> bytes:
    """A fuzzer's damage (POI clusterfuzz .xls): a stream's right-sibling pointer leads to
    an unallocated directory entry whose own sibling pointers lead back to the root."""
    buf = bytearray(data)
    size = 1 << struct.unpack_from("<H", buf, 0x1E)[0]
    fat = olefile.OleFileIO(data).fat
    chain, sect = [], struct.unpack_from("<I", buf, 0x30)[0]
    while sect < 0xFFFFFFFA:
        chain.append(sect)
        sect = fat[sect]
    entries = [(s + 1) * size + i * 128 for s in chain for i in range(size // 128)]
    leaf = next(e for e in entries if buf[e + 0x42] == 2
                and struct.unpack_from("<I", buf, e + 0x48)[0] == 0xFFFFFFFF)
    free = next(i for i, e in enumerate(entries) if buf[e + 0x42] == 0)
    struct.pack_into("<I", buf, leaf + 0x48, free)
    struct.pack_into("<II", buf, entries[free] + 0x44, 0, 0)  # left, right: the root
    return bytes(buf)


def test_free_directory_slot_in_the_tree_is_skipped(tmp_path: Path,
                                                    bases: dict[str, bytes]) -> None:
    """Was blocked ("OLE entry has unknown type 0"); Office and LibreOffice skip it."""
    data = point_a_leaf_at_a_free_slot(bases["base.xls"])
    src = tmp_path / "free.xls"
    src.write_bytes(data)
    assert_opens(tmp_path / "lo-in", src, "sekisho-cell-alpha")
    report, out = run(tmp_path, data, "free-slot.xls")
    assert report.verdict is Verdict.CLEAN
    assert_clean_output(out, bases["base.xls"], set())
    assert_opens(tmp_path, out, "sekisho-cell-alpha")


def test_encrypted_ppt_is_blocked(tmp_path: Path, bases: dict[str, bytes]) -> None:
    root = olegen.tree(bases["base.ppt"])
    user = root.child("Current User")
    assert user is not None
    buf = bytearray(user.data)
    struct.pack_into("<I", buf, 12, 0xF3D1C4DF)
    user.data = bytes(buf)
    report, _ = run(tmp_path, cfb_writer.write(root), "enc.ppt")
    assert report.verdict is Verdict.BLOCKED
    assert report.reason == "the PowerPoint presentation is encrypted"


@pytest.mark.parametrize("cut", [600, 2000])
def test_truncated_file_is_malformed(tmp_path: Path, bases: dict[str, bytes], cut: int) -> None:
    report, _ = run(tmp_path, bases["base.doc"][:cut], "cut.doc")
    assert report.verdict is Verdict.BLOCKED
    assert report.items[0].findings[-1].kind == "block.malformed"
    assert report.reason


def test_damaged_word_text_is_malformed(tmp_path: Path, bases: dict[str, bytes]) -> None:
    root = olegen.tree(bases["base.doc"])
    table = root.child("1Table")
    assert table is not None
    table.data = bytes(len(table.data))
    report, _ = run(tmp_path, cfb_writer.write(root), "bad.doc")
    assert report.verdict is Verdict.BLOCKED
    assert report.reason == "the Word piece table is damaged"


# -------------------------------------------------------------------------- sniffing


def test_sniff_ole_kinds(bases: dict[str, bytes]) -> None:
    assert sniff_bytes(bases["base.doc"]).type_id == "ole.doc"
    assert sniff_bytes(bases["base.xls"]).type_id == "ole.xls"
    assert sniff_bytes(bases["base.ppt"]).type_id == "ole.ppt"
    msi = Node("Root Entry", True, clsid=bytes.fromhex("84100C0000000000C000000000000046"),
               children=[Node("\x05SummaryInformation", False, b"x")])
    assert sniff_bytes(cfb_writer.write(msi)).type_id == "executable.msi"
    enc = Node("Root Entry", True, children=[Node("EncryptedPackage", False, b"x" * 10),
                                             Node("EncryptionInfo", False, b"y")])
    assert sniff_bytes(cfb_writer.write(enc)).type_id == "ooxml.encrypted"
    other = Node("Root Entry", True, children=[Node("VisioDocument", False, b"z")])
    assert sniff_bytes(cfb_writer.write(other)).type_id == "ole.other"


@pytest.mark.parametrize(("children", "name", "reason"), [
    ([Node("VisioDocument", False, b"Visio (TM) Drawing\r\n")], "x.vsd",
     "a Visio drawing (.vsd): only Word, Excel and PowerPoint compound files are disarmed"),
    ([Node("Quill", True, children=[Node("QuillSub", True)]), Node("Contents", False, b"c")],
     "x.pub",
     "a Publisher document (.pub): only Word, Excel and PowerPoint compound files are disarmed"),
    ([Node("FileHeader", False, b"HWP Document File" + bytes(15)), Node("BodyText", True)],
     "x.hwp",
     "a Hangul (HWP) document: only Word, Excel and PowerPoint compound files are disarmed"),
    # nothing names the program for certain (an Ichitaro .jtd, say): the plain reason
    ([Node("DocumentText", False, b"t"), Node("VisioDocument", True)], "x.jtd",
     "this OLE compound file is not a Word, Excel or PowerPoint file"),
])
def test_other_ole_is_blocked_unsupported_by_name(tmp_path: Path, children: list[Node],
                                                  name: str, reason: str) -> None:
    report, _ = run(tmp_path, cfb_writer.write(Node("Root Entry", True, children=children)),
                    name)
    assert report.verdict is Verdict.BLOCKED and report.output is None
    assert report.input.type == "ole.other"
    assert [(f.kind, f.location) for f in report.items[0].findings] == [("block.unsupported",
                                                                          "")]
    assert report.reason == reason


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------------------- writer


def _rb_black_height(dirs: list[tuple[int, int, int]], sid: int) -> int:
    """Black height of the subtree at ``sid``; asserts the red-black rules."""
    if sid == cfb_writer.NOSTREAM:
        return 1
    left, right, color = dirs[sid]
    for kid in (left, right):
        if color == 0 and kid != cfb_writer.NOSTREAM:
            assert dirs[kid][2] == 1, "red node with a red child"
    hl, hr = _rb_black_height(dirs, left), _rb_black_height(dirs, right)
    assert hl == hr, "unequal black heights"
    return hl + (1 if color == 1 else 0)


@pytest.mark.parametrize("count", [*range(1, 40), 100, 127, 128, 255])
def test_writer_builds_valid_red_black_trees(count: int) -> None:
    names = [f"s{i:03d}" + "x" * (i % 7) for i in range(count)]
    root = Node("Root Entry", True, children=[Node(n, False, n.encode()) for n in names])
    data = cfb_writer.write(root)
    ole = olegen.olefile_check(data)
    dirs = [(e.sid_left, e.sid_right, e.color) if e else (0, 0, 0)
            for e in ole.direntries]
    assert dirs[ole.root.sid_child][2] == 1, "the tree root must be black"
    _rb_black_height(dirs, ole.root.sid_child)
    assert sorted(ole.listdir()) == sorted([n] for n in names)


def test_writer_round_trip_with_difat_and_size_edges() -> None:
    sizes = [0, 1, 63, 64, 4095, 4096, 4097, 70000]
    big = bytes(range(256)) * (8 * 1024 * 1024 // 256)  # needs > 109 FAT sectors
    kids = [Node(f"s{n}", False, (bytes([n % 251]) * n)) for n in sizes]
    kids.append(Node("big", False, big))
    sub = Node("Sub", True, clsid=bytes(range(16)), state=7, ctime=123, mtime=456,
               children=[Node("inner", False, b"abc")])
    root = Node("Root Entry", True, clsid=bytes(range(16, 32)), children=[*kids, sub])
    data = cfb_writer.write(root)
    ole = olegen.olefile_check(data)
    assert struct.unpack_from("<I", data, 0x48)[0] > 0            # DIFAT sectors used
    for kid in kids:
        assert ole.openstream(kid.name).read() == kid.data
    assert ole.openstream("Sub/inner").read() == b"abc"
    entry = ole.direntries[ole._find("Sub")]
    assert (entry.clsid, entry.dwUserFlags, entry.createTime, entry.modifyTime) == (
        "03020100-0504-0706-0809-0A0B0C0D0E0F", 7, 123, 456)
    again = cfb_writer.write(cfb_writer.read_tree(cfb_writer.open_ole(data), len(data)))
    assert again == data


def _cross_linked(count: int) -> bytes:
    """A compound file whose ``count`` small streams all point at the sector chain of
    one 100 KB stream, each claiming its whole size (an amplification bomb)."""
    kids = [Node("Big", False, b"A" * 100_000),
            *(Node(f"s{i:02d}", False, b"x") for i in range(count))]
    data = bytearray(cfb_writer.write(Node("Root Entry", True, children=kids)))
    entries = {}
    for at in range(512, len(data) - 127, 128):
        size = struct.unpack_from("<H", data, at + 64)[0]
        if 2 <= size <= 64:
            entries[data[at:at + size - 2].decode("utf-16-le", "replace")] = at
    big = entries["Big"]
    start, length = struct.unpack_from("<IQ", data, big + 116)
    for i in range(count):
        struct.pack_into("<IQ", data, entries[f"s{i:02d}"] + 116, start, length)
    return bytes(data)


def test_reader_refuses_cross_linked_streams() -> None:
    data = _cross_linked(40)
    ole = olefile.OleFileIO(io.BytesIO(data))
    assert ole.openstream("s07").read() == b"A" * 100_000  # each claims the big one
    with pytest.raises(Exception, match="overlap"):
        cfb_writer.read_tree(ole, len(data))


def test_reader_reads_a_stream_longer_than_its_chain() -> None:
    """A stream that declares more than its sector chain holds (what a file cut off in
    a broken download looks like, its directory intact): the old sum-of-sizes guard
    took it for cross-linked streams and refused the file. LibreOffice opens what the
    chain holds; so does the reader, noting the truncation."""
    kids = [Node("Big", False, b"A" * 100_000), Node("Small", False, b"B" * 5000)]
    data = bytearray(cfb_writer.write(Node("Root Entry", True, children=kids)))
    at = next(a for a in range(512, len(data) - 127, 128)
              if data[a:a + 6] == "Big".encode("utf-16-le"))
    struct.pack_into("<Q", data, at + 120, 3 * len(data))
    root = cfb_writer.read_tree(cfb_writer.open_ole(bytes(data)), len(data))
    got = {n.name: n.data for n in root.children}
    assert got["Big"][:100_000] == b"A" * 100_000 and got["Small"] == b"B" * 5000
    assert any("'Big' is truncated" in r for r in root.repairs)


# ---------------------------------------------------------------------------- corpus

#: every corpus file that is not delivered, and why (blocking is not success)
CORPUS_BLOCKED = {
    "poi/PasswordProtected.doc": ("block.encrypted", "the Word document is encrypted"),
    "tika/testWORD_protected_drm.doc": (
        "block.encrypted", "the Word document is protected with IRM (rights management)"),
    # a fuzzer case: the root storage lists itself as its own child
    "poi/clusterfuzz-testcase-minimized-POIHSSFFuzzer-4651309315719168.xls": (
        "block.malformed", None),
}
#: not OLE: SYLK is a text format (the text stage rebuilds it without its XLM macros)
CORPUS_NOT_OLE = {"oletools/excel4_sample_macro.slk": "text.sylk"}


def _unique(rel: str) -> str:
    stem, _, ext = rel.rpartition(".")
    return stem.replace("/", "__").replace(".", "_") + "_" + ext + "." + ext


@pytest.mark.slow
def test_corpus(tmp_path: Path) -> None:
    base = corpus_dir() / CORPUS
    files = sorted(p for p in base.rglob("*") if p.is_file())
    assert len(files) >= 30
    originals, outputs = tmp_path / "orig", tmp_path / "out"
    originals.mkdir()
    outputs.mkdir()
    delivered: list[str] = []
    problems: list[str] = []
    for path in files:
        rel = path.relative_to(base).as_posix()
        out = outputs / _unique(rel)
        report = process_file(path, out, policy=load("default"))
        check_report_schema(report)
        if rel in CORPUS_BLOCKED:
            kind, reason = CORPUS_BLOCKED[rel]
            assert report.verdict is Verdict.BLOCKED, rel
            assert report.items[0].findings[-1].kind == kind, (rel, report.reason)
            assert reason is None or report.reason == reason, (rel, report.reason)
            continue
        if not report.verdict.delivered:
            problems.append(f"{rel}: {report.verdict} ({report.reason})")
            continue
        if rel in CORPUS_NOT_OLE:
            assert report.input.type == CORPUS_NOT_OLE[rel], rel
            continue
        data = out.read_bytes()
        olegen.olefile_check(data)
        flags = olegen.oletools_flags(out)
        if flags:
            problems.append(f"{rel}: oletools still flag {flags}")
        (originals / _unique(rel)).write_bytes(path.read_bytes())
        delivered.append(_unique(rel))
    assert not problems, "\n".join(problems)
    before = olegen.lo_texts([originals / n for n in delivered], tmp_path / "lo-orig")
    after = olegen.lo_texts([outputs / n for n in delivered], tmp_path / "lo-out")
    for name in delivered:
        if before[name] is None:
            continue
        text = after[name]
        assert text is not None, f"LibreOffice opened {name} before disarm but not after"
        words = before[name].split()
        kept = set(text.split())
        missing = [w for w in words if w not in kept]
        # only macro sheet cells and DDE/INCLUDE results computed by LibreOffice may go
        assert len(missing) <= max(3, len(words) // 20), (name, missing[:10])


# --------------------------------------------------------------------- legacy: convert


@pytest.mark.parametrize(("rel", "ext", "phrase"), [
    ("poi/60279.doc", "docx", "Scottish"),
    ("poi/39234.xls", "xlsx", None),
    ("poi/SimpleMacro.ppt", "pptx", None),
])
def test_convert_to_ooxml(tmp_path: Path, rel: str, ext: str, phrase: str | None) -> None:
    olegen.soffice()
    data = sample(rel)
    report, out = run(tmp_path, data, Path(rel).name, policy(legacy="convert"))
    assert report.verdict is Verdict.DISARMED, report.reason
    assert report.output is not None
    assert report.output.name == f"{Path(rel).stem}.{ext}"
    assert report.output.type == f"ooxml.{ext}"
    kinds = {f.kind for f in report.items[0].findings}
    assert {"ole.vba", "ole.converted"} <= kinds
    assert out.read_bytes()[:2] == b"PK"
    final = tmp_path / f"final.{ext}"
    final.write_bytes(out.read_bytes())
    assert olegen.oletools_flags(final) == []
    assert_opens(tmp_path, final, *([phrase] if phrase else []))


def test_computed_field_type_is_detected_until_blanked() -> None:
    from gateway.stages import ole_word

    text = '\x13 \x13QUOTE "DDEAUTO"\x14DDEAUTO\x15 c:\\cmd.exe\x14RESULT\x15'
    fields = ole_word._fields(text)
    by_begin = {f.begin: f for f in fields}
    outer = fields[0]
    assert outer.begin == 0 and ole_word._computed(text, outer, by_begin)
    blanked = "".join(ch if ch < " " or i > (outer.sep or 0) else " "
                      for i, ch in enumerate(text))
    assert not ole_word._computed(blanked, outer, by_begin)
    assert "RESULT" in blanked


def test_excel_macro_sheet_disguised_as_worksheet(tmp_path: Path) -> None:
    """BOUNDSHEET says worksheet (dt=0) but the substream's BOF says macro sheet."""
    root = olegen.tree(sample("oletools/excel4_sample_macro.xls"))
    wb = root.child("Workbook")
    assert wb is not None
    data = bytearray(wb.data)
    for rec in ole_excel.records(wb.data):
        if rec.type == ole_excel.BOUNDSHEET and rec.data[5] == 1:
            data[rec.pos + 4 + 5] = 0
    wb.data = bytes(data)
    report, out = run(tmp_path, cfb_writer.write(root), "disguised.xls")
    assert ("ole.xlm_macro", "Workbook#sheet[Macro1]", "removed") in found(report)
    recs = ole_excel.records(olegen.streams(out.read_bytes())["Workbook"])
    assert not [r for r in recs if r.type == ole_excel.BOF and r.data[2:4] == b"\x40\x00"]
    assert_opens(tmp_path, out)


def test_workbook_that_ends_inside_a_sheet_is_read_to_its_end(
        tmp_path: Path, bases: dict[str, bytes]) -> None:
    """A Workbook stream cut at a record boundary inside its last sheet (what a broken
    download or a truncated stream leaves): was refused ("an Excel sheet has no EOF
    record"); LibreOffice opens it, and so does the delivered copy, whose last sheet
    now ends where the stream did."""
    root = olegen.tree(bases["base.xls"])
    book = root.child("Workbook")
    assert book is not None
    recs = ole_excel.records(book.data)
    assert recs[-1].type == ole_excel.EOF
    cut = recs[-1].pos  # drop the last sheet's EOF (and nothing else)
    book.data = book.data[:cut]
    data = cfb_writer.write(root)
    src = tmp_path / "cut.xls"
    src.write_bytes(data)
    assert_opens(tmp_path / "lo-in", src, "sekisho-cell-alpha")
    report, out = run(tmp_path, data, "cut.xls")
    assert report.verdict.delivered, report.reason
    assert {(k, loc) for k, loc, _ in found(report)} == {("ole.repaired", "Workbook")}
    assert ole_excel.records(olegen.tree(out.read_bytes()).child("Workbook").data)[-1].type \
        == ole_excel.EOF  # type: ignore[union-attr]
    assert_opens(tmp_path, out, "sekisho-cell-alpha")
