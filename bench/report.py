"""Tables for stdout and Markdown, and the dated sections of bench/RESULTS.md."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

HEADER = """\
# Benchmark results

Written by `python -m bench.pdf`, `python -m bench.office` and `python -m bench.mail`
with `--write-results` (each module's docstring says what is measured and how). One
section per benchmark, date and mode; a new run on the same day in the same mode
replaces its section. MB = 10^6 bytes. Figures are only as good as the machine they were
taken on — compare runs from the same machine.
"""

_SECTION = re.compile(r"<!-- bench-pdf:begin (?P<key>\S+) -->\n.*?<!-- bench-pdf:end -->\n*",
                      re.DOTALL)


@dataclass(slots=True)
class Table:
    title: str
    headers: tuple[str, ...]
    rows: list[tuple[str, ...]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: str) -> None:
        assert len(cells) == len(self.headers), cells
        self.rows.append(cells)

    def text(self) -> str:
        widths = [max(len(r[i]) for r in (self.headers, *self.rows))
                  for i in range(len(self.headers))]
        lines = [self.title]
        for row in (self.headers, *self.rows):
            cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:],
                                                                             strict=True)]
            lines.append("  " + "  ".join(cells).rstrip())
        lines += [f"  * {n}" for n in self.notes]
        return "\n".join(lines)

    def markdown(self) -> str:
        lines = [f"**{self.title}**", "", "| " + " | ".join(self.headers) + " |",
                 "|" + "|".join(["---"] + ["---:"] * (len(self.headers) - 1)) + "|"]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in self.rows]
        if self.notes:
            lines += [""] + [f"- {n}" for n in self.notes]
        return "\n".join(lines)


def section(key: str, title: str, facts: Sequence[tuple[str, str]],
            tables: Sequence[Table]) -> str:
    """One dated RESULTS.md section: a fact list, then the tables."""
    body = [f"<!-- bench-pdf:begin {key} -->", f"## {title}", ""]
    body += [f"- {name}: {value}" for name, value in facts]
    for table in tables:
        body += ["", table.markdown()]
    body += ["", "<!-- bench-pdf:end -->", ""]
    return "\n".join(body)


def write_section(path: Path, key: str, text: str, *, drop_prefix: str | None = None) -> None:
    """Replace the section ``key`` in ``path`` (or append it); also drop every section
    whose key starts with ``drop_prefix`` (placeholders a real measurement supersedes)."""
    old = path.read_text(encoding="utf-8") if path.exists() else HEADER
    sections = {m["key"]: m[0] for m in _SECTION.finditer(old)}
    head = _SECTION.sub("", old).rstrip() + "\n\n"
    sections[key] = text
    if drop_prefix is not None:
        sections = {k: v for k, v in sections.items()
                    if k == key or not k.startswith(drop_prefix)}
    out = head + "\n".join(s.rstrip() + "\n" for s in sections.values())
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(out, encoding="utf-8")
    os.replace(tmp, path)
