"""PDF benchmark: Sekisho against a plain ``qpdf in.pdf out.pdf`` rewrite.

    python -m bench.pdf [--quick] [--jobs N] [--repeat N] [--no-huge] [--plugin MODULE]
                        [--write-results]

What is measured, all in the same run on the same files (see bench/pdfcorpus.py):

1. throughput over the ratio corpus (small, active, large and many-page PDFs; the
   ~100 MB file is *not* part of it): ``qpdf in out`` once per file, sequentially, and
   the batch CLI ``sekisho disarm FILES --out-dir D --jobs 1``, both pinned to one CPU;
   then the batch CLI with ``--jobs N`` on all CPUs, and (full mode) the pipeline
   in-process (``process_file`` per file, one CPU, no process start-up). Each is run
   ``--repeat`` times, interleaved; the fastest run counts. Ratio = Sekisho / qpdf wall.
2. the 200-page PDF: ``process_file`` in this process on one CPU (processing only, min
   of 3) and the single-file CLI ``sekisho disarm IN -o OUT`` end to end (min of 3).
3. peak RSS for the ~100 MB PDF: ``process_file`` in a fresh child
   (``python -m bench.rss_child``) that reports its own ``VmHWM`` just before it exits;
   the same for an idle child that only imports the pipeline, pikepdf and the stages
   (the baseline). For qpdf and for the batch CLI — with all its worker processes —
   ``VmHWM`` of every process in the tree is sampled from /proc
   while it runs. ``ru_maxrss``/``RUSAGE_CHILDREN`` are not used: on Linux a child's
   figure is floored at the parent's own peak (details in bench/measure.py).

The default policy blocks inputs over 50 MiB, so the ~100 MB file is run with
bench/policies/large-input.yaml (the default policy with ``max_size: 128MiB``).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pikepdf

from bench import measure, pdfcorpus
from bench.common import (
    BENCH,
    DELIVERED,
    MB,
    NOT_MEASURED,
    OUT,
    RESULTS,
    ROOT,
    all_delivered,
    cmd,
    command,
    fresh_dir,
    load_fact,
    loadavg,
    machine,
    mb,
    progress,
    report_verdicts,
    secs,
    sekisho_disarm,
    source_state,
    status,
    verdict_text,
)
from bench.report import Table, section, write_section
from gateway.log import configure
from gateway.pipeline import registry
from gateway.pipeline.run import process_file
from gateway.policy import Policy, load

RUN_DIR = OUT / "run"
LARGE_POLICY = BENCH / "policies" / "large-input.yaml"
PDF_STAGE_FILE = ROOT / "gateway" / "stages" / "pdf.py"

TARGET_RATIO = 1.3
TARGET_200_PAGES_S = 1.0
TARGET_RSS_MB = 300.0


#: extra stage modules (--plugin), passed to every sekisho process and child
PLUGINS: list[str] = []


def _kib_mb(kib: int) -> str:
    return mb(kib * 1024)


# --------------------------------------------------------------------------- figures


@dataclass(slots=True)
class Pass:
    """One tool over the ratio corpus, possibly several times."""

    label: str
    files: int
    nbytes: int
    runs: list[float] = field(default_factory=list)
    verdicts: Counter[str] = field(default_factory=Counter)  # empty for qpdf

    @property
    def best(self) -> float:
        return min(self.runs)

    @property
    def valid(self) -> bool:
        return not self.verdicts or all_delivered(self.verdicts)


@dataclass(slots=True)
class Pages200:
    entry: pdfcorpus.Entry
    inproc: list[float] = field(default_factory=list)
    inproc_verdict: str = ""
    cli: list[float] = field(default_factory=list)
    cli_small: list[float] = field(default_factory=list)
    qpdf: list[float] = field(default_factory=list)


@dataclass(slots=True)
class Rss:
    entry: pdfcorpus.Entry | None
    idle_kib: int = 0
    disarm_kib: int = 0
    disarm_seconds: float = 0.0
    disarm_verdict: str = ""
    disarm_reason: str | None = None
    qpdf_kib: int = 0
    cli_tree_kib: int = 0
    cli_verdict: str = ""
    cli_seconds: float = 0.0


# ------------------------------------------------------------------------- throughput


def _qpdf_pass(entries: Sequence[pdfcorpus.Entry], out: Path) -> float:
    fresh_dir(out)
    started = time.perf_counter()
    for e in entries:
        done = subprocess.run(["qpdf", str(e.path), str(out / e.name)],
                              stdin=subprocess.DEVNULL, capture_output=True, check=False)
        if done.returncode not in (0, 3):  # 3: warnings, output written
            raise RuntimeError(f"qpdf {e.path}: exit {done.returncode}: {done.stderr!r}")
    return time.perf_counter() - started


def _cli_batch(entries: Sequence[pdfcorpus.Entry], out: Path, jobs: int,
               policy: Path | None = None, *, sample: bool = False,
               ) -> tuple[measure.Run, Counter[str]]:
    fresh_dir(out)
    argv = [*sekisho_disarm(PLUGINS), *(str(e.path) for e in entries), "--out-dir", str(out),
            "--jobs", str(jobs)]
    if policy is not None:
        argv += ["--policy", str(policy)]
    run = measure.run(argv, sample=sample).check((0, 3, 4))
    return run, report_verdicts(out)


def _inproc_pass(entries: Sequence[pdfcorpus.Entry], out: Path,
                 pol: Policy) -> tuple[float, Counter[str]]:
    fresh_dir(out)
    verdicts: Counter[str] = Counter()
    total = 0.0
    for e in entries:
        started = time.perf_counter()
        report = process_file(e.path, out / e.name, policy=pol, source="bench")
        total += time.perf_counter() - started
        verdicts[report.verdict.value] += 1
    return total, verdicts


def _throughput(entries: Sequence[pdfcorpus.Entry], args: argparse.Namespace,
                pol: Policy) -> list[Pass]:
    n, size = len(entries), sum(e.size for e in entries)
    qpdf = Pass("qpdf in out, sequential (1 CPU)", n, size)
    one = Pass("sekisho batch --jobs 1 (1 CPU)", n, size)
    many = Pass(f"sekisho batch --jobs {args.jobs} (all CPUs)", n, size)
    inproc = Pass("sekisho in-process process_file (1 CPU)", n, size)
    for i in range(args.repeat):
        progress(f"throughput, round {i + 1}/{args.repeat}")
        with measure.one_core():
            qpdf.runs.append(_qpdf_pass(entries, RUN_DIR / "qpdf"))
            run, one.verdicts = _cli_batch(entries, RUN_DIR / "jobs1", 1)
            one.runs.append(run.seconds)
        run, many.verdicts = _cli_batch(entries, RUN_DIR / f"jobs{args.jobs}", args.jobs)
        many.runs.append(run.seconds)
    passes = [qpdf, one, many]
    if not args.quick:
        progress("throughput, in-process pass")
        with measure.one_core():
            seconds, inproc.verdicts = _inproc_pass(entries, RUN_DIR / "inproc", pol)
        inproc.runs.append(seconds)
        passes.append(inproc)
    return passes


# --------------------------------------------------------------------------- 200 pages


def _time_inproc(src: Path, out: Path, pol: Policy) -> tuple[float, str]:
    out.unlink(missing_ok=True)
    started = time.perf_counter()
    report = process_file(src, out, policy=pol, source="bench")
    return time.perf_counter() - started, report.verdict.value


def _pages200(entry: pdfcorpus.Entry, small: pdfcorpus.Entry, pol: Policy) -> Pages200:
    progress(f"{entry.name}: in-process, CLI and qpdf, 3 runs each")
    fig = Pages200(entry)
    out = fresh_dir(RUN_DIR / "pages200")
    with measure.one_core():
        for _ in range(3):
            seconds, fig.inproc_verdict = _time_inproc(entry.path, out / "inproc.pdf", pol)
            fig.inproc.append(seconds)
        for _ in range(3):
            fig.cli.append(_cli_single(entry.path, out / "cli.pdf"))
            fig.cli_small.append(_cli_single(small.path, out / "small.pdf"))
            qpdf = measure.run(["qpdf", str(entry.path), str(out / "qpdf.pdf")]).check((0, 3))
            fig.qpdf.append(qpdf.seconds)
    return fig


def _cli_single(src: Path, out: Path) -> float:
    out.unlink(missing_ok=True)
    run = measure.run([*sekisho_disarm(PLUGINS), str(src), "-o", str(out)]).check((0, 3, 4))
    return run.seconds


# -------------------------------------------------------------------------------- RSS


def _child(*argv: str) -> dict[str, object]:
    run = measure.run([sys.executable, "-m", "bench.rss_child", *argv, *PLUGINS],
                      cwd=ROOT).check()
    info: dict[str, object] = json.loads(run.stdout.strip().splitlines()[-1])
    return info


def _rss(entry: pdfcorpus.Entry | None) -> Rss:
    fig = Rss(entry)
    if entry is None:
        return fig
    progress(f"{entry.name}: peak RSS (child process, qpdf, CLI tree)")
    out = fresh_dir(RUN_DIR / "huge")
    idle = _child("idle", str(LARGE_POLICY))
    fig.idle_kib = int(str(idle["vm_hwm_kib"]))
    info = _child("disarm", str(LARGE_POLICY), str(entry.path), str(out / "child.pdf"))
    fig.disarm_kib = int(str(info["vm_hwm_kib"]))
    fig.disarm_seconds = float(str(info["seconds"]))
    fig.disarm_verdict = str(info["verdict"])
    fig.disarm_reason = None if info["reason"] is None else str(info["reason"])
    fig.qpdf_kib = measure.run(["qpdf", str(entry.path), str(out / "qpdf.pdf")],
                               sample=True).check((0, 3)).peak_kib
    cli, verdicts = _cli_batch([entry], out / "cli", 1, LARGE_POLICY, sample=True)
    fig.cli_tree_kib = cli.peak_kib
    fig.cli_verdict = verdict_text(verdicts)
    fig.cli_seconds = cli.seconds
    return fig


# ------------------------------------------------------------------------ environment


def _environment(argv: Sequence[str]) -> list[tuple[str, str]]:
    return [
        ("command", command("bench.pdf", argv)),
        ("date", cmd(["date", "-u"])),
        ("machine", machine()),
        ("versions", f"Python {platform.python_version()}, pikepdf {pikepdf.__version__}, "
                     f"libqpdf {pikepdf.__libqpdf_version__}, "
                     f"qpdf CLI {cmd(['qpdf', '--version']).splitlines()[0]}"),
        ("sekisho", source_state("gateway/stages/pdf.py", [PDF_STAGE_FILE])),
    ]


# ----------------------------------------------------------------------------- tables


def _corpus_text(ratio: Sequence[pdfcorpus.Entry], huge: pdfcorpus.Entry | None) -> str:
    groups = Counter(e.group for e in ratio)
    text = (f"ratio corpus {len(ratio)} files, {mb(sum(e.size for e in ratio))} ("
            + ", ".join(f"{g} {n}" for g, n in groups.items()) + ")")
    if huge is not None:
        text += f"; measured separately: {huge.name} {mb(huge.size)}"
    return text


def _throughput_table(passes: Sequence[Pass]) -> Table:
    t = Table("Throughput over the ratio corpus (fastest run)",
              ("run", "files/s", "MB/s", "wall s", "x qpdf", "all runs s", "verdicts"))
    base = passes[0].best
    for p in passes:
        t.add(p.label, f"{p.files / p.best:.1f}", f"{p.nbytes / MB / p.best:.1f}",
              f"{p.best:.3f}", f"{p.best / base:.2f}", secs(p.runs),
              verdict_text(p.verdicts))
    t.notes.append("CLI wall times include interpreter, pool and worker start-up; "
                   "qpdf's include one process start per file")
    t.notes.append("in-process: the sum of process_file times, no process start-up")
    return t


def _group_table(entries: Sequence[pdfcorpus.Entry], reports: Path) -> Table:
    """Where the time goes: pipeline time per group, from the last --jobs 1 run's reports."""
    t = Table("By group (reports of the last batch --jobs 1 run)",
              ("group", "files", "MB", "pipeline s", "ms/file", "verdicts"))
    for group in dict.fromkeys(e.group for e in entries):
        members = [e for e in entries if e.group == group]
        ms, verdicts = 0, Counter[str]()
        for e in members:
            data = json.loads((reports / f"{e.name}.report.json").read_text(encoding="utf-8"))
            ms += data["items"][0]["elapsed_ms"]
            verdicts[data["verdict"]] += 1
        t.add(group, str(len(members)), f"{sum(e.size for e in members) / MB:.2f}",
              f"{ms / 1000:.3f}", f"{ms / len(members):.0f}", verdict_text(verdicts))
    t.notes.append("pipeline s: the root item's elapsed_ms (sniff, disarm, verify) summed")
    return t


