"""PDF stage: every checklist item of DESIGN.md §8, run through the real pipeline.

Each case builds a hostile PDF (tests/helpers/pdfgen.py), disarms it with
``process_file`` and asserts the exact findings on the root item, the verdict, and
that the output passes ``qpdf --check``, keeps its pages and text, and holds no
active content according to an independent walk (tests/helpers/pdfwalk.py) and a
raw byte search after qpdf decompresses it.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pikepdf
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import gateway.stages.pdf  # registers the stage
from gateway.models import Report, Verdict
from gateway.pipeline.run import process_file, scan_file
from gateway.policy import FormatPolicy, Policy, load
from gateway.stages.pdf_salvage import balanced, salvage
from tests.helpers import pdfgen, pdfwalk

DEFAULT = load("default")


def pdf_policy(name: str, keep: frozenset[str], **options: str) -> Policy:
    fmt = FormatPolicy(action="disarm", keep=keep, options=options)
    return dataclasses.replace(DEFAULT, name=name, formats={**DEFAULT.formats, "pdf": fmt})


LINKS = frozenset({"hyperlinks"})
POLICIES = {  # "keep" and "nokeep" disarm embedded files: those cases test the recursion
    "keep": pdf_policy("keep", LINKS, embedded_files="disarm"),
    "nokeep": pdf_policy("nokeep", frozenset(), embedded_files="disarm"),
    "remove": pdf_policy("remove", LINKS, embedded_files="remove"),
}

R, K, D, REP = "removed", "kept", "disarmed", "repaired"
A0 = "/Root/Pages/Kids[0]/Annots[0]/A"    # the base document's web link
A2 = "/Root/Pages/Kids[0]/Annots[2]"      # the first annotation a builder adds
LINK = ("pdf.uri", A0, K)


@dataclass(frozen=True)
class Case:
    builder: str
    findings: frozenset[tuple[str, str, str]]
    policy: str = "keep"
    verdict: Verdict = Verdict.DISARMED
    embedded: bool = False   # the output legitimately holds (disarmed) embedded files

    @property
    def id(self) -> str:
        return f"{self.builder}-{self.policy}"


def case(builder: str, *findings: tuple[str, str, str], **kw: object) -> Case:
    return Case(builder, frozenset(findings), **kw)  # type: ignore[arg-type]


ACTION_KINDS = {
    "Launch": "pdf.launch", "SubmitForm": "pdf.submit_form", "ImportData": "pdf.import_data",
    "GoToR": "pdf.remote_goto", "GoToE": "pdf.embedded_goto", "Sound": "pdf.sound",
    "Movie": "pdf.movie", "Rendition": "pdf.rendition", "Hide": "pdf.hide",
    "SetOCGState": "pdf.set_ocg_state", "GoTo3DView": "pdf.goto_3d_view",
    "Trans": "pdf.transition", "RichMediaExecute": "pdf.rich_media",
    "ResetForm": "pdf.other_action", "Thread": "pdf.other_action",
    "Frobnicate": "pdf.unknown_action",
}
assert set(ACTION_KINDS) == set(pdfgen.ACTION_PARAMS)

CASES = [
    case("plain", LINK, verdict=Verdict.CLEAN),
    case("plain", ("pdf.uri", A0, R), policy="nokeep"),
    case("open_action_js", LINK, ("pdf.open_action", "/Root/OpenAction", R)),
    case("catalog_aa", LINK, ("pdf.additional_actions", "/Root/AA/WC", R),
         ("pdf.additional_actions", "/Root/AA/WP", R)),
    case("page_aa", LINK, ("pdf.additional_actions", "/Root/Pages/Kids[1]/AA/O", R),
         ("pdf.additional_actions", "/Root/Pages/Kids[1]/AA/C", R)),
    case("annot_a_js", LINK, ("pdf.javascript", f"{A2}/A", R)),
    case("annot_aa", LINK, ("pdf.additional_actions", f"{A2}/AA/E", R)),
    case("form_fields", LINK,
         ("pdf.additional_actions", "/Root/AcroForm/Fields[0]/AA/F", R),
         ("pdf.additional_actions", "/Root/AcroForm/Fields[0]/Kids[1]/AA/K", R),
         ("pdf.submit_form", "/Root/AcroForm/Fields[1]/A", R)),
    case("next_chain_dict", LINK, ("pdf.javascript", f"{A2}/A/Next/Next", R)),
    case("next_chain_array", LINK, ("pdf.launch", f"{A2}/A/Next[0]/Next", R),
         ("pdf.javascript", f"{A2}/A/Next[1]", R)),
    case("outline_js", LINK, ("pdf.javascript", "/Root/Outlines/First/Next/A", R)),
    case("names_js", LINK, ("pdf.javascript", "/Root/Names/JavaScript/Names[1]", R)),
    case("names_tree_kids", LINK,
         ("pdf.javascript", "/Root/Names/JavaScript/Kids[0]/Names[1]", R),
         ("pdf.javascript", "/Root/Names/JavaScript/Kids[1]/Names[1]", R),
         ("pdf.javascript", "/Root/Names/JavaScript/Kids[1]/Names[3]", R),
         ("pdf.embedded_file", "/Root/Names/EmbeddedFiles/Kids[0]/Names[1]", D),
         ("pdf.embedded_file", "/Root/Names/EmbeddedFiles/Kids[1]/Names[1]", R), embedded=True),
    case("named_actions", LINK,
         ("pdf.other_action", "/Root/Pages/Kids[0]/Annots[3]/A", R)),
    case("uri_schemes", LINK, ("pdf.uri", f"{A2}/A", K),
         ("pdf.uri", "/Root/Pages/Kids[0]/Annots[3]/A", R)),
    case("uri_schemes", ("pdf.uri", A0, R), ("pdf.uri", f"{A2}/A", R),
         ("pdf.uri", "/Root/Pages/Kids[0]/Annots[3]/A", R), policy="nokeep"),
    case("uri_open_action", LINK, ("pdf.open_action", "/Root/OpenAction", R)),
    case("hidden_js", LINK, ("pdf.javascript", "/Root/Pages/Kids[0]/PieceInfo/Foo/Private", R)),
    case("font_matrix", LINK,
         ("pdf.font_matrix", "/Root/Pages/Kids[0]/Resources/Font/F1/FontMatrix", R),
         ("pdf.font_matrix", "/Root/Pages/Kids[1]/Resources/Font/F2/FontMatrix", R)),
    case("external_stream", LINK,
         ("pdf.external_stream", "/Root/Pages/Kids[0]/Resources/XObject/Im1/F", R)),
    case("embedded_files", LINK, ("pdf.embedded_file", "/Root/Names/EmbeddedFiles/Names[1]", D),
         ("pdf.embedded_file", "/Root/Names/EmbeddedFiles/Names[3]", R), embedded=True),
    case("embedded_files", LINK, ("pdf.embedded_file", "/Root/Names/EmbeddedFiles/Names[1]", R),
         ("pdf.embedded_file", "/Root/Names/EmbeddedFiles/Names[3]", R), policy="remove"),
    case("file_attachment_txt", LINK, ("pdf.file_attachment", A2, D), embedded=True),
    case("file_attachment_txt", LINK, ("pdf.file_attachment", A2, R), policy="remove"),
    case("file_attachment_exe", LINK, ("pdf.file_attachment", A2, R)),
    # the annotation goes with the file, whichever reference the walk meets first
    case("shared_attachment", LINK, ("pdf.embedded_file", "/Root/Names/EmbeddedFiles/Names[1]", R),
         ("pdf.file_attachment", A2, R)),
    case("shared_attachment", LINK, ("pdf.embedded_file", "/Root/Names/EmbeddedFiles/Names[1]", R),
         ("pdf.file_attachment", A2, R), policy="remove"),
    case("outside_attachment", LINK, ("pdf.file_attachment", A2, R),
         ("pdf.file_attachment", "/Root/Pages/Kids[0]/Annots[3]", R)),
    case("junk_embedded_entry", LINK,
         ("pdf.embedded_file", "/Root/Names/EmbeddedFiles/Names[1]", R)),
    case("associated_file", LINK, ("pdf.embedded_file", "/Root/AF[0]", R)),
    # /AF entries go with their files, and one naming a file outside the document goes
    case("associated_files_tagged", LINK,
         ("pdf.embedded_file", "/Root/Names/EmbeddedFiles/Names[1]", D),
         ("pdf.embedded_file", "/Root/StructTreeRoot/K[0]/AF[0]", D),
         ("pdf.embedded_file", "/Root/StructTreeRoot/K[0]/AF[1]", D),
         ("pdf.embedded_file", "/Root/StructTreeRoot/K[1]/AF", R), embedded=True),
    case("associated_files_tagged", LINK,
         ("pdf.embedded_file", "/Root/Names/EmbeddedFiles/Names[1]", R),
         ("pdf.embedded_file", "/Root/StructTreeRoot/K[0]/AF[0]", R),
         ("pdf.embedded_file", "/Root/StructTreeRoot/K[0]/AF[1]", R),
         ("pdf.embedded_file", "/Root/StructTreeRoot/K[1]/AF", R), policy="remove"),
    case("portfolio_navigator", LINK,
         ("pdf.embedded_file", "/Root/Names/EmbeddedFiles/Names[1]", D),
         ("pdf.embedded_file", "/Root/Names/EmbeddedFiles/Names[3]", R),
         ("pdf.rich_media", "/Root/Collection/Navigator", R), embedded=True),
    case("portfolio_navigator", LINK,
         ("pdf.embedded_file", "/Root/Names/EmbeddedFiles/Names[1]", R),
         ("pdf.embedded_file", "/Root/Names/EmbeddedFiles/Names[3]", R),
         ("pdf.rich_media", "/Root/Collection/Navigator", R), policy="remove"),
    case("xfa", LINK, ("pdf.xfa", "/Root/AcroForm/XFA", R)),
    case("media_annots", LINK, ("pdf.rich_media", A2, R),
         ("pdf.rendition", "/Root/Pages/Kids[0]/Annots[3]", R),
         ("pdf.movie", "/Root/Pages/Kids[0]/Annots[4]", R),
         ("pdf.sound", "/Root/Pages/Kids[0]/Annots[5]", R),
         ("pdf.rich_media", "/Root/Pages/Kids[0]/Annots[6]", R)),
    case("hex_escaped", LINK, ("pdf.open_action", "/Root/OpenAction", R)),
    case("object_stream_js", LINK, ("pdf.open_action", "/Root/OpenAction", R),
         ("pdf.javascript", "/Root/Names/JavaScript/Names[1]", R)),
    case("incremental_js", LINK, ("pdf.open_action", "/Root/OpenAction", R)),
    case("earlier_revision_js", LINK, ("pdf.orphans", "", R)),
    case("orphan_js", LINK, ("pdf.orphans", "", R)),
    case("encrypted_owner", LINK, ("pdf.encrypted", "/Encrypt", R)),
    case("combination", LINK,
         ("pdf.open_action", "/Root/OpenAction", R),
         ("pdf.additional_actions", "/Root/AA/WC", R),
         ("pdf.javascript", "/Root/Names/JavaScript/Names[1]", R),
         ("pdf.embedded_file", "/Root/Names/EmbeddedFiles/Names[1]", R),
         ("pdf.xfa", "/Root/AcroForm/XFA", R),
         ("pdf.import_data", f"{A2}/A/Next[0]", R),
         ("pdf.remote_goto", "/Root/Pages/Kids[0]/Annots[3]/A", R),
         ("pdf.rich_media", "/Root/Pages/Kids[0]/Annots[4]", R),
         ("pdf.additional_actions", "/Root/Pages/Kids[1]/AA/O", R),
         ("pdf.javascript", "/Root/Outlines/First/A", R)),
    *[case(f"action_{typ}", LINK, (kind, f"{A2}/A", R)) for typ, kind in ACTION_KINDS.items()],
]

ALL_BUILDERS = {c.builder for c in CASES}
assert set(pdfgen.BUILDERS) == ALL_BUILDERS, set(pdfgen.BUILDERS) ^ ALL_BUILDERS


# ------------------------------------------------------------------------- helpers


def run(tmp_path: Path, data: bytes, policy: Policy, name: str = "in.pdf") -> tuple[Report, Path]:
    src, out = tmp_path / name, tmp_path / f"out-{name}"
    src.write_bytes(data)
    return process_file(src, out, policy=policy), out


def triples(report: Report) -> set[tuple[str, str, str]]:
    return {(f.kind, f.location, f.action) for f in report.items[0].findings}


def text_of(path: Path) -> str:
    got = subprocess.run(["pdftotext", "-q", str(path), "-"], capture_output=True, check=False)
    return " ".join(got.stdout.decode("utf-8", "replace").split())


def page_count(path: Path) -> int:
    with pikepdf.open(path) as pdf:
        return len(pdf.pages)


def qpdf_check(path: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["qpdf", "--check", str(path)], capture_output=True, check=False)


_SCRIPT_TOKEN = re.compile(rb"/(?:JavaScript|JS)(?![A-Za-z0-9#])")


def raw_script_tokens(path: Path, tmp_path: Path) -> list[bytes]:
    """/JavaScript and /JS tokens in the bytes once qpdf has decompressed everything."""
    qdf = tmp_path / f"qdf-{path.name}"
    done = subprocess.run(["qpdf", "--qdf", "--object-streams=disable", str(path), str(qdf)],
                          capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    return _SCRIPT_TOKEN.findall(qdf.read_bytes())


def check_output(src: Path, out: Path, tmp_path: Path, *, keep_uri: bool,
                 allow_embedded: bool) -> None:
    check = qpdf_check(out)
    assert check.returncode == 0, check.stdout + check.stderr
    assert page_count(out) == page_count(src)
    assert text_of(out) == text_of(src)
    assert text_of(out)  # the base documents have text: an empty extraction is a bug
    problems = pdfwalk.check(str(out), keep_uri=keep_uri, allow_embedded=allow_embedded)
    assert problems == [], [str(p) for p in problems]
    assert raw_script_tokens(out, tmp_path) == []


# --------------------------------------------------------------------------- cases


@pytest.mark.parametrize("c", CASES, ids=lambda c: c.id)
def test_disarm(c: Case, tmp_path: Path) -> None:
    policy = POLICIES[c.policy]
    report, out = run(tmp_path, pdfgen.BUILDERS[c.builder](), policy)
    assert report.items[0].stage == "pdf"
    assert triples(report) == set(c.findings)
    assert report.verdict is c.verdict, report.reason
    assert out.exists()
    check_output(tmp_path / "in.pdf", out, tmp_path, keep_uri=policy.format("pdf").keep == LINKS,
                 allow_embedded=c.embedded)
    # disarming the output again removes nothing (embedded files are always re-embedded
    # from their rebuilt copy, which is recorded as "disarmed")
    again, _ = run(tmp_path, out.read_bytes(), policy, "again.pdf")
    assert {f.action for f in again.items[0].findings
            if f.kind not in ("pdf.embedded_file", "pdf.file_attachment")} <= {K}
    assert {f.action for f in again.items[0].findings} <= {K, D}
    assert again.verdict is (Verdict.DISARMED if c.embedded else Verdict.CLEAN)


@pytest.mark.parametrize("c", CASES, ids=lambda c: c.id)
def test_scan_reports_what_disarm_does(c: Case, tmp_path: Path) -> None:
    src = tmp_path / "in.pdf"
    src.write_bytes(pdfgen.BUILDERS[c.builder]())
    report = scan_file(src, policy=POLICIES[c.policy])
    assert {(k, loc) for k, loc, _ in triples(report)} == {(k, loc) for k, loc, _ in c.findings}
    assert report.output is None


@pytest.mark.parametrize(("builder", "policy", "expected"), [
    ("embedded_files", "keep", {("/Root/Names/EmbeddedFiles/Names[1]", D),   # JavaScript inside
                                ("/Root/Names/EmbeddedFiles/Names[3]", R)}),  # an executable
    ("file_attachment_txt", "keep", {(A2, K)}),                               # plain text: clean
    ("embedded_files", "remove", {("/Root/Names/EmbeddedFiles/Names[1]", R),
                                  ("/Root/Names/EmbeddedFiles/Names[3]", R)}),
])
def test_scan_embedded_file_actions(builder: str, policy: str,
                                    expected: set[tuple[str, str]], tmp_path: Path) -> None:
    """In scan mode an embedded file is kept (clean), disarmed or removed, as disarm would."""
    src = tmp_path / "in.pdf"
    src.write_bytes(pdfgen.BUILDERS[builder]())
    report = scan_file(src, policy=POLICIES[policy])
    got = {(loc, action) for kind, loc, action in triples(report)
           if kind in ("pdf.embedded_file", "pdf.file_attachment")}
    assert got == expected


def test_trailer_keys_are_swept(tmp_path: Path) -> None:
    data = pdfgen.plain().replace(b"trailer <<", b"trailer << /OpenAction << /S /JavaScript "
                                  b"/JS (x) >>", 1)
    assert b"/OpenAction" in data
    report, out = run(tmp_path, data, POLICIES["keep"])
    assert ("pdf.open_action", "/OpenAction", R) in triples(report)
    assert raw_script_tokens(out, tmp_path) == []


def test_hex_escaped_names_are_in_the_raw_bytes() -> None:
    data = pdfgen.hex_escaped()
    assert b"/S /J#61vaScript" in data and b"/J#53 (" in data


def test_embedded_pdf_is_disarmed_recursively(tmp_path: Path) -> None:
    report, out = run(tmp_path, pdfgen.embedded_files(), POLICIES["keep"])
    inner = [i for i in report.items if i.location.endswith("/inner.pdf")]
    assert len(inner) == 1 and inner[0].verdict is Verdict.DISARMED
    assert {(f.kind, f.location) for f in inner[0].findings} >= {
        ("pdf.open_action", "/Root/OpenAction")}
    exe = [i for i in report.items if i.location.endswith("/tool.exe")]
    assert exe[0].verdict is Verdict.BLOCKED
    removed = next(f for f in report.items[0].findings if f.action == R)
    assert "executable.pe" in removed.detail
    with pikepdf.open(out) as pdf:
        files = pdf.attachments
        assert list(files) == ["inner.pdf"]
        spec = files["inner.pdf"]
        stream = spec.obj.EF.F
        assert stream.Params.Size == len(stream.read_bytes())
        assert "/CheckSum" not in stream.Params
        assert stream.Subtype == pikepdf.Name("/application/pdf")
        inner_pdf = stream.read_bytes()
    assert b"/OpenAction" in pdfgen.inner_pdf()
    assert pdfwalk.check(inner_pdf, keep_uri=True) == []


@pytest.mark.parametrize("policy", ["default", "option left out"])
def test_embedded_files_are_removed_by_default(policy: str, tmp_path: Path) -> None:
    """The shipped default policy, and a pdf policy that does not name the option, take
    every attachment out; an independent walk and qpdf agree, and the page text stays."""
    pol = DEFAULT if policy == "default" else pdf_policy("bare", LINKS)
    assert DEFAULT.format("pdf").options["embedded_files"] == "remove"
    data = pdfgen.embedded_files()
    report, out = run(tmp_path, data, pol)
    assert report.verdict is Verdict.DISARMED
    assert {(k, loc, a) for k, loc, a in triples(report) if k == "pdf.embedded_file"} == {
        ("pdf.embedded_file", "/Root/Names/EmbeddedFiles/Names[1]", R),
        ("pdf.embedded_file", "/Root/Names/EmbeddedFiles/Names[3]", R)}
    assert len(report.items) == 1  # nothing was opened and recursed into
    assert pdfwalk.check(out.read_bytes(), keep_uri=True) == []  # /EmbeddedFile(s) flagged
    assert b"/EmbeddedFile" not in subprocess.run(
        ["qpdf", "--qdf", "--object-streams=disable", str(out), "-"], capture_output=True,
        check=True).stdout
    assert subprocess.run(["qpdf", "--check", str(out)], capture_output=True,
                          check=False).returncode == 0
    src = tmp_path / "in.pdf"
    assert text_of(out) == text_of(src) != ""


_ZIP = b"PK\x03\x04\x14\x00\x00\x00\x00\x00" + bytes(16) + b"\x05\x00\x00\x00a.exe"


@pytest.mark.parametrize(("before", "after", "expected"), [
    (pdfgen.EXE[:64], b"", {("pdf.foreign_data", "%PDF", R)}),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", b"", {("pdf.foreign_data", "%PDF", R)}),
    (b"<html><script>alert(1)</script>\n", b"", {("pdf.foreign_data", "%PDF", R)}),
    (b"", b"\n" + _ZIP, {("pdf.foreign_data", "%%EOF", R)}),
    (pdfgen.EXE[:64], _ZIP, {("pdf.foreign_data", "%PDF", R), ("pdf.foreign_data", "%%EOF", R)}),
    (b"% a comment before the header\nSome junk before the header\n", b"\n\x00\x00", set()),
])
def test_files_glued_around_a_pdf_are_reported(before: bytes, after: bytes,
                                               expected: set[tuple[str, str, str]],
                                               tmp_path: Path) -> None:
    """An executable, a picture or markup before the header, or an archive after the end
    (polyglots) are named in the report; the rebuilt output starts at its header and
    holds neither. Comments and stray text around a PDF are no such file."""
    data = pdfgen.plain(1)
    report, out = run(tmp_path, before + data + after, POLICIES["keep"])
    assert {f for f in triples(report) if f[0] == "pdf.foreign_data"} == expected
    raw = out.read_bytes()
    assert raw.startswith(b"%PDF-") and b"PK\x03\x04" not in raw and b"This program" not in raw
    assert qpdf_check(out).returncode == 0
    assert text_of(out) == text_of(tmp_path / "in.pdf") != ""


@pytest.mark.parametrize(("policy", "stays"), [("keep", True), ("remove", False)])
def test_portfolio_without_its_files_shows_its_pages(policy: str, stays: bool,
                                                     tmp_path: Path) -> None:
    """A portfolio keeps its file list without the Flash navigator while files stay; a
    portfolio whose files all went is no portfolio any more (a reader shows the pages,
    not an empty list)."""
    _, out = run(tmp_path, pdfgen.portfolio_navigator(), POLICIES[policy])
    with pikepdf.open(out) as pdf:
        assert ("/Collection" in pdf.Root) is stays
        if stays:
            assert "/Navigator" not in pdf.Root.Collection
            assert pdf.Root.Collection.View == pikepdf.Name.H


@pytest.mark.parametrize("builder", ["associated_file", "associated_files_tagged"])
def test_no_associated_file_entry_outlives_its_file(builder: str, tmp_path: Path) -> None:
    """After the default policy took the files out, no /AF entry and no file
    specification is left (qpdf's full object listing), and the text stays."""
    report, out = run(tmp_path, pdfgen.BUILDERS[builder](), DEFAULT)
    assert report.verdict is Verdict.DISARMED
    listing = subprocess.run(["qpdf", "--qdf", "--object-streams=disable", str(out), "-"],
                             capture_output=True, check=True).stdout
    assert b"/AF" not in listing and b"/Filespec" not in listing
    assert b"/EmbeddedFile" not in listing
    assert text_of(out) == text_of(tmp_path / "in.pdf") != ""


@pytest.mark.parametrize("target", ["self", "catalog"])
def test_additional_actions_that_are_no_actions_dictionary(tmp_path: Path,
                                                           target: str) -> None:
    """Found by mutating the corpus: a page whose /AA pointed at the page itself made
    the walk delete the page's own keys as non-events, then fail on /AA (an internal
    error). An /AA that is a page, the catalog or its holder goes, the page stays."""
    pdf = pdfgen.base()
    page = pdf.pages[1].obj
    page["/AA"] = page if target == "self" else pdf.Root
    data = pdfgen.save(pdf)
    report, out = run(tmp_path, data, POLICIES["keep"])
    assert report.verdict is Verdict.DISARMED, report.reason
    assert ("pdf.additional_actions", "/Root/Pages/Kids[1]/AA", "removed") in triples(report)
    assert qpdf_check(out).returncode == 0
    assert page_count(out) == 3
    src = tmp_path / "src.pdf"
    src.write_bytes(data)
    assert text_of(out) == text_of(src)


@pytest.mark.parametrize("case", ["goto_self", "aa_stream", "annot_stream"])
def test_actions_and_annotations_of_odd_shapes_found_by_fuzzing(tmp_path: Path,
                                                                 case: str) -> None:
    """A link's GoTo whose own /A and /Next pointed back at it was copied with that /A,
    whose cleaning made a new copy, and so on until the worker died; an /AA or a
    RichMedia annotation that is a stream failed on deleting its /Length (pikepdf
    refuses): internal errors. Run in a worker held to the job's limits."""
    from tests.helpers.pipeline import run_in_worker

    pdf = pdfgen.base()
    page = pdf.pages[0].obj
    if case == "goto_self":
        goto = pdf.make_indirect(pikepdf.Dictionary(S=pikepdf.Name.GoTo,
                                                    D=pikepdf.Array([page, pikepdf.Name.Fit])))
        goto["/A"] = goto
        goto["/Next"] = goto
        page["/Annots"] = pikepdf.Array([pdf.make_indirect(pikepdf.Dictionary(
            Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Link, Rect=[0, 0, 10, 10],
            A=goto))])
    elif case == "aa_stream":
        page["/AA"] = pdf.make_stream(b"x", O=pikepdf.Dictionary(S=pikepdf.Name.JavaScript,
                                                                  JS=pikepdf.String("app")))
    else:
        media = pdf.make_stream(b"media", Type=pikepdf.Name.Annot,
                                Subtype=pikepdf.Name.RichMedia, Rect=[0, 0, 10, 10])
        page["/Annots"] = pikepdf.Array([media])
    data = pdfgen.save(pdf)
    report, out = run_in_worker(tmp_path, data, "odd.pdf")
    assert report.verdict.delivered, report.reason
    assert qpdf_check(out).returncode == 0
    assert page_count(out) == 3


def test_encrypted_with_user_password_is_blocked(tmp_path: Path) -> None:
    report, out = run(tmp_path, pdfgen.encrypted_user(), POLICIES["keep"])
    assert report.verdict is Verdict.BLOCKED
    assert triples(report) == {("block.encrypted", "", "blocked")}
    assert report.reason == "PDF requires a password to open"
    assert not out.exists()


def test_encrypted_for_certificate_holders_is_blocked_as_encrypted(tmp_path: Path) -> None:
    """Was blocked as "damaged beyond repair (unsupported encryption filter)"."""
    report, out = run(tmp_path, pdfgen.encrypted_public_key(), POLICIES["keep"])
    assert report.verdict is Verdict.BLOCKED
    assert triples(report) == {("block.encrypted", "", "blocked")}
    assert "certificate holders" in (report.reason or "")
    assert not out.exists()


def test_attachment_that_draws_its_name_keeps_what_it_shows(tmp_path: Path) -> None:
    """An attachment annotation drawing text on the page (texlive's attachfile.pdf, etoc.pdf:
    file names, "click here") was taken off the page with its file: pdftotext lost that
    text. It stays as a stamp of its appearance, without the file; an attachment with
    only an icon still goes."""
    src = tmp_path / "in.pdf"
    src.write_bytes(pdfgen.drawn_attachment())
    assert "budget-2026.xlsx" in text_of(src)
    report, out = run(tmp_path, src.read_bytes(), DEFAULT, "drawn.pdf")
    assert triples(report) == {
        ("pdf.uri", "/Root/Pages/Kids[0]/Annots[0]/A", "removed"),   # the base's web link
        ("pdf.file_attachment", "/Root/Pages/Kids[0]/Annots[2]", "removed"),
        ("pdf.file_attachment", "/Root/Pages/Kids[0]/Annots[3]", "removed")}
    assert "budget-2026.xlsx" in text_of(out)          # poppler still reads it
    assert qpdf_check(out).returncode == 0
    assert pdfwalk.check(str(out)) == []
    with pikepdf.open(out) as pdf:
        kinds = [str(a.get("/Subtype")) for a in pdf.pages[0].obj.get("/Annots", [])]
        assert "/Stamp" in kinds and "/FileAttachment" not in kinds
        assert not any("/EmbeddedFile" in repr(o) or "/FS" in getattr(o, "keys", list)()
                       for o in pdf.objects if isinstance(o, pikepdf.Dictionary))


def test_encrypted_attachments_only_opens_without_a_password(tmp_path: Path) -> None:
    """Only the attachments encrypted (qpdf's enc-XI-...encrypted-attachments.pdf,
    nontrivial-crypt-filter.pdf): poppler and Acrobat show the pages without a
    password, qpdf asks for one, and the file was blocked. The pages are delivered;
    the attachment, which no one can read without its password, is removed."""
    data = pdfgen.encrypted_attachments_only()
    with pytest.raises(pikepdf.PasswordError):
        pikepdf.open(io.BytesIO(data))
    src = tmp_path / "in.pdf"
    src.write_bytes(data)
    shown = subprocess.run(["pdftotext", "-q", str(src), "-"], capture_output=True,
                           check=False).stdout.decode().split()
    assert shown  # poppler opens the input without a password
    for policy in ("keep", "remove"):  # attachments disarmed, or removed by policy
        report, out = run(tmp_path, data, POLICIES[policy])
        assert report.verdict is Verdict.DISARMED, report.reason
        found = triples(report)
        assert ("pdf.encrypted", "/Encrypt", "removed") in found
        assert ("pdf.embedded_file", "/Root/Names/EmbeddedFiles/Names[1]", "removed") in found
        assert qpdf_check(out).returncode == 0
        with pikepdf.open(out) as pdf:
            assert not pdf.is_encrypted and len(pdf.attachments) == 0
            assert len(pdf.pages) == 3
        assert text_of(out).split() == shown


def test_user_password_given_opens_and_decrypts(tmp_path: Path) -> None:
    src, out = tmp_path / "in.pdf", tmp_path / "out.pdf"
    src.write_bytes(pdfgen.encrypted_user())
    wrong = process_file(src, out, policy=POLICIES["keep"], password="guess")
    assert (wrong.verdict, wrong.reason) == (Verdict.BLOCKED, "the password is not correct")
    assert not out.exists()
    report = process_file(src, out, policy=POLICIES["keep"], password="open-me")
    assert report.verdict is Verdict.DISARMED
    assert ("pdf.encrypted", "/Encrypt", "removed") in triples(report)
    assert qpdf_check(out).returncode == 0
    with pikepdf.open(out) as pdf:  # opens without any password now
        assert not pdf.is_encrypted
    plain = subprocess.run(["pdftotext", "-q", "-upw", "open-me", str(src), "-"],
                           capture_output=True, check=False).stdout.split()
    assert text_of(out).split() == [w.decode() for w in plain] and plain  # poppler agrees


def test_owner_password_output_is_not_encrypted(tmp_path: Path) -> None:
    _report, out = run(tmp_path, pdfgen.encrypted_owner(), POLICIES["keep"])
    with pikepdf.open(out) as pdf:
        assert not pdf.is_encrypted


def test_structure_attributes_are_not_taken_for_actions(tmp_path: Path) -> None:
    """PDFBox's PDFBOX-4417-054080.pdf: a structure element's attribute object
    (/A << /O /Link /S /R >>) was emptied as an "unknown action type R". It stays; an
    action of a known bad type there is still removed, /O or not."""
    pdf = pdfgen.base(pages=1)
    attrs = pdf.make_indirect(pikepdf.Dictionary(O=pikepdf.Name.Layout, S=pikepdf.Name.R,
                                                 ID=pikepdf.String("F200707")))
    launch = pikepdf.Dictionary(S=pikepdf.Name.Launch, O=pikepdf.Name.Layout,
                                F=pikepdf.String("calc.exe"))
    root = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.StructTreeRoot))
    good = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.StructElem,
                                                S=pikepdf.Name.Link, P=root, A=attrs))
    bad = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.StructElem,
                                               S=pikepdf.Name.P, P=root, A=launch))
    root.K = pikepdf.Array([good, bad])
    pdf.Root.StructTreeRoot = root
    report, out = run(tmp_path, pdfgen.save(pdf), DEFAULT)
    assert {(f.kind, f.location) for f in report.items[0].findings} == {
        ("pdf.launch", "/Root/StructTreeRoot/K[1]/A"),
        ("pdf.uri", "/Root/Pages/Kids[0]/Annots[0]/A")}  # the base document's web link
    with pikepdf.open(out) as done:
        kept = done.Root.StructTreeRoot.K[0].A
        assert (kept.O, kept.S, str(kept.ID)) == ("/Layout", "/R", "F200707")
        assert "/F" not in done.Root.StructTreeRoot.K[1].A


