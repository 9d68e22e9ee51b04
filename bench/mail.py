"""Mail benchmark: messages per second through Sekisho's MIME stage for a realistic mix,
against parsing and re-serializing the same messages, measured in the same run.

    python -m bench.mail [--quick] [--repeat N] [--write-results]

The mix is bench/mailcorpus.py: plain text (ASCII and UTF-8 Japanese), text+HTML
alternatives, a docx attachment, a zip holding PDFs, and Japanese ISO-2022-JP with
encoded-word headers (①㈱髙), interleaved. On one CPU, each round runs in this order and
the fastest of ``--repeat`` rounds counts:

1. the baseline, in this process, per message: read the .eml file,
   ``email.parser.BytesParser(policy=compat32).parsebytes``, ``msg.as_bytes()``, write
   the result to a new file — parse and re-serialize only, nothing inspected;
2. Sekisho in process: ``process_file`` per message (the mail stage parses, decodes,
   sends every part through the pipeline — HTML sanitizer, OOXML, archive and PDF
   stages — rebuilds the message, then verifies it), the sum of the wall times;
3. Sekisho through the batch CLI, ``sekisho disarm FILES --out-dir D --jobs 1``, end to
   end, and its fixed start-up: the same command on the smallest message alone.

Ratio = Sekisho time / baseline time. Issue 4 sets no target: the figures are recorded.
"""

from __future__ import annotations

import argparse
import platform
import sys
from collections import Counter
from collections.abc import Sequence
from email.parser import BytesParser
from email.policy import compat32
from importlib.metadata import version
from pathlib import Path

import pikepdf

from bench import mailcorpus
from bench.common import (
    OUT,
    RESULTS,
    ROOT,
    build_in_child,
    cmd,
    command,
    machine,
    progress,
    source_state,
    verdict_text,
)
from bench.mailcorpus import Entry
from bench.passes import (
    GROUP_HEADERS,
    Figures,
    Pass,
    bench_main,
    group_rows,
    run_round,
    throughput_notes,
    throughput_table,
    warm_up,
)
from bench.report import Table
from gateway.policy import load

RUN_DIR = OUT / "run-mail"
STAGE_FILES = sorted((ROOT / "gateway" / "stages").glob("mail*.py"))


def _reserialize(src: Path, out: Path) -> None:
    msg = BytesParser(policy=compat32).parsebytes(src.read_bytes())
    out.write_bytes(msg.as_bytes())


# ----------------------------------------------------------------------------- tables


def _summary(fig: Figures[Entry]) -> Table:
    t = Table("Summary", ("figure", "value"))
    t.add("messages/s through the MIME stage, in-process, 1 CPU",
          f"{len(fig.items) / fig.inproc.best:.1f}")
    t.add("  ratio to parse-and-reserialize (compat32) on the same messages",
          f"{fig.ratio(fig.inproc.best):.2f}x")
    t.add("  geometric mean of per-message ratios", f"{fig.geomean_ratio():.2f}x")
    t.add("messages/s, batch CLI --jobs 1, end to end",
          f"{len(fig.items) / fig.cli.best:.1f} ({fig.ratio(fig.cli.best):.2f}x)")
    t.add("messages/s, batch CLI minus its start-up",
          f"{len(fig.items) / fig.cli_net:.1f} ({fig.ratio(fig.cli_net):.2f}x)")
    t.add("parse-and-reserialize baseline, messages/s",
          f"{len(fig.items) / fig.baseline.best:.1f}")
    t.add("verdicts (in-process / CLI)",
          f"{verdict_text(fig.inproc.verdicts)} / {verdict_text(fig.cli.verdicts)}")
    t.notes.append("issue 4 sets no target; ratio = Sekisho time / baseline time")
    return t


def _kind_table(fig: Figures[Entry]) -> Table:
    t = Table("Per message type, in-process (fastest time per message)", GROUP_HEADERS)
    group_rows(t, fig, lambda e: e.kind)
    t.notes.append("share of time: the type's part of the whole mix's in-process time")
    return t


# ------------------------------------------------------------------------ environment


def _environment(argv: Sequence[str]) -> list[tuple[str, str]]:
    libs = ", ".join(f"{name} {version(name)}" for name in ("nh3", "python-docx"))
    return [
        ("command", command("bench.mail", argv)),
        ("date", cmd(["date", "-u"])),
        ("machine", machine()),
        ("versions", f"Python {platform.python_version()}, pikepdf {pikepdf.__version__}, "
                     f"libqpdf {pikepdf.__libqpdf_version__}, {libs}"),
        ("sekisho", source_state("gateway/stages/mail*.py", STAGE_FILES)),
    ]


def _corpus_text(entries: Sequence[Entry], root: Path) -> str:
    kinds = Counter(e.kind for e in entries)
    where = root.relative_to(ROOT) if root.is_relative_to(ROOT) else root
    return (f"{len(entries)} messages, {sum(e.size for e in entries) / 1e6:.2f} MB ("
            + ", ".join(f"{k} {n}" for k, n in kinds.items()) + f") — in {where}")


# ------------------------------------------------------------------------------- main


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.mail",
                                description=(__doc__ or "").split("\n")[0])
    p.add_argument("--quick", action="store_true", help="a fifth of the mix, one round")
    p.add_argument("--repeat", type=int, default=0, help="rounds (default 3, --quick 1)")
    p.add_argument("--corpus", type=Path, default=mailcorpus.DEFAULT_ROOT)
    p.add_argument("--write-results", action="store_true",
                   help=f"add or replace today's section in {RESULTS.relative_to(ROOT)}")
    args = p.parse_args(argv)
    args.repeat = args.repeat or (1 if args.quick else 3)
    return args


def _measure(args: argparse.Namespace) -> tuple[str, list[Table]]:
    progress(f"corpus in {args.corpus}")
    build_in_child("bench.mailcorpus", args.corpus, quick=args.quick)
    entries = mailcorpus.build(args.corpus, quick=args.quick, log=progress)
    fig = Figures("Mail mix", entries, _reserialize,
                  Pass("baseline: compat32 parse + as_bytes (file in, file out)"),
                  startup_key=lambda e: e.kind)
    pol = load("default")
    warm_up([fig], pol, RUN_DIR / "warm")
    for i in range(args.repeat):
        progress(f"round {i + 1}/{args.repeat}")
        run_round(fig, pol, RUN_DIR)
    throughput = throughput_notes(throughput_table(fig, "msgs"), "messages")
    return _corpus_text(entries, args.corpus), [_summary(fig), throughput, _kind_table(fig)]


def main(argv: Sequence[str] | None = None) -> int:
    return bench_main("Mail", "mail", list(sys.argv[1:] if argv is None else argv),
                      parse=_parse, environment=_environment, measure=_measure)


if __name__ == "__main__":
    raise SystemExit(main())
