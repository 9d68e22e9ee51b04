"""The Stage protocol and the context a stage works in (DESIGN.md §3).

A stage knows one format family. ``scan`` records what active content an input
holds; ``disarm`` writes a rebuilt copy and records every change. Stages never
copy their input through unchanged, never do I/O besides ``src``/``dst``, and
call back into the pipeline (``ctx.recurse``) for embedded items.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import BinaryIO, ClassVar, Protocol
from urllib.parse import unquote

from gateway.kinds import Action
from gateway.models import Finding, Verdict
from gateway.policy import FormatPolicy, Policy


class Mode(StrEnum):
    SCAN = "scan"        # what would be removed; nothing written
    DISARM = "disarm"    # rebuild and write the output
    VERIFY = "verify"    # scan of our own output: anything active left blocks it


@dataclass(frozen=True, slots=True)
class Embedded:
    """What ``ctx.recurse`` returns for one embedded item."""

    verdict: Verdict
    data: bytes | None        # the clean copy (DISARM mode, delivered verdicts only)
    name: str                 # the name to store it under (may change: .docm -> .docx)
    type: str                 # sniffed type id of the input
    reason: str | None = None  # why it was blocked or failed
    residual: tuple[Finding, ...] = ()  # SCAN/VERIFY: active findings inside it
    #: every finding of this item and of the items inside it, in report order (a mail's
    #: notice lists what was removed from each attachment)
    findings: tuple[Finding, ...] = ()

    @property
    def delivered(self) -> bool:
        return self.verdict.delivered and (self.data is not None)


RecurseFn = Callable[[bytes, str], Embedded]

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
#: what a URL parser strips from both ends: C0 controls and space
_C0_AND_SPACE = "".join(map(chr, range(0x21)))


def _text(value: str) -> str:
    """``value`` as text every report writer can encode: a stage that reads bytes with
    surrogateescape (a calendar's "BEGIN:VEVENT\xff") may hand out lone surrogates, and
    one such location aborted a whole batch when its report was written."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "replace").decode("utf-8")
    return value


def package_target(here: str, target: str, names: frozenset[str]) -> bool:
    """Whether the relative reference ``target`` in member ``here`` names a member in
    ``names``. Anything with a scheme, an absolute or network path, a backslash or a
    way out of the container is not one (tabs and line breaks go first, as a
    browser's URL parser drops them: "java&#9;script:" has a scheme)."""
    return package_path(here, target) in names


def package_path(here: str, target: str) -> str | None:
    """The member name the relative reference ``target`` in member ``here`` points at,
    whether or not the container holds it; None for anything else (see
    ``package_target``)."""
    value = re.sub(r"[\t\n\r]", "", target).strip(_C0_AND_SPACE)
    if not value or value.startswith(("/", "#")) or "\\" in value or _SCHEME.match(value):
        return None
    path = unquote(value.split("#", 1)[0].split("?", 1)[0])
    if not path:
        return None
    full = posixpath.normpath(posixpath.join(posixpath.dirname(here), path))
    return None if full.startswith("../") or full == ".." else full


@dataclass(slots=True)
class StageContext:
    policy: Policy
    format: FormatPolicy
    mode: Mode
    location: str                 # location of the item inside the job ("a.pdf/b.docx")
    type_id: str                  # sniffed type of the input
    recurse_fn: RecurseFn
    account_fn: Callable[[int], None]
    findings: list[Finding] = field(default_factory=list)
    #: set by a stage whose output changes type (docm -> docx): (type id, extension)
    output_type: tuple[str, str] | None = None
    #: the job's id, for texts that tell a recipient how to ask for the original
    job_id: str = ""
    #: a password the submitter gave for encrypted content (PPAP); None: none given
    password: str | None = field(default=None, repr=False)
    #: containers whose members refer to each other by name (an EPUB's documents,
    #: stylesheets and pictures): the container's location -> its member names. Shared
    #: by every item of the job; the archive stage declares, ``in_package`` asks
    packages: dict[str, frozenset[str]] = field(default_factory=dict)

    def record(self, kind: str, location: str, *, action: str | Action = Action.REMOVED,
               detail: str = "") -> Finding:
        finding = Finding(kind=kind, action=str(action), location=_text(location),
                          detail=_text(detail))
        self.findings.append(finding)
        return finding

    def keeps(self, what: str) -> bool:
        """Whether the policy keeps ``what`` (e.g. "hyperlinks") for this format."""
        return what in self.format.keep

    def option(self, name: str, default: str) -> str:
        return self.format.option(name, default)

    def in_package(self, target: str) -> bool:
        """Whether ``target``, a reference in this item, names another member of the
        container the item is a member of: a place inside the same document (an EPUB
        chapter's stylesheet, the next chapter), not one elsewhere."""
        for root, names in self.packages.items():
            if self.location.startswith(root + "/"):
                return package_target(self.location[len(root) + 1:], target, names)
        return False

    def recurse(self, data: bytes, name: str) -> Embedded:
        """Run an embedded item through the whole pipeline (limits enforced there)."""
        return self.recurse_fn(data, name)

    def account(self, nbytes: int) -> None:
        """Count bytes a stage expanded (decompressed) against the job's ratio limit."""
        self.account_fn(nbytes)


class Stage(Protocol):
    name: ClassVar[str]                  # "pdf": the id used in policies and reports
    formats: ClassVar[frozenset[str]]    # sniffed type ids it accepts

    def scan(self, src: BinaryIO, ctx: StageContext) -> None:
        """Record what active content src holds (ctx.record), change nothing."""

    def disarm(self, src: BinaryIO, dst: BinaryIO, ctx: StageContext) -> None:
        """Write a rebuilt copy of src to dst; ctx.record() every change.
        Raise Malformed / LimitExceeded; never copy src through unchanged."""