def _pages_table(fig: Pages200) -> Table:
    t = Table(f"{fig.entry.name} ({mb(fig.entry.size)}, 200 pages), 1 CPU",
              ("run", "best s", "all runs s"))
    t.add(f"in-process process_file ({fig.inproc_verdict})", f"{min(fig.inproc):.3f}",
          secs(fig.inproc))
    t.add("CLI sekisho disarm IN -o OUT, end to end", f"{min(fig.cli):.3f}", secs(fig.cli))
    t.add("  same CLI on small-000.pdf (start-up cost)", f"{min(fig.cli_small):.3f}",
          secs(fig.cli_small))
    t.add("qpdf in out", f"{min(fig.qpdf):.3f}", secs(fig.qpdf))
    return t


def _rss_table(fig: Rss) -> Table:
    name = fig.entry.name if fig.entry else pdfcorpus.HUGE_NAME
    t = Table(f"Peak RSS, {name}", ("process", "peak RSS", "note"))
    if fig.entry is None:
        t.add("all", NOT_MEASURED, "skipped (--quick or --no-huge)")
        return t
    every = f"VmHWM sampled every {measure.SAMPLE_INTERVAL * 1000:.0f} ms"
    t.add("idle child: python + gateway + pikepdf + stages", _kib_mb(fig.idle_kib),
          "own VmHWM at exit")
    t.add("child running process_file once", _kib_mb(fig.disarm_kib),
          f"own VmHWM at exit; {fig.disarm_seconds:.2f} s, {fig.disarm_verdict}"
          + (f" ({fig.disarm_reason})" if fig.disarm_reason else ""))
    t.add("qpdf in out", _kib_mb(fig.qpdf_kib), every)
    t.add("batch CLI --jobs 1, largest process in its tree", _kib_mb(fig.cli_tree_kib),
          f"{every}; {fig.cli_seconds:.2f} s, {fig.cli_verdict}")
    t.notes.append(f"policy {LARGE_POLICY.relative_to(ROOT)} (default + max_size 128MiB)")
    return t