def test_repairable_damage_is_repaired(tmp_path: Path) -> None:
    data = pdfgen.damaged_xref()
    report, out = run(tmp_path, data, POLICIES["keep"])
    assert report.verdict is Verdict.CLEAN
    assert triples(report) == {LINK, ("pdf.repaired", "", REP)}
    assert qpdf_check(tmp_path / "in.pdf").returncode != 0  # the input really was damaged
    check_output(tmp_path / "in.pdf", out, tmp_path, keep_uri=True, allow_embedded=False)


def test_page_tree_listing_an_empty_node_twice_is_repaired(tmp_path: Path) -> None:
    """PyMuPDF's test_4147.pdf: the root /Kids holds the same empty /Pages node twice;
    qpdf calls that a loop and refused the file (blocked), poppler shows its page."""
    data = pdfgen._classic(pdfgen.base(pages=2))
    with pikepdf.open(io.BytesIO(data)) as pdf:
        tree = pdf.Root.Pages
        pages_num = tree.objgen[0]
        kids = b" ".join(b"%d 0 R" % k.objgen[0] for k in tree.Kids)
        size = int(pdf.trailer.Size)
    empty = size
    data = pdfgen.append_update(data, {
        pages_num: b"<< /Type /Pages /Count 2 /Kids [%s %d 0 R %d 0 R] >>" % (kids, empty, empty),
        empty: b"<< /Type /Pages /Count 0 /Kids [] /Parent %d 0 R >>" % pages_num,
    }, root=pdfgen._catalog(data)[0], size=size + 1)
    src = tmp_path / "in.pdf"
    src.write_bytes(data)
    assert b"Loop detected" in qpdf_check(src).stderr + qpdf_check(src).stdout
    report, out = run(tmp_path, data, DEFAULT)
    assert report.verdict.delivered, report.reason
    assert qpdf_check(out).returncode == 0
    with pikepdf.open(out) as done:
        assert len(done.pages) == 2


