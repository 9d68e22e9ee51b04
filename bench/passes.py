"""Sekisho against a baseline on the same files, in the same run: the passes, their
figures and their tables (used by bench/office.py and bench/mail.py).

One round, on one CPU: the baseline in this process (one file after the other), then
``process_file`` per file in this process, then the batch CLI ``sekisho disarm FILES
--out-dir D --jobs 1`` end to end, then the same CLI on the smallest file alone (its
fixed start-up). Every pass writes into a fresh directory, so each output is a new file
for every tool. The fastest of the rounds counts.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from bench import measure
from bench.common import MB, fresh_dir, report_verdicts, secs, sekisho_disarm, verdict_text
from bench.report import Table
from gateway.pipeline.run import process_file
from gateway.policy import Policy

#: a baseline: read ``src`` and write its rewrite to ``out``
Baseline = Callable[[Path, Path], None]


class Item(Protocol):
    @property
    def path(self) -> Path: ...

    @property
    def name(self) -> str: ...

    @property
    def size(self) -> int: ...


T = TypeVar("T", bound=Item)


@dataclass(slots=True)
class Pass:
    """One way of processing a set of files, possibly several times."""

    label: str
    runs: list[float] = field(default_factory=list)
    verdicts: Counter[str] = field(default_factory=Counter)
    per_file: dict[str, float] = field(default_factory=dict)  # fastest time per file
    verdict_of: dict[str, str] = field(default_factory=dict)  # last verdict per file

    @property
    def best(self) -> float:
        return min(self.runs)

    def add(self, times: dict[str, float], verdicts: dict[str, str] | None = None) -> None:
        self.runs.append(sum(times.values()))
        for name, seconds in times.items():
            self.per_file[name] = min(seconds, self.per_file.get(name, seconds))
        if verdicts is not None:
            self.verdict_of = verdicts
            self.verdicts = Counter(verdicts.values())


@dataclass(slots=True)
class Figures(Generic[T]):
    """Baseline, in-process and CLI figures for one set of files."""

    title: str
    items: list[T]
    baseline_fn: Baseline
    baseline: Pass
    inproc: Pass = field(default_factory=lambda: Pass("sekisho in-process process_file"))
    cli: Pass = field(default_factory=lambda: Pass("sekisho batch CLI --jobs 1, end to end"))
    startup: Pass = field(default_factory=lambda: Pass("sekisho batch CLI, smallest file"))
    #: the start-up batch is the smallest item of each group by this key (default: the
    #: smallest item): one per group makes it import every stage the whole batch needs
    startup_key: Callable[[T], str] = lambda _: ""

    @property
    def startup_items(self) -> list[T]:
        smallest: dict[str, T] = {}
        for i in sorted(self.items, key=lambda i: i.size, reverse=True):
            smallest[self.startup_key(i)] = i
        return list(smallest.values())

    @property
    def nbytes(self) -> int:
        return sum(i.size for i in self.items)

    @property
    def cli_net(self) -> float:
        """The fastest batch minus the fastest start-up."""
        return max(self.cli.best - self.startup.best, 1e-9)

    def ratio(self, seconds: float) -> float:
        return seconds / self.baseline.best

    def geomean_ratio(self) -> float:
        """Per-file in-process/baseline ratios, geometric mean: every file counts the
        same, so small files (where fixed per-file costs show) weigh as much as large."""
        logs = [math.log(self.inproc.per_file[i.name] / self.baseline.per_file[i.name])
                for i in self.items]
        return math.exp(sum(logs) / len(logs))


# ------------------------------------------------------------------------------ passes


def _timed(items: Sequence[T], out: Path,
           fn: Callable[[T, Path], str | None]) -> tuple[dict[str, float], dict[str, str]]:
    """Run ``fn`` on every item into a fresh ``out``; wall time and verdict per file."""
    fresh_dir(out)
    times: dict[str, float] = {}
    verdicts: dict[str, str] = {}
    for item in items:
        started = time.perf_counter()
        verdict = fn(item, out / item.name)
        times[item.name] = time.perf_counter() - started
        if verdict is not None:
            verdicts[item.name] = verdict
    return times, verdicts


def cli_batch(paths: Sequence[Path], out: Path) -> tuple[float, Counter[str]]:
    """``sekisho disarm PATHS --out-dir out --jobs 1``: wall time and report verdicts."""
    fresh_dir(out)
    argv = [*sekisho_disarm(), *map(str, paths), "--out-dir", str(out), "--jobs", "1"]
    run = measure.run(argv).check((0, 3, 4))
    return run.seconds, report_verdicts(out)


def run_round(fig: Figures[T], pol: Policy, out: Path) -> None:
    """One round of every pass over ``fig.items``, pinned to one CPU."""

    def baseline(item: T, dst: Path) -> None:
        fig.baseline_fn(item.path, dst)

    def sekisho(item: T, dst: Path) -> str:
        return process_file(item.path, dst, policy=pol, source="bench").verdict.value

    with measure.one_core():
        times, _ = _timed(fig.items, out / "baseline", baseline)
        fig.baseline.add(times)
        fig.inproc.add(*_timed(fig.items, out / "inproc", sekisho))
        seconds, fig.cli.verdicts = cli_batch([i.path for i in fig.items], out / "cli")
        fig.cli.runs.append(seconds)
        seconds, fig.startup.verdicts = cli_batch([i.path for i in fig.startup_items],
                                                  out / "startup")
        fig.startup.runs.append(seconds)


def warm_up(figs: Sequence[Figures[T]], pol: Policy, out: Path) -> None:
    """Read every input once and run each tool once per set, untimed: stage imports,
    caches and the first-call costs stay out of the figures."""
    measure.warm_cache([i.path for f in figs for i in f.items])
    fresh_dir(out)
    for fig in figs:
        first = fig.items[0]
        fig.baseline_fn(first.path, out / f"baseline-{first.name}")
        process_file(first.path, out / first.name, policy=pol, source="bench")


# ----------------------------------------------------------------------------- tables


def throughput_table(fig: Figures[T], unit: str) -> Table:
    """Baseline, in-process, CLI and CLI minus start-up for one set of files."""
    t = Table(f"{fig.title}: {len(fig.items)} {unit}, {fig.nbytes / MB:.1f} MB, "
              "1 CPU (fastest run)",
              ("run", f"{unit}/s", "MB/s", "wall s", "x baseline", "all runs s", "verdicts"))

    def row(label: str, seconds: float, runs: str, verdicts: Counter[str] | None) -> None:
        t.add(label, f"{len(fig.items) / seconds:.1f}", f"{fig.nbytes / MB / seconds:.1f}",
              f"{seconds:.3f}", f"{fig.ratio(seconds):.2f}", runs,
              verdict_text(verdicts) if verdicts is not None else "-")

    row(fig.baseline.label, fig.baseline.best, secs(fig.baseline.runs), None)
    row(fig.inproc.label, fig.inproc.best, secs(fig.inproc.runs), fig.inproc.verdicts)
    row(fig.cli.label, fig.cli.best, secs(fig.cli.runs), fig.cli.verdicts)
    row(f"  same, minus start-up ({fig.startup.best:.3f} s)", fig.cli_net,
        f"start-up: {secs(fig.startup.runs)}", None)
    extra = (fig.cli_net - fig.inproc.best) / len(fig.items) * 1000
    t.notes.append(f"the batch CLI minus its start-up takes {extra:+.1f} ms per {unit[:-1]} "
                   "compared with process_file in-process (worker round trip, report files)"
                   + ("; below zero: within the run-to-run noise" if extra < 0 else ""))
    return t


def throughput_notes(t: Table, unit: str) -> Table:
    t.notes.append("x baseline: Sekisho wall time / baseline wall time on the same "
                   f"{unit} (above 1 = slower than the baseline)")
    t.notes.append("in-process: the sum of process_file wall times (sniff, disarm, verify, "
                   "digests), no process start-up; the baseline likewise, in this process")
    t.notes.append("start-up: the batch CLI on the smallest file alone, or the smallest of "
                   "each type where types go through different stages (interpreter, stage "
                   "imports, worker pool, those files); subtracted in the row below it")
    return t


GROUP_HEADERS = ("group", "n", "avg kB", "baseline ms each", "sekisho ms each", "x baseline",
                 "share of time", "sekisho MB/s", "verdicts")


def group_rows(t: Table, fig: Figures[T], key: Callable[[T], str]) -> None:
    """One row per group of ``fig.items`` (by ``key``): per-file in-process figures."""
    total = sum(fig.inproc.per_file.values())
    for group in dict.fromkeys(key(i) for i in fig.items):
        members = [i for i in fig.items if key(i) == group]
        base = sum(fig.baseline.per_file[i.name] for i in members)
        ours = sum(fig.inproc.per_file[i.name] for i in members)
        size = sum(i.size for i in members)
        n = len(members)
        t.add(group, str(n), f"{size / n / 1000:.1f}", f"{base * 1000 / n:.2f}",
              f"{ours * 1000 / n:.2f}", f"{ours / base:.2f}", f"{ours / total:.0%}",
              f"{size / MB / ours:.1f}",
              verdict_text(Counter(fig.inproc.verdict_of[i.name] for i in members)))


def bench_main(label: str, key: str, argv: Sequence[str], *,
               parse: Callable[[list[str]], Any],
               environment: Callable[[Sequence[str]], list[tuple[str, str]]],
               measure: Callable[[Any], tuple[str, list[Table]]]) -> int:
    """The shared run of bench.office and bench.mail: facts, measure, print or record."""
    from bench.common import load_fact, loadavg, publish, today
    from gateway.log import configure

    args = parse(list(argv))
    configure(json=False, level="WARNING")
    facts = environment(argv)
    load_before = loadavg()
    corpus, tables = measure(args)
    facts.append(("corpus", corpus))
    facts.append(("load average (1/5/15 min)", load_fact(load_before)))
    mode = "quick" if args.quick else "full"
    publish(facts, tables, key=f"{key}-{today()}-{mode}" if args.write_results else None,
            title=f"{label} — {today()}, {mode} run")
    return 0
