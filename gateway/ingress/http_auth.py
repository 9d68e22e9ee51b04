"""Bearer tokens for the HTTP API: who is calling, and what they may do.

Tokens are configured as ``http.tokens`` (``name``, ``sha256`` = hex SHA-256 of the
token text, ``roles``); the daemon never stores a token itself. A request's token
is hashed and compared with every configured digest in constant time
(``hmac.compare_digest``, no early exit), so neither timing nor an error message
tells which part of a guess was right.

Roles: ``submit`` submits files and reads the caller's own jobs; ``admin`` may do
everything (every job, the quarantine, releases and deletions).

When ``http.tokens`` is empty (the embedded defaults, ``make run``) two tokens are
generated once, 32 random bytes each, URL-safe base64::

    <var_dir>/tokens/admin.token   roles [submit, admin]   (directory 0700, files 0600)
    <var_dir>/tokens/staff.token   roles [submit]

Existing files are reused on the next start; only their paths are logged. To use
them: ``curl -H "Authorization: Bearer $(cat var/tokens/staff.token)" …``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import structlog

from gateway.config import TokenConfig

log = structlog.get_logger("sekisho.http")

SUBMIT, ADMIN = "submit", "admin"
GENERATED = (("admin", (SUBMIT, ADMIN)), ("staff", (SUBMIT,)))


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    roles: frozenset[str]

    def can(self, role: str) -> bool:
        return ADMIN in self.roles or role in self.roles

    @property
    def admin(self) -> bool:
        return ADMIN in self.roles


class TokenBook:
    def __init__(self, tokens: tuple[TokenConfig, ...]) -> None:
        self._entries = [(bytes.fromhex(t.sha256), Principal(t.name, frozenset(t.roles)))
                         for t in tokens]

    def __len__(self) -> int:
        return len(self._entries)

    def authenticate(self, header: str | None) -> Principal | None:
        """The principal for an ``Authorization`` header value, or None."""
        if not header:
            return None
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > 512:
            return None
        digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        found: Principal | None = None
        for want, principal in self._entries:  # no early exit: constant time per entry
            if hmac.compare_digest(digest, want) and found is None:
                found = principal
        return found


def ensure_tokens(configured: tuple[TokenConfig, ...], var_dir: Path) -> tuple[TokenConfig, ...]:
    """The configured tokens, or the generated pair under ``<var_dir>/tokens/``."""
    if configured:
        return configured
    folder = var_dir / "tokens"
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    out: list[TokenConfig] = []
    for name, roles in GENERATED:
        path = folder / f"{name}.token"
        token = _read_or_create(path)
        out.append(TokenConfig(name, hashlib.sha256(token.encode()).hexdigest(), roles))
        log.info("http.token_file", name=name, roles=list(roles), path=str(path))
    return tuple(out)


def _read_or_create(path: Path) -> str:
    try:
        text = path.read_text("ascii").strip()
        if text:
            if path.stat().st_mode & 0o077:
                os.chmod(path, 0o600)
            return text
    except FileNotFoundError:
        pass
    token = secrets.token_urlsafe(32)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(3)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, (token + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return token