def test_garbage_is_malformed_with_a_clear_reason(tmp_path: Path) -> None:
    report, out = run(tmp_path, pdfgen.garbage(), POLICIES["keep"])
    assert report.verdict is Verdict.BLOCKED
    assert triples(report) == {("block.malformed", "", "blocked")}
    reason = report.reason or ""
    assert reason.startswith("PDF is damaged beyond repair: ")
    assert "Traceback" not in reason and "/tmp" not in reason and "<" not in reason
    assert not out.exists()


def test_unopenable_file_is_salvaged(tmp_path: Path) -> None:
    """qpdf's recovery gives up on an unparsable /Kids array; the salvage rebuilds the file."""
    data = pdfgen.broken_page_tree()
    report, out = run(tmp_path, data, POLICIES["keep"])
    assert report.verdict is Verdict.DISARMED
    assert triples(report) == {("pdf.open_action", "/Root/OpenAction", R),
                               ("pdf.repaired", "", REP)}
    repaired = next(f for f in report.items[0].findings if f.kind == "pdf.repaired")
    assert "rebuilt from the objects of a damaged file (root of pages tree" in repaired.detail
    assert qpdf_check(out).returncode == 0
    assert text_of(out) == pdfgen.TEXT[1]
    assert pdfwalk.check(str(out)) == []


