"""The quarantine's SQLite index: list, filter and page entries without opening each one.

It holds only what listing needs and nothing personal (job id, times, origin, state,
verdict); the envelope stays in the sealed metadata. The entries on disk are the truth:
each row carries a stamp of its entry's metadata file (inode, size, mtime), and
``reconcile`` at start-up re-reads entries whose stamp changed and drops rows whose
entry is gone, so a lost or stale index repairs itself. Callers serialize access
(one connection, used under the quarantine's lock).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    job_id  TEXT PRIMARY KEY,
    created TEXT NOT NULL,
    origin  TEXT NOT NULL,
    state   TEXT NOT NULL,
    verdict TEXT NOT NULL,
    expires TEXT NOT NULL,
    stamp   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_created ON entries (created, job_id);
CREATE INDEX IF NOT EXISTS entries_state_expires ON entries (state, expires);
"""
VERSION = 1


@dataclass(frozen=True, slots=True)
class Row:
    job_id: str
    created: str
    origin: str
    state: str
    verdict: str
    expires: str
    stamp: str


def stamp(path: Path) -> str:
    st = path.stat()
    return f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


class Index:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = sqlite3.connect(path, timeout=30.0, check_same_thread=False,
                                   isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if version not in (0, VERSION):
            self._db.execute("DROP TABLE IF EXISTS entries")
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version={VERSION}")

    def close(self) -> None:
        self._db.close()

    def upsert(self, row: Row) -> None:
        self._db.execute(
            "INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(job_id) DO UPDATE "
            "SET created=excluded.created, origin=excluded.origin, state=excluded.state, "
            "verdict=excluded.verdict, expires=excluded.expires, stamp=excluded.stamp",
            (row.job_id, row.created, row.origin, row.state, row.verdict, row.expires,
             row.stamp))

    def remove(self, job_ids: Iterable[str]) -> None:
        self._db.executemany("DELETE FROM entries WHERE job_id = ?",
                             [(j,) for j in job_ids])

    def stamps(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT job_id, stamp FROM entries").fetchall())

    def _where(self, state: str | None, origin: str | None) -> tuple[str, list[str]]:
        clauses, args = [], []
        if state is not None:
            clauses.append("state = ?")
            args.append(state)
        if origin is not None:
            clauses.append("origin = ?")
            args.append(origin)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args

    def page(self, state: str | None, origin: str | None, limit: int,
             offset: int) -> list[str]:
        """Job ids, newest first."""
        where, args = self._where(state, origin)
        rows = self._db.execute(
            f"SELECT job_id FROM entries{where} ORDER BY created DESC, job_id DESC "  # noqa: S608 - fixed clauses
            "LIMIT ? OFFSET ?", [*args, limit, offset]).fetchall()
        return [r[0] for r in rows]

    def count(self, state: str | None, origin: str | None) -> int:
        where, args = self._where(state, origin)
        (n,) = self._db.execute(f"SELECT COUNT(*) FROM entries{where}",  # noqa: S608
                                args).fetchone()
        return int(n)

    def due(self, now: str) -> list[str]:
        """Entries still holding an original whose retention has expired, oldest first."""
        rows = self._db.execute(
            "SELECT job_id FROM entries WHERE state != 'deleted' AND expires <= ? "
            "ORDER BY expires, job_id", (now,)).fetchall()
        return [r[0] for r in rows]
