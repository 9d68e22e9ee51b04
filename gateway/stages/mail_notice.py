"""The notice part that tells the recipient what Sekisho changed, in Japanese and English.

One text/plain part, first in the rebuilt message, written only when something
was removed, neutralized, disarmed or blocked. It lists the message body's
changes and, per attachment, what was taken out of it (the kinds' ja/en labels
from gateway/kinds.py, collected from the attachment's own report items) or why
it was removed, and the job id to quote when asking for the original.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gateway import kinds
from gateway.kinds import Action
from gateway.models import Finding

#: marks our notice part (Content-Description), informational only
DESCRIPTION = "Sekisho notice"
CHANGED = frozenset({Action.REMOVED, Action.NEUTRALIZED, Action.DISARMED, Action.BLOCKED})
MAX_ATTACHMENTS = 50
MAX_LABELS = 10
_ACTION_JA = {"removed": "削除", "neutralized": "無効化", "disarmed": "無害化",
              "blocked": "ブロック"}


@dataclass(frozen=True, slots=True)
class AttachmentNote:
    name: str                     # the name the sender gave it (cleaned for display)
    delivered_as: str | None      # the name it is attached under; None: removed
    reason: str = ""              # why it was removed
    findings: tuple[Finding, ...] = ()


def needed(findings: Iterable[Finding], notes: Sequence[AttachmentNote]) -> bool:
    return any(f.action in CHANGED for f in findings) or any(_worth(n) for n in notes)


def _worth(note: AttachmentNote) -> bool:
    return (note.delivered_as is None or note.delivered_as != note.name
            or any(_counts(note.findings)))


def _counts(findings: Iterable[Finding]) -> Counter[tuple[str, str]]:
    return Counter((f.kind, f.action) for f in findings
                   if f.action in CHANGED and not f.kind.startswith(("block.", "sniff.")))


def _labels(findings: Iterable[Finding], lang: str) -> str:
    parts = []
    for (kind, action), n in list(_counts(findings).items())[:MAX_LABELS]:
        meta = kinds.info(kind)
        if lang == "ja":
            text = f"{meta.ja}（{_ACTION_JA.get(action, action)}）"
        else:
            text = f"{meta.en} ({action})"
        parts.append(text + (f" ×{n}" if n > 1 else ""))
    return ("、" if lang == "ja" else "; ").join(parts)


def render(langs: Sequence[str], job_id: str, body: Sequence[Finding],
           notes: Sequence[AttachmentNote]) -> str:
    """The notice text, one block per language in policy order."""
    body = [f for f in body if not f.kind.startswith("mail.attachment_")]
    shown = [n for n in notes if _worth(n)][:MAX_ATTACHMENTS]
    blocks = [_block(_PHRASES[lang], lang, job_id, body, shown) for lang in langs]
    return "\r\n\r\n".join(blocks) + "\r\n"


@dataclass(frozen=True, slots=True)
class _Phrases:
    title: str
    intro: str
    body: str            # {labels}
    removed: str         # {name} {reason}
    attachment: str      # {name}
    renamed: str         # {name}
    ask: str             # {job}
    unknown_reason: str
    unknown_job: str


_PHRASES: dict[str, _Phrases] = {
    "ja": _Phrases(
        title="【Sekisho（関所）無害化のお知らせ】",
        intro="このメールは受信時に無害化されました。次の内容を変更しています。",
        body="・メール本文・構成: {labels}",
        removed="・添付ファイル「{name}」は安全にできないため削除しました（理由: {reason}）",
        attachment="・添付ファイル「{name}」",
        renamed="（「{name}」として添付）",
        ask="原本が必要な場合は、受付番号 {job} を添えてシステム管理者へお問い合わせください。",
        unknown_reason="不明", unknown_job="(不明)"),
    "en": _Phrases(
        title="[Sekisho disarm notice]",
        intro="This message was disarmed on arrival. The following was changed:",
        body="- Message body and structure: {labels}",
        removed='- Attachment "{name}" was removed: it could not be made safe (reason: {reason})',
        attachment='- Attachment "{name}"',
        renamed=' (attached as "{name}")',
        ask="To obtain the original, contact your administrator quoting reference {job}.",
        unknown_reason="unknown", unknown_job="(unknown)"),
}


def _block(ph: _Phrases, lang: str, job_id: str, body: Sequence[Finding],
           notes: Sequence[AttachmentNote]) -> str:
    lines = [ph.title, ph.intro]
    if _counts(body):
        lines.append(ph.body.format(labels=_labels(body, lang)))
    for n in notes:
        if n.delivered_as is None:
            lines.append(ph.removed.format(name=n.name, reason=n.reason or ph.unknown_reason))
            continue
        what = _labels(n.findings, lang)
        line = ph.attachment.format(name=n.name) + (f": {what}" if what else "")
        if n.delivered_as != n.name:
            line += ph.renamed.format(name=n.delivered_as)
        lines.append(line)
    lines.append(ph.ask.format(job=job_id or ph.unknown_job))
    return "\r\n".join(lines)