def test_catalog_in_the_trailer(tmp_path: Path) -> None:
    """A catalog written into the trailer, no xref, no endobj (corkami style)."""
    data = pdfgen.root_in_trailer()
    src = tmp_path / "raw.pdf"
    src.write_bytes(data)
    assert text_of(src) == ""  # poppler cannot read the original either
    report, out = run(tmp_path, data, POLICIES["keep"])
    assert report.verdict is Verdict.DISARMED
    assert {(k, loc) for k, loc, _ in triples(report)} == {
        ("pdf.open_action", "/Root/OpenAction"), ("pdf.repaired", "")}
    assert qpdf_check(out).returncode == 0
    assert text_of(out) == pdfgen.TEXT[0]
    assert pdfwalk.check(str(out)) == []


@pytest.mark.parametrize(("builder", "removed"), [
    ("script_only", {("pdf.open_action", "/Root/OpenAction"), ("pdf.orphans", "")}),
    ("no_pages_names_js", {("pdf.javascript", "/Root/Names/JavaScript/Names[1]")}),
])
def test_document_without_a_page_gets_a_blank_one(tmp_path: Path, builder: str,
                                                   removed: set[tuple[str, str]]) -> None:
    """Script-only files are delivered disarmed with one blank page (was: blocked); the
    page is what lets qpdf, poppler and every viewer open the result."""
    data = getattr(pdfgen, builder)()
    src = tmp_path / "raw.pdf"
    src.write_bytes(data)
    info = subprocess.run(["pdfinfo", str(src)], capture_output=True, check=False)
    assert b"Pages:           1" not in info.stdout  # poppler finds no page in the original
    report, out = run(tmp_path, data, POLICIES["keep"])
    assert report.verdict is Verdict.DISARMED
    assert {(k, loc) for k, loc, _ in triples(report)} == removed | {("pdf.repaired", "")}
    repaired = next(f for f in report.items[0].findings if f.kind == "pdf.repaired")
    assert "no page found: one blank page added" in repaired.detail
    assert qpdf_check(out).returncode == 0
    info = subprocess.run(["pdfinfo", str(out)], capture_output=True, check=True)
    assert b"Pages:           1" in info.stdout
    assert b"595 x 842 pts (A4)" in info.stdout
    assert pdfwalk.check(str(out)) == []
    assert raw_script_tokens(out, tmp_path) == []