# ---------------------------------------------------------------------------- targets


def _targets(stage: bool, passes: Sequence[Pass], pages: Pages200, rss: Rss) -> Table:
    t = Table("Targets", ("target", "goal", "measured", "result"))
    blocked = "INVALID: PDFs were not disarmed"
    if not stage:
        blocked = "INVALID: no pdf stage registered, PDFs were blocked"
    qpdf, one = passes[0], passes[1]
    ratio = one.best / qpdf.best
    t.add("batch --jobs 1 vs qpdf, ratio corpus", f"<= {TARGET_RATIO}x", f"{ratio:.2f}x",
          status(ratio <= TARGET_RATIO) if one.valid and stage else blocked)
    best = min(pages.inproc)
    ok200 = pages.inproc_verdict in DELIVERED and stage
    t.add("200-page PDF, in-process, 1 CPU", f"< {TARGET_200_PAGES_S:g} s", f"{best:.3f} s",
          status(best < TARGET_200_PAGES_S) if ok200 else blocked)
    if rss.entry is None:
        t.add("peak RSS, ~100 MB PDF", f"< {TARGET_RSS_MB:g} MB", NOT_MEASURED, "skipped")
    else:
        peak = rss.disarm_kib * 1024 / MB
        ok = rss.disarm_verdict in DELIVERED and stage
        t.add("peak RSS, ~100 MB PDF (process_file child)", f"< {TARGET_RSS_MB:g} MB",
              f"{peak:.1f} MB", status(peak < TARGET_RSS_MB) if ok else blocked)
    return t


