"""A .p7m file on its own (CMS/PKCS #7, RFC 5652): a document or a message with its
signature, as signing tools and S/MIME clients save them (``report.pdf.p7m``,
``smime.p7m``).

The signed content is taken out and goes through the whole pipeline; what it gives is
delivered in the signature's place (the signature cannot stay valid once the content is
disarmed, as with S/MIME in mail: ``mail.signature_removed``). A signed MIME message
(headers first) is rebuilt like any message and delivered as ``.eml``; anything else is
delivered under the name without ``.p7m``. Encrypted content (enveloped data) cannot be
inspected and is refused as encrypted; a signature without content (a detached ``.p7s``,
a certificate bundle) holds no document and is refused too.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import BinaryIO

from gateway.errors import EncryptedContent, Malformed, PolicyBlocked
from gateway.kinds import Action
from gateway.pipeline.api import StageContext
from gateway.pipeline.sniff import cms_type
from gateway.stages.mail_walk import signed_content


def run_p7m(data: bytes, dst: BinaryIO | None, ctx: StageContext) -> None:
    content = signed_content(data)
    if content is None:
        if cms_type(data) == "enveloped":
            raise EncryptedContent("the .p7m file is encrypted (CMS enveloped data)")
        raise Malformed("the .p7m file holds no signed content (a detached signature or "
                        "certificates only)")
    ctx.record("mail.signature_removed", "", action=Action.REMOVED,
               detail="CMS signature (.p7m): the signed content is delivered without it")
    name = PurePath(ctx.location.rsplit("/", 1)[-1]).name
    # without an extension left (smime.p7m) the content's own type names it: smime.eml
    inner = name[:-4] if name.lower().endswith(".p7m") and len(name) > 4 else "content"
    emb = ctx.recurse(content, inner)
    if not emb.verdict.delivered:
        raise PolicyBlocked(f"the signed content was not delivered: "
                            f"{emb.reason or emb.verdict.value}")
    ext = PurePath(emb.name).suffix.lstrip(".")
    ctx.output_type = (emb.type, ext or "bin")
    if dst is not None:
        if emb.data is None:
            raise Malformed("the signed content gave no clean copy")
        dst.write(emb.data)