def test_orphaned_javascript_is_not_written(tmp_path: Path) -> None:
    for data in (pdfgen.orphan_js(), pdfgen.earlier_revision_js()):
        assert b"/JavaScript" in data
        _report, out = run(tmp_path, data, POLICIES["keep"])
        assert raw_script_tokens(out, tmp_path) == []


def test_verify_blocks_an_output_with_leftovers(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The verify step scans our output: a disarm that copies the document is caught."""
    def copy_through(self: object, src: object, dst: object, ctx: object) -> None:
        with pikepdf.open(src) as pdf:  # type: ignore[call-overload]
            pdf.save(dst)

    monkeypatch.setattr(gateway.stages.pdf.PdfStage, "disarm", copy_through)
    report, out = run(tmp_path, pdfgen.hidden_js(), POLICIES["keep"])
    assert report.verdict is Verdict.BLOCKED
    assert ("block.residual", "", "blocked") in triples(report)
    assert "pdf.javascript@/Root/Pages/Kids[0]/PieceInfo/Foo/Private" in (report.reason or "")
    assert not out.exists()


@pytest.mark.parametrize("form", ["destination", "goto"])
def test_open_view_goes_too_so_nothing_runs_on_open(tmp_path: Path, form: str) -> None:
    """An /OpenAction that only opens page 2 at a zoom runs nothing, but PDFiD-style
    checkers count the key; it goes (recorded as information) and the pages stay."""
    pdf = pdfgen.base(3)
    dest = pikepdf.Array([pdf.pages[1].obj, pikepdf.Name.Fit])
    pdf.Root.OpenAction = dest if form == "destination" else pikepdf.Dictionary(
        S=pikepdf.Name.GoTo, D=dest)
    src_bytes = pdfgen.save(pdf)
    report, out = run(tmp_path, src_bytes, POLICIES["keep"])
    assert report.verdict is Verdict.DISARMED
    assert triples(report) == {("pdf.open_view", "/Root/OpenAction", R),
                               ("pdf.uri", "/Root/Pages/Kids[0]/Annots[0]/A", K)}  # the base's
    assert {f.severity for f in report.findings if f.kind == "pdf.open_view"} == {"info"}
    with pikepdf.open(out) as pdf_out:
        assert "/OpenAction" not in pdf_out.Root and len(pdf_out.pages) == 3
    assert pdfwalk.check(str(out), keep_uri=True) == []
    text = subprocess.run(["pdftotext", "-q", str(out), "-"], capture_output=True,
                          check=True).stdout
    assert all(line.encode() in text for line in pdfgen.TEXT[:3])


def test_kept_links_follow_policy_only_where_clicked(tmp_path: Path) -> None:
    _report, out = run(tmp_path, pdfgen.uri_open_action(), POLICIES["keep"])
    with pikepdf.open(out) as pdf:
        assert "/OpenAction" not in pdf.Root
        uri = pdf.pages[0].obj.Annots[0].A.URI
        assert bytes(uri) == b"https://example.com/doc"


def test_chain_keeps_allowed_actions_in_order(tmp_path: Path) -> None:
    _report, out = run(tmp_path, pdfgen.next_chain_array(), POLICIES["keep"])
    with pikepdf.open(out) as pdf:
        action = pdf.pages[0].obj.Annots[2].A
        chain = [action, *action.Next]
        assert [str(a.S) for a in chain] == ["/GoTo", "/GoTo", "/Named"]
        assert all("/Next" not in a for a in chain[1:])


def test_outline_and_links_survive(tmp_path: Path) -> None:
    _report, out = run(tmp_path, pdfgen.outline_js(), POLICIES["keep"])
    with pikepdf.open(out) as pdf, pdf.open_outline() as outline:
        assert [item.title for item in outline.root] == ["Chapter 1", "Chapter 2"]
        second = pdf.Root.Outlines.First.Next
        assert "/A" not in second  # only its JavaScript action went
        assert len(pdf.pages[0].obj.Annots) == 2


# ----------------------------------------------------------------- robustness, speed


@settings(max_examples=60, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_damaged_inputs_never_fail_internally(tmp_path: Path, data: st.DataObject) -> None:
    raw = bytearray(pdfgen.BUILDERS[data.draw(st.sampled_from(
        ["combination", "form_fields", "embedded_files", "object_stream_js"]))]())
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(8, len(raw) - 1))  # the header stays: sniffed as PDF
        raw[pos] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(16, len(raw)))]
    report, out = run(tmp_path, bytes(raw), POLICIES["keep"])
    assert report.items[0].stage == "pdf"
    assert report.verdict is not Verdict.FAILED, report.reason
    if report.verdict.delivered:
        assert pdfwalk.check(str(out), keep_uri=True, allow_embedded=True) == []


@settings(max_examples=80, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 2**32))
def test_actions_hidden_anywhere_are_removed(tmp_path: Path, seed: int) -> None:
    """Disallowed actions in random dictionaries, any slot or none: nothing active is left."""
    report, out = run(tmp_path, pdfgen.hidden_actions(seed), POLICIES["keep"])
    assert report.verdict.delivered, report.reason
    assert pdfwalk.check(str(out), keep_uri=True) == []
    assert raw_script_tokens(out, tmp_path) == []


@pytest.mark.slow
def test_200_pages_in_under_a_second(tmp_path: Path) -> None:
    pdf = pdfgen.base(200)
    for page in pdf.pages:
        pdfgen.add_annot(pdf, pdfgen.link(pikepdf.Dictionary(
            S=pikepdf.Name.URI, URI=pikepdf.String("https://example.com/"))), page.index)
    pdf.Root.OpenAction = pdfgen.js()
    data = pdfgen.save(pdf)
    run(tmp_path, data, POLICIES["keep"], "warm.pdf")
    started = time.perf_counter()
    report, out = run(tmp_path, data, POLICIES["keep"])
    elapsed = time.perf_counter() - started
    assert report.verdict is Verdict.DISARMED
    assert page_count(out) == 200
    assert elapsed < 1.0, f"{elapsed:.2f}s"


# ------------------------------------------------------------------------- corpus

#: corpus files that cannot be delivered, and why (a regression that blocks any
#: other file fails the test)
EXPECTED_BLOCKED = {
    "pdfjs/print_protection.pdf": ("block.encrypted", "needs its user password to open"),
    "pdfjs/saslprep-r6.pdf": ("block.encrypted", "needs its user password to open"),
    "qpdf/issue-100.pdf": ("block.malformed", "fuzzer garbage: no trailer, no catalog"),
    "pdfjs/REDHAT-1531897-0.pdf": ("block.malformed",
                                   "truncated fragment: the catalog is not in the file"),
}

_RUNNER = """
import json, sys
from pathlib import Path
import gateway.stages.pdf
from gateway.pipeline.run import process_file
from gateway.policy import load
report = process_file(Path(sys.argv[1]), Path(sys.argv[2]), policy=load("default"))
print(json.dumps(report.to_dict()))
"""


def corpus_files() -> list[str]:
    import os

    base = Path(os.environ.get("SEKISHO_CORPUS", Path(__file__).resolve().parents[3]
                               / "shared" / "corpus")) / "a_pdf"
    return sorted(str(p.relative_to(base)) for p in base.glob("*/*.pdf")) if base.is_dir() \
        else ["(corpus missing)"]


@pytest.mark.slow
@pytest.mark.parametrize("rel", corpus_files())
def test_corpus(rel: str, pdf_corpus: Path, tmp_path: Path) -> None:
    src = pdf_corpus / rel
    out = tmp_path / "out.pdf"
    done = subprocess.run([sys.executable, "-c", _RUNNER, str(src), str(out)],
                          capture_output=True, timeout=120, check=False,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    report = json.loads(done.stdout.decode().strip().splitlines()[-1])
    verdict = report["verdict"]
    root = report["items"][0]
    if rel in EXPECTED_BLOCKED:
        kind, _why = EXPECTED_BLOCKED[rel]
        assert verdict == "blocked", report
        assert [f["kind"] for f in root["findings"]] == [kind]
        assert root["error"], "a blocked file needs a clear reason"
        return
    assert verdict in ("clean", "disarmed"), f"{rel}: {verdict}: {root['error']}"
    check = qpdf_check(out)
    assert check.returncode == 0, (check.stdout + check.stderr).decode()[-2000:]
    problems = pdfwalk.check(str(out), keep_uri=True, allow_embedded=True)
    assert problems == [], [str(p) for p in problems]
    try:
        before = page_count(src)
    except pikepdf.PdfError:
        return  # pikepdf cannot count the original's pages (a broken page tree)
    assert page_count(out) == before


def test_unbalanced_catalog_is_salvaged(tmp_path: Path) -> None:
    """Brackets a fuzzer broke are balanced as poppler reads them; qpdf finds no catalog
    in the original. The widget (it has /Parent and /Contents) does not become a page."""
    data = pdfgen.unbalanced_catalog()
    src = tmp_path / "raw.pdf"
    src.write_bytes(data)
    assert b"unable to find /Root dictionary" in qpdf_check(src).stderr
    report, out = run(tmp_path, data, POLICIES["keep"])
    assert report.verdict is Verdict.DISARMED
    assert {(k, loc) for k, loc, _ in triples(report)} == {
        ("pdf.open_action", "/Root/OpenAction"), ("pdf.repaired", "")}
    assert qpdf_check(out).returncode == 0
    info = subprocess.run(["pdfinfo", str(out)], capture_output=True, check=True)
    assert b"Pages:           1" in info.stdout
    assert text_of(out) == pdfgen.TEXT[2]
    assert pdfwalk.check(str(out)) == []
    with pikepdf.open(out) as pdf:
        assert [str(f.T) for f in pdf.Root.AcroForm.Fields] == ["ok"]


def test_encrypt_that_is_not_a_dictionary_is_ignored(tmp_path: Path) -> None:
    """qpdf refuses a trailer whose /Encrypt is not a dictionary; poppler reads the file
    as unencrypted, and so does the salvage (was: blocked as damaged beyond repair)."""
    data = pdfgen.bogus_encrypt()
    src = tmp_path / "raw.pdf"
    src.write_bytes(data)
    assert b"is not a dictionary" in qpdf_check(src).stderr
    assert text_of(src) == pdfgen.TEXT[0]
    report, out = run(tmp_path, data, POLICIES["keep"])
    assert report.verdict is Verdict.DISARMED
    assert {(k, loc) for k, loc, _ in triples(report)} == {
        ("pdf.open_action", "/Root/OpenAction"), ("pdf.repaired", ""), ("pdf.orphans", ""),
        ("pdf.uri", "/Root/Pages/Kids[0]/Annots[0]/A")}  # kept by this policy
    repaired = next(f for f in report.items[0].findings if f.kind == "pdf.repaired")
    assert "/Encrypt in trailer dictionary is not a dictionary" in repaired.detail
    assert qpdf_check(out).returncode == 0
    assert text_of(out) == pdfgen.TEXT[0]
    assert pdfwalk.check(str(out), keep_uri=True) == []  # the policy keeps links
    with pikepdf.open(out) as pdf:
        assert not pdf.is_encrypted and "/Encrypt" not in pdf.trailer


def test_ciphertext_content_of_an_ignored_encrypt_is_emptied(tmp_path: Path) -> None:
    """Content encrypted with the key the damaged /Encrypt held decodes in no reader;
    it is emptied (poppler draws the same blank page) so qpdf --check passes."""
    data = pdfgen.bogus_encrypt(ciphertext=True)
    report, out = run(tmp_path, data, POLICIES["keep"])
    assert report.verdict is Verdict.DISARMED
    repaired = next(f for f in report.items[0].findings if f.kind == "pdf.repaired")
    assert repaired.detail.endswith("first: 1 page content streams were encrypted with a key "
                                    "the file no longer holds: left empty")
    assert qpdf_check(out).returncode == 0
    with pikepdf.open(out) as pdf:
        assert pdf.pages[0].Contents.read_bytes() == b""
    _report, plain = run(tmp_path, pdfgen.bogus_encrypt(), POLICIES["keep"], "plain.pdf")
    assert text_of(plain) == pdfgen.TEXT[0]  # decodable content is never emptied


def test_real_encryption_is_never_salvaged_away() -> None:
    """Only a non-dictionary /Encrypt is ignored: an encrypted file is not rebuilt
    without its encryption (its strings and streams would be ciphertext)."""
    data = pdfgen.bogus_encrypt().replace(b"E< /Filter", b"<< /Filter")
    assert salvage(data) == []
    assert salvage(pdfgen.bogus_encrypt()) != []


@pytest.mark.parametrize(("body", "fixed"), [
    (b"<< /A << /Q 0 > >>", b"<< /A << /Q 0   >>\n>>"),            # stray ">", then closed
    (b"<< /Kids 8 0 R ] /Count 1 >>", b"<< /Kids 8 0 R   /Count 1 >>"),  # "]" matching nothing
    (b"<< /A [1 2 >>", b"<< /A [1 2 ]>>"),                         # array left open in a dict
    (b"<< /A 1 % comment", b"<< /A 1 % comment\n>>"),             # closed after the comment
    (b"<< /T (left \\( open >>", b"<< /T (left \\( open >>)\n>>"),  # string left open
    (b"<< /T (a (b) >>", b"<< /T (a (b) >>)\n>>"),
    (b"[ 1 2", b"[ 1 2\n]"),
    (b"<< /S (a>b]) /H <41> /C [ (x) ] >>", None),                 # balanced: unchanged
    (b"<< % a comment >> here\n /A 1 >>", None),
    (b"<< % a comment >> here\n /A 1", b"<< % a comment >> here\n /A 1\n>>"),
    (b"42", None),
    (b"[" * 401 + b"1" + b"]" * 401, b"[" * 400 + b" null " + b"]" * 400),   # too deep: cut
    (b"<< /A " + b"[" * 400 + b"<< /B 1 >>" + b"]" * 400 + b" /C 2 >>",
     b"<< /A " + b"[" * 399 + b" null " + b"]" * 399 + b" /C 2 >>"),
    (b"[" * 400 + b"1" + b"]" * 400, None),
    (b"[" * 405, b"[" * 400 + b" null \n" + b" ".join([b"]"] * 400)),     # cut and left open
])
def test_salvage_balances_brackets(body: bytes, fixed: bytes | None) -> None:
    assert balanced(body) == (body if fixed is None else fixed)


def test_value_nested_too_deep_for_qpdf_is_cut_by_the_salvage(tmp_path: Path) -> None:
    """An array nested 500 deep in an unused key of the catalog: qpdf refuses the whole
    catalog ("excessively deeply nested"), poppler shows the page; the salvage cuts the
    too deep part (it was blocked as damaged beyond repair)."""
    deep = b"[" * 500 + b"1" + b"]" * 500
    data = pdfgen._hand_written("Hello deep", {
        1: b"<< /Type /Catalog /Pages 2 0 R /Junk " + deep + b" >>",
        2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
           b"/Resources << /Font << /F1 6 0 R >> >> >>"})
    src = tmp_path / "raw.pdf"
    src.write_bytes(data)
    assert b"unable to find /Root dictionary" in qpdf_check(src).stderr
    report, out = run(tmp_path, data, POLICIES["keep"])
    assert report.verdict is Verdict.CLEAN
    assert {(k, loc) for k, loc, _ in triples(report)} == {("pdf.repaired", "")}
    assert qpdf_check(out).returncode == 0
    assert text_of(out) == "Hello deep" == text_of(src)


@pytest.mark.parametrize("dangling", [False, True], ids=["widget", "widget+dangling-content"])
def test_rebuilt_page_tree_leaves_widgets_and_non_streams_out(tmp_path: Path,
                                                              dangling: bool) -> None:
    """A root /Pages whose /Kids is not an array: the page tree is rebuilt from page
    objects, and a widget (it has /Parent and /Contents, but also /Rect) is not one of
    them (it became a second page poppler could not draw). A /Contents reference to a
    missing object is dropped: qpdf --check called it an error."""
    data = pdfgen.widget_and_bare_kids(dangling)
    report, out = run(tmp_path, data, POLICIES["keep"])
    assert report.verdict is Verdict.CLEAN  # repaired only: this policy keeps the link
    assert {(k, loc) for k, loc, _ in triples(report)} == {
        ("pdf.repaired", ""), ("pdf.uri", "/Root/Pages/Kids[0]/Annots[0]/A")}
    assert qpdf_check(out).returncode == 0
    info = subprocess.run(["pdfinfo", str(out)], capture_output=True, check=True)
    assert b"Pages:           1" in info.stdout and not info.stderr
    assert text_of(out) == pdfgen.TEXT[0]
    with pikepdf.open(out) as pdf:
        assert [str(f.T) for f in pdf.Root.AcroForm.Fields] == ["group"]
        contents = pdf.pages[0].obj.Contents
        assert isinstance(contents, pikepdf.Stream) or all(
            isinstance(c, pikepdf.Stream) for c in contents)


def test_damaged_object_stream_is_written_without_object_streams(tmp_path: Path) -> None:
    """qpdf opens the file but refuses to write an object stream that reads as a plain
    dictionary (was: blocked as damaged beyond repair); every object is written on
    its own instead, and what the damaged stream held is gone."""
    data = pdfgen.broken_object_stream()
    report, out = run(tmp_path, data, POLICIES["keep"])
    assert report.verdict is Verdict.DISARMED
    assert ("pdf.open_action", "/Root/OpenAction", R) in triples(report)
    repaired = next(f for f in report.items[0].findings if f.kind == "pdf.repaired")
    assert repaired.detail.startswith("3 structural problems repaired; first: "
                                      "(object 83 0, offset 1504): expected endobj")
    assert qpdf_check(out).returncode == 0
    assert text_of(out) == " ".join(pdfgen.TEXT[:2])
    assert pdfwalk.check(str(out), keep_uri=True) == []
    assert b"/ObjStm" not in out.read_bytes()


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "flate"])
def test_stream_without_endstream_keeps_its_declared_bytes(compress: bool,
                                                           tmp_path: Path) -> None:
    """A stream whose /Length bytes are followed by neither ``endstream`` nor ``endobj``
    (qpdf's own test file bad39.pdf): libqpdf 12 finds no end to recover and treats it
    as empty, poppler reads the /Length bytes. The page keeps its text."""
    data = pdfgen.save(pdfgen.base(1), compress_streams=compress,
                       object_stream_mode=pikepdf.ObjectStreamMode.disable)
    assert data.count(b"endstream\nendobj") == 1
    assert (b"/FlateDecode" in data) is compress
    src = tmp_path / "in.pdf"
    src.write_bytes(data.replace(b"endstream\nendobj", b"enxstream\nenxobj"))
    assert pdfgen.TEXT[0] in text_of(src)  # what a viewer shows of the input
    report, out = run(tmp_path, src.read_bytes(), POLICIES["keep"])
    assert report.verdict is Verdict.CLEAN, report.reason
    repaired = [f for f in report.items[0].findings if f.kind == "pdf.repaired"]
    assert [(f.location, f.action) for f in repaired] == [("", REP)]
    assert pdfgen.TEXT[0] in text_of(out)
    assert qpdf_check(out).returncode == 0


@pytest.mark.parametrize("unit", [b"trailer<<", b"1 0 obj<<", b"1 0 obj (", b"1 0 obj ["],
                         ids=["trailers", "dictionaries", "strings", "arrays"])
def test_salvage_of_unclosed_values_runs_in_linear_time(tmp_path: Path, unit: bytes) -> None:
    """A damaged file qpdf cannot open is salvaged object by object; a value left open
    (``<<``, ``(``, ``[``) was scanned to the end of the data from every object and every
    trailer: 1.8 MB of them held a worker for its whole 60 s. Each value now ends at the
    next object or trailer at the latest. Run in a worker held to 5 s of CPU, as the
    daemon runs it: a verdict, not a failure."""
    from tests.helpers.pipeline import run_in_worker

    data = b"%PDF-1.4\n1 0 obj<<>>endobj\n" + unit * 200_000
    report, _ = run_in_worker(tmp_path, data, "damaged.pdf")
    assert report.verdict is Verdict.BLOCKED, report.reason
    assert triples(report) == {("block.malformed", "", "blocked")}


def test_pdf_without_a_version_in_its_header_is_not_delivered_as_text(tmp_path: Path) -> None:
    """corkami's inline-chrome2.pdf ("%PDF01234", a page Chrome shows) with an OpenAction
    script added: it was taken for plain text, renamed .txt and delivered as it was.
    Read as a PDF it cannot be rebuilt, so it is refused; the script never gets out."""
    data = (b"%PDF01234\n1 0 obj<</Size 2/Root 1 0 R/Pages<</Kids[<</Contents<<>>stream\n"
            b"BT{99 Tf{Td(Inlined PDF)'endstream>>]>>/OpenAction<</S/JavaScript/JS"
            b"(app.alert(1))>>>>stream\n0\nendstream/startxref%1234567\n")
    src, out = tmp_path / "inline.pdf", tmp_path / "out.pdf"
    src.write_bytes(data)
    report = process_file(src, out, policy=DEFAULT)
    assert report.input.type == "pdf"
    assert report.verdict is Verdict.BLOCKED and not out.exists()