def _pending_targets(reason: str) -> Table:
    t = Table("Targets", ("target", "goal", "measured", "result"))
    t.add("batch --jobs 1 vs qpdf, ratio corpus", f"<= {TARGET_RATIO}x", NOT_MEASURED, reason)
    t.add("200-page PDF, in-process, 1 CPU", f"< {TARGET_200_PAGES_S:g} s", NOT_MEASURED,
          reason)
    t.add("peak RSS, ~100 MB PDF", f"< {TARGET_RSS_MB:g} MB", NOT_MEASURED, reason)
    t.notes.append("measure with `.venv/bin/python -m bench.pdf "
                   "--write-results` once gateway/pipeline/registry.py's BUILTIN_MODULES "
                   "lists gateway.stages.pdf")
    return t


# ------------------------------------------------------------------------------- main


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.pdf", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="smaller corpus, one round, no ~100 MB file, no in-process pass")
    p.add_argument("--jobs", type=int, default=2, help="workers for the parallel batch run")
    p.add_argument("--repeat", type=int, default=0,
                   help="throughput rounds (default 3, --quick 1)")
    p.add_argument("--no-huge", action="store_true", help="skip the ~100 MB file")
    p.add_argument("--corpus", type=Path, default=pdfcorpus.DEFAULT_ROOT)
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                   help="extra stage module, as sekisho --plugin (e.g. an unregistered stage)")
    p.add_argument("--write-results", action="store_true",
                   help=f"add or replace today's section in {RESULTS.relative_to(ROOT)}")
    args = p.parse_args(argv)
    args.repeat = args.repeat or (1 if args.quick else 3)
    return args


