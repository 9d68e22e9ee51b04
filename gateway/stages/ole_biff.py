"""Excel files without a compound file: a bare BIFF record stream (``ole.biff``).

Excel 2.x, 3.0 and 4.0 wrote a worksheet, chart or macro sheet (and 4.0 a workbook of
them) as records straight into the file; a few programs write BIFF5/8 records that
way too. LibreOffice opens them all. Nothing here is rewritten: a file is read record
by record (type, length) to its end and delivered unchanged when none of what can act
is in it, and refused otherwise (``block.unsupported``, the reason naming it):

* a macro sheet (BOF type 0x0040: Excel 4.0 macros run from it), a VBA module sheet;
* a link to another file or a DDE server (EXTERNSHEET, EXTERNNAME);
* a defined name that runs on open (the built-in Auto_Open family, or a name
  starting with ``auto_open`` and the like).

FILEPASS (an encrypted file) raises EncryptedContent; records that do not add up to
the file, or a file that does not start with a BOF, raise Malformed.
"""

from __future__ import annotations

import struct
from typing import BinaryIO, ClassVar

from gateway.errors import EncryptedContent, LimitExceeded, Malformed, Unsupported
from gateway.pipeline.api import StageContext
from gateway.pipeline.sniff import BIFF_BOFS, is_biff
from gateway.stages.ole_excel import AUTO_BUILTIN, AUTO_PREFIX

TYPE_ID = "ole.biff"
_FILEPASS = 0x002F
_EXTERNAL = {0x0017: "a link to another file (EXTERNSHEET)",
             0x0023: "a link to another file or a DDE server (EXTERNNAME)",
             0x0223: "a link to another file or a DDE server (EXTERNNAME)"}
_NAMES = (0x0018, 0x0218)
#: BOF substream types that hold code
_CODE = {0x0040: "an Excel 4.0 macro sheet", 0x0006: "a VBA module sheet"}
MAX_INPUT = 64 * 1024 * 1024


class BiffStage:
    name: ClassVar[str] = "ole_biff"
    formats: ClassVar[frozenset[str]] = frozenset({TYPE_ID})

    def scan(self, src: BinaryIO, ctx: StageContext) -> None:
        _check(_read(src))

    def disarm(self, src: BinaryIO, dst: BinaryIO, ctx: StageContext) -> None:
        data = _read(src)
        _check(data)
        dst.write(data)


def _read(src: BinaryIO) -> bytes:
    src.seek(0)
    data = src.read(MAX_INPUT + 1)
    if len(data) > MAX_INPUT:
        raise LimitExceeded("the Excel file is too large")
    return data


def _check(data: bytes) -> None:
    if not is_biff(data):
        raise Malformed("the Excel file does not start with a BOF record")
    name_at = 5 if data[0] == 0x09 and data[1] == 0x00 else 6   # BIFF2, else BIFF3-4
    pos = 0
    while pos + 4 <= len(data):
        rtype, size = struct.unpack_from("<HH", data, pos)
        body = data[pos + 4:pos + 4 + size]
        if len(body) < size:
            raise Malformed(f"Excel record at 0x{pos:x} runs past the end of the file")
        if rtype in BIFF_BOFS and len(body) >= 4:
            dt = struct.unpack_from("<H", body, 2)[0]
            if dt in _CODE:
                raise Unsupported(f"{_CODE[dt]} in an Excel 2.x-4.0 file: not disarmed")
        elif rtype == _FILEPASS:
            raise EncryptedContent("the Excel file is encrypted")
        elif rtype in _EXTERNAL:
            raise Unsupported(f"{_EXTERNAL[rtype]} in an Excel 2.x-4.0 file: not disarmed")
        elif rtype in _NAMES and _runs_on_open(body, name_at):
            raise Unsupported("a name that runs on open (Auto_Open) in an Excel 2.x-4.0 "
                              "file: not disarmed")
        pos += 4 + size
    if data[pos:].strip(b"\x00"):
        raise Malformed("the Excel file ends inside a record")


def _runs_on_open(body: bytes, name_at: int) -> bool:
    """A NAME record for an auto-run name, as ole_excel judges them: a built-in one
    (fBuiltin and the one-character code of Auto_Open, Auto_Close, Auto_Activate or
    Auto_Deactivate) or one whose text starts like one. The name's length is byte 3,
    the name starts at byte 5 (BIFF2) or 6 (BIFF3-4)."""
    if len(body) < name_at:
        return False
    name = body[name_at:name_at + body[3]]
    if body[0] & 0x20:
        return len(name) == 1 and name[0] in AUTO_BUILTIN
    return name.decode("latin-1").lower().startswith(AUTO_PREFIX)
