"""Password-protected Office documents: opened, not refused.

An encrypted .docx/.xlsx/.pptx is a compound file holding ``EncryptionInfo`` and
``EncryptedPackage``. It is opened (msoffcrypto-tool, a maintained decrypter of
every ECMA-376 scheme: standard and agile) with:

1. the password the job carries (the recipient entered it: PPAP), else
2. Office's built-in default password ``VelvetSweatshop``: Excel encrypts
   workbooks with it when only a *modify* password or "read-only recommended" is
   set, and opens them without asking — so a reader sees no password at all. Emotet
   used exactly this to hide its macros from gateways that refuse to look inside.

A legacy Excel workbook (.xls, RC4 / RC4 CryptoAPI / XOR, a FILEPASS record in the
workbook stream) is opened the same way (``decrypt_legacy``); Excel uses the same
default password there, and malware campaigns have used such workbooks to hide
macros from gateways.
Legacy Word and PowerPoint files stay refused when encrypted: Office has no default
password for them, and without samples to check the decrypted output against we do
not claim to open them.

The decrypted document then goes through its stage like any other, and is
delivered **without** encryption (the recipient's copy opens without a password;
the original stays in quarantine). When neither opens it, the document stays
EncryptedContent: blocked, or held for its password by policy.
"""

from __future__ import annotations

import io
import struct
from xml.parsers.expat import ExpatError

from gateway.errors import WRONG_PASSWORD, EncryptedContent, Malformed
from gateway.stages.cfb_writer import MAGIC as OLE_MAGIC

#: Office's built-in password for workbooks protected only against modification
DEFAULT_PASSWORDS = ("VelvetSweatshop",)
NEEDS_KEY = "document is password-protected"


def decrypt(data: bytes, password: str | None) -> tuple[bytes, bool]:
    """The decrypted package, and whether the given password (not a default) opened it."""
    plain, given = _open(data, password, NEEDS_KEY)
    if not plain.startswith(b"PK"):
        raise Malformed("the decrypted document is not a package")
    return plain, given


def decrypt_legacy(data: bytes, password: str | None,
                   needs_key: str = NEEDS_KEY) -> tuple[bytes, bool]:
    """A legacy workbook's compound file with its workbook stream decrypted (the
    FILEPASS record blanked in place, so every stream offset stays valid), and whether
    the given password (not a default) opened it. ``needs_key``: the reason when no
    password was given and the default one does not open it."""
    plain, given = _open(data, password, needs_key)
    if not plain.startswith(OLE_MAGIC):
        raise Malformed("the decrypted document is not a compound file")
    return plain, given


def _open(data: bytes, password: str | None, needs_key: str) -> tuple[bytes, bool]:
    import msoffcrypto  # noqa: PLC0415 - only needed for encrypted documents
    import msoffcrypto.exceptions  # noqa: PLC0415

    tries = [(password, True)] if password else []
    tries += [(p, False) for p in DEFAULT_PASSWORDS if p != password]
    for candidate, given in tries:
        try:
            office = msoffcrypto.OfficeFile(io.BytesIO(data))
            if not office.is_encrypted():
                raise Malformed("the compound file holds no encrypted document")
            office.load_key(password=candidate)
            out = io.BytesIO()
            office.decrypt(out)
        except (msoffcrypto.exceptions.InvalidKeyError,
                msoffcrypto.exceptions.DecryptionError):
            continue
        except (msoffcrypto.exceptions.FileFormatError,
                msoffcrypto.exceptions.ParseError) as exc:
            raise Malformed(f"the encrypted document cannot be read ({exc})") from None
        except (ValueError, KeyError, IndexError, OSError, AssertionError, struct.error,
                EOFError, ExpatError) as exc:  # ExpatError: a damaged agile XML descriptor
            raise Malformed(f"the encrypted document is damaged ({type(exc).__name__})") from None
        return out.getvalue(), given
    raise EncryptedContent(WRONG_PASSWORD if password else needs_key)
