"""Exceptions shared by the pipeline, the stages and the front ends.

Stages raise these; the pipeline turns each into a verdict. Messages are shown
to users and admins, so they are one short sentence and never contain payload
bytes.
"""

from __future__ import annotations


class SekishoError(Exception):
    """Base class for every error Sekisho raises on purpose."""


class ItemError(SekishoError):
    """Processing one item cannot continue; the item is blocked (fail closed)."""

    #: a stable, machine-readable reason id for reports and metrics
    reason = "error"


class Malformed(ItemError):
    """The input does not parse, and could not be repaired."""

    reason = "malformed"


class LimitExceeded(ItemError):
    """A size, depth, member-count, ratio or decompression limit was hit."""

    reason = "limit"


class EncryptedContent(ItemError):
    """The content is encrypted with a password we do not have."""

    reason = "encrypted"


#: what every stage says when the password a job carries does not open its content (the
#: jobs service and the Japanese notices read the same sentence)
WRONG_PASSWORD = "the password is not correct"  # noqa: S105 - a message, not a credential


class PolicyBlocked(ItemError):
    """A stage found content the policy says to block rather than disarm."""

    reason = "policy"


class Unsupported(ItemError):
    """No stage can disarm this type under the active policy."""

    reason = "unsupported"


class ConfigError(SekishoError):
    """A policy or configuration file is invalid. Message names file, key and value."""


class UsageError(SekishoError):
    """The command line or an input path is unusable (exit code 2)."""
