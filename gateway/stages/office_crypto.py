"""Password-protected Office Open XML documents (ECMA-376 encryption): opened, not refused.

An encrypted .docx/.xlsx/.pptx is a compound file holding ``EncryptionInfo`` and
``EncryptedPackage``. It is opened (msoffcrypto-tool, a maintained decrypter of
every ECMA-376 scheme: standard and agile) with:

1. the password the job carries (the recipient entered it: PPAP), else
2. Office's built-in default password ``VelvetSweatshop``: Excel encrypts
   workbooks with it when only a *modify* password or "read-only recommended" is
   set, and opens them without asking — so a reader sees no password at all. Emotet
   used exactly this to hide its macros from gateways that refuse to look inside.

The decrypted package then goes through the OOXML stage like any other, and is
delivered **without** encryption (the recipient's copy opens without a password;
the original stays in quarantine). When neither opens it, the document stays
EncryptedContent: blocked, or held for its password by policy.
"""

from __future__ import annotations

import io

from gateway.errors import EncryptedContent, Malformed

#: Office's built-in password for workbooks protected only against modification
DEFAULT_PASSWORDS = ("VelvetSweatshop",)
WRONG_KEY = "the password is not correct"
NEEDS_KEY = "document is password-protected"


def decrypt(data: bytes, password: str | None) -> tuple[bytes, bool]:
    """The decrypted package, and whether the given password (not a default) opened it."""
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
        except msoffcrypto.exceptions.FileFormatError as exc:
            raise Malformed(f"the encrypted document cannot be read ({exc})") from None
        except (ValueError, KeyError, IndexError, OSError, AssertionError) as exc:
            raise Malformed(f"the encrypted document is damaged ({type(exc).__name__})") from None
        plain = out.getvalue()
        if not plain.startswith(b"PK"):
            raise Malformed("the decrypted document is not a package")
        return plain, given
    raise EncryptedContent(WRONG_KEY if password else NEEDS_KEY)