def _stage_present() -> bool:
    return registry.stage_for("pdf") is not None


def _measure(args: argparse.Namespace, stage: bool) -> tuple[str, list[Table]]:
    """Build the corpus, take every figure; returns the corpus summary and the tables."""
    progress(f"corpus in {args.corpus}")
    entries = pdfcorpus.build(args.corpus, quick=args.quick,
                              huge=not (args.quick or args.no_huge), log=progress)
    ratio = [e for e in entries if e.group in pdfcorpus.RATIO_GROUPS]
    huge = next((e for e in entries if e.group == pdfcorpus.HUGE), None)
    by_name = {e.name: e for e in entries}
    measure.warm_cache([e.path for e in entries])
    pol = load("default")
    passes = _throughput(ratio, args, pol)
    pages = _pages200(by_name[pdfcorpus.PAGES_200], ratio[0], pol)
    rss = _rss(huge)
    tables = [_targets(stage, passes, pages, rss), _throughput_table(passes),
              _group_table(ratio, RUN_DIR / "jobs1"), _pages_table(pages), _rss_table(rss)]
    return _corpus_text(ratio, huge), tables


def _write(args: argparse.Namespace, facts: list[tuple[str, str]],
           tables: Sequence[Table], measured: bool) -> None:
    day = time.strftime("%Y-%m-%d", time.gmtime())
    mode = "quick" if args.quick else "full"
    key = f"{day}-{mode}" if measured else "pending"
    title = f"PDF — {day}, {mode} run" if measured else "PDF — not yet measured"
    write_section(RESULTS, key, section(key, title, facts, tables),
                  drop_prefix="pending" if measured else None)
    progress(f"wrote section {key} to {RESULTS.relative_to(ROOT)}")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parse(argv)
    configure(json=False, level="WARNING")
    PLUGINS[:] = args.plugin
    registry.load_plugins(PLUGINS)
    facts = _environment(argv)
    load_before = loadavg()
    stage = _stage_present()
    if not stage:
        progress("WARNING: no pdf stage registered — PDFs will be blocked; figures INVALID")
    corpus, tables = _measure(args, stage)
    facts.append(("corpus", corpus))
    facts.append(("load average (1/5/15 min)", load_fact(load_before)))
    print("\n".join(f"{k}: {v}" for k, v in facts))
    for table in tables:
        print()
        print(table.text())
    if args.write_results:
        if stage:
            _write(args, facts, tables, measured=True)
        else:
            reason = "no pdf stage registered yet (PDFs are blocked)"
            _write(args, facts, [_pending_targets(reason)], measured=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
