"""Re-key an RC4 encrypted .xls to another password (for PPAP tests).

No tool here writes an encrypted legacy workbook (msoffcrypto-tool only decrypts
them, LibreOffice needs UNO to set a password), so a workbook encrypted with
Excel's default password (samples/office/oletools-*-velvetsweatshop.xls) is turned
into one that needs ``new``: RC4 is a keystream, so every encrypted byte becomes
``byte ^ keystream(old) ^ keystream(new)``, and the FILEPASS verifier is written
again for ``new``. The samples use Office 97 RC4 (MS-OFFCRYPTO 2.3.6: MD5 keys,
derived again for every 1024 bytes of the stream); MS-XLS 2.2.10 says which records
and bytes stay in the clear. msoffcrypto-tool is the independent check that it worked.
"""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
from pathlib import Path

import olefile
from cryptography.hazmat.decrepit.ciphers.algorithms import ARC4
from cryptography.hazmat.primitives.ciphers import Cipher

FILEPASS, BOUNDSHEET8 = 0x002F, 0x0085
#: records never encrypted (MS-XLS 2.2.10): BOF, FILEPASS, UsrExcl, FileLock,
#: InterfaceHdr, RRDInfo, RRDHead
CLEAR = {0x0809, 0x002F, 0x0194, 0x0195, 0x00E1, 0x0196, 0x0138}
BLOCK = 1024


def _key(password: str, salt: bytes, block: int) -> bytes:
    pw = password.encode("utf-16-le")
    h1 = hashlib.md5((hashlib.md5(pw).digest()[:5] + salt) * 16).digest()
    return hashlib.md5(h1[:5] + struct.pack("<I", block)).digest()


def _rc4(key: bytes, data: bytes) -> bytes:
    enc = Cipher(ARC4(key), mode=None).encryptor()
    return enc.update(data) + enc.finalize()


def _keystream(password: str, salt: bytes, n: int) -> bytes:
    return b"".join(_rc4(_key(password, salt, b), bytes(BLOCK))
                    for b in range((n + BLOCK - 1) // BLOCK))[:n]


def rekey_xls(data: bytes, old: str, new: str) -> bytes:
    with olefile.OleFileIO(data) as ole:
        wb = bytearray(ole.openstream("Workbook").read())
    encrypted = bytearray(len(wb))  # 1 where the byte is encrypted
    filepass = -1
    pos = 0
    while pos + 4 <= len(wb):
        num, size = struct.unpack_from("<HH", wb, pos)
        body = pos + 4
        if num == FILEPASS:
            filepass = body
        if num == BOUNDSHEET8:
            encrypted[body + 4:body + size] = b"\x01" * (size - 4)
        elif num not in CLEAR:
            encrypted[body:body + size] = b"\x01" * size
        pos = body + size
    assert filepass >= 0, "not an encrypted workbook"
    version = struct.unpack_from("<HHH", wb, filepass)
    assert version == (1, 1, 1), "only Office 97 RC4 (what the samples use) is handled"
    salt = bytes(wb[filepass + 6:filepass + 22])
    ks_old = _keystream(old, salt, len(wb))
    ks_new = _keystream(new, salt, len(wb))
    for i, flag in enumerate(encrypted):
        if flag:
            wb[i] ^= ks_old[i] ^ ks_new[i]
    plain = os.urandom(16)  # the verifier: 16 random bytes, then their MD5, one RC4 run
    sealed = _rc4(_key(new, salt, 0), plain + hashlib.md5(plain).digest())
    wb[filepass + 22:filepass + 54] = sealed
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rekeyed.xls"
        path.write_bytes(data)
        with olefile.OleFileIO(str(path), write_mode=True) as ole:
            ole.write_stream("Workbook", bytes(wb))
        return path.read_bytes()
