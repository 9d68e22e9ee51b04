"""Password-protected archives as PPAP senders make them (built, never stored)."""

from __future__ import annotations

import tempfile
from pathlib import Path

PASSWORD = "ひみつ-2026"


def encrypted_zip(method: str, members: dict[str, bytes], password: str = PASSWORD,
                  *, stored: bool = False) -> bytes:
    """A zip whose members are encrypted with ``method``: ``zipcrypt`` (ZipCrypto, what
    Windows' own zip and most PPAP tools write) or ``aes256`` (WinZip AES); ``stored``:
    not compressed."""
    import libarchive

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "enc.zip"
        options = f"encryption={method}" + (",compression=store" if stored else "")
        with libarchive.file_writer(str(path), "zip", options=options,
                                    passphrase=password) as w:
            for name, data in members.items():
                w.add_file_from_memory(name, len(data), data)
        return path.read_bytes()
