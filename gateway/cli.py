"""The ``sekisho`` command (DESIGN.md §5 CLI contract).

Exit codes: 0 output written (clean or disarmed), 2 usage or configuration
error, 3 blocked (no output; report written), 4 failed (no output; report
written). Bad input gets one clear line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from gateway import __version__, cli_admin, kinds
from gateway import policy as policy_mod
from gateway.errors import ConfigError, UsageError
from gateway.log import configure
from gateway.models import Report, Verdict

if TYPE_CHECKING:
    from gateway.pipeline.workers import WorkerPool

EXIT_OK, EXIT_USAGE, EXIT_BLOCKED, EXIT_FAILED = 0, 2, 3, 4


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="sekisho", description="Sekisho (関所) sanitization gateway")
    p.add_argument("--version", action="version", version=f"sekisho {__version__}")
    p.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv: debug)")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    d = sub.add_parser("disarm", help="disarm files")
    d.add_argument("inputs", nargs="+", type=Path, metavar="IN")
    d.add_argument("-o", "--output", type=Path, metavar="OUT",
                   help="write the disarmed copy exactly here (one input)")
    d.add_argument("--out-dir", type=Path, metavar="DIR",
                   help="batch: DIR/<delivery name> and DIR/<input name>.report.json")
    d.add_argument("--jobs", type=int, default=0, metavar="N",
                   help="worker processes for a batch (default: CPU count)")
    d.add_argument("--report", type=Path, metavar="R.json", help="write the JSON report here")
    _common(d)

    s = sub.add_parser("scan", help="show what disarm would remove; writes nothing")
    s.add_argument("input", type=Path, metavar="IN")
    s.add_argument("--json", action="store_true", help="print the JSON report")
    _common(s)

    srv = sub.add_parser("serve", help="run the daemon (SMTP relay)")
    srv.add_argument("--config", type=Path, metavar="FILE",
                     help="daemon configuration (YAML); default: embedded defaults")

    pol = sub.add_parser("policy", help="policy tools")
    pol_sub = pol.add_subparsers(dest="policy_command", required=True, parser_class=_Parser)
    chk = pol_sub.add_parser("check", help="validate a policy file")
    chk.add_argument("file", type=Path)
    cli_admin.add_parsers(sub)  # audit verify, quarantine list|show|export|delete|purge
    return p


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--policy", default="default", metavar="NAME|FILE",
                   help="policy name (looked up in the policy directories) or YAML file")
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                   help="import an extra stage module in every worker")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        level = ("WARNING", "INFO", "DEBUG")[min(args.verbose, 2)]
        configure(json=False, level=level)
        args.log_level = level
        if args.command == "policy":
            return _policy_check(args.file)
        if args.command == "serve":
            return _serve(args)
        if args.command in ("audit", "quarantine"):
            return cli_admin.run(args)
        if args.plugin:
            from gateway.pipeline import registry  # noqa: PLC0415 - plugins may add families

            registry.load_plugins(args.plugin)
        pol = policy_mod.load(args.policy)
        if args.command == "scan":
            return _scan(args, pol)
        return _disarm(args, pol)
    except UsageError as exc:
        _err(f"usage error: {exc}")
        return EXIT_USAGE
    except ConfigError as exc:
        _err(f"configuration error: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except OSError as exc:
        _err(f"error: {exc.filename or ''}: {exc.strerror or exc}")
        return EXIT_FAILED
    except Exception as exc:
        structlog.get_logger("sekisho.cli").debug("cli.crash", exc_info=True)
        _err(f"internal error ({type(exc).__name__}); run with -vv for details")
        return EXIT_FAILED


def _err(line: str) -> None:
    print(f"sekisho: {line}", file=sys.stderr)


# ------------------------------------------------------------------------- commands


def _policy_check(path: Path) -> int:
    pol = policy_mod.load_file(path)
    actions = ", ".join(f"{fam}={fp.action}" for fam, fp in sorted(pol.formats.items()))
    print(f"ok: {path}: policy {pol.name!r}: {actions}")
    return EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    import asyncio  # noqa: PLC0415 - the daemon only

    from gateway import app, config  # noqa: PLC0415

    cfg = config.load(args.config)
    json_logs = {"json": True, "console": False}.get(cfg.log_format)
    level = cfg.log_level if args.verbose == 0 else args.log_level
    configure(json=json_logs, level=level)
    asyncio.run(app.run(cfg, log_json=json_logs is not False))
    return EXIT_OK


def _scan(args: argparse.Namespace, pol: policy_mod.Policy) -> int:
    from gateway.pipeline.run import new_job_id  # noqa: PLC0415
    from gateway.pipeline.workers import JobSpec  # noqa: PLC0415 - heavy import

    src = _check_input(args.input)
    with _pool(1, args) as pool:
        report = pool.run(JobSpec(new_job_id(), src, None, src.name), pol)
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        _print_scan(report)
    return _exit_code([report])


def _disarm(args: argparse.Namespace, pol: policy_mod.Policy) -> int:
    inputs = [_check_input(p) for p in args.inputs]
    if args.out_dir is not None:
        if args.output is not None or args.report is not None:
            raise UsageError("--out-dir cannot be combined with -o/--report")
        return _batch(inputs, args.out_dir, args.jobs, args, pol)
    if args.output is None:
        raise UsageError("give -o OUT for one input, or --out-dir DIR for a batch")
    if len(inputs) != 1:
        raise UsageError("-o takes exactly one input; use --out-dir for several")
    out = _check_output(args.output)
    if args.report is not None:
        _check_output(args.report)
    return _single(inputs[0], out, args.report, args, pol)


def _single(src: Path, out: Path, report_path: Path | None, args: argparse.Namespace,
            pol: policy_mod.Policy) -> int:
    from gateway.pipeline.run import new_job_id  # noqa: PLC0415
    from gateway.pipeline.workers import JobSpec  # noqa: PLC0415

    tmp = _temp_beside(out)
    try:
        with _pool(1, args) as pool:
            report = pool.run(JobSpec(new_job_id(), src, tmp, src.name), pol)
        if report.verdict.delivered:
            os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    if report_path is not None:
        _write_json(report_path, report)
    _print_result(src, report, out if report.verdict.delivered else None)
    return _exit_code([report])


def _batch(inputs: list[Path], out_dir: Path, jobs: int, args: argparse.Namespace,
           pol: policy_mod.Policy) -> int:
    from gateway.pipeline.run import new_job_id  # noqa: PLC0415
    from gateway.pipeline.workers import JobSpec  # noqa: PLC0415

    names = [p.name for p in inputs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UsageError(f"several inputs share the name {dupes[0]!r}; outputs would collide")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{out_dir}: cannot create output directory ({exc.strerror})") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise UsageError(f"{out_dir}: output directory is not writable")
    workers = jobs if jobs > 0 else (os.cpu_count() or 1)
    reports: list[Report] = []
    used: set[str] = set()
    temps = {src: _temp_beside(out_dir / src.name) for src in inputs}
    try:
        with _pool(min(workers, len(inputs)), args) as pool:
            futures = [(src, pool.submit(JobSpec(new_job_id(), src, temps[src], src.name), pol))
                       for src in inputs]
            for src, fut in futures:
                report = fut.result()
                dest = None
                if report.verdict.delivered and report.output is not None:
                    name = _unique(report.output.name, used)
                    report = replace(report, output=replace(report.output, name=name))
                    dest = out_dir / name
                    os.replace(temps[src], dest)
                _write_json(out_dir / f"{src.name}.report.json", report)
                _print_result(src, report, dest)
                reports.append(report)
    finally:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)
    return _exit_code(reports)


# --------------------------------------------------------------------------- helpers


def _check_input(path: Path) -> Path:
    if not path.exists():
        raise UsageError(f"{path}: no such file")
    if path.is_dir():
        raise UsageError(f"{path}: is a directory, not a file")
    if not path.is_file():
        raise UsageError(f"{path}: not a regular file")
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read ({exc.strerror})") from None
    return path


def _check_output(path: Path) -> Path:
    if path.is_dir():
        raise UsageError(f"{path}: is a directory; give a file name")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"{path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists()
                                                    and not os.access(path, os.W_OK)):
        raise UsageError(f"{path}: not writable")
    return path


def _pool(workers: int, args: argparse.Namespace) -> WorkerPool:
    from pebble.common.types import CONSTS  # noqa: PLC0415

    from gateway.pipeline.workers import WorkerPool  # noqa: PLC0415 - heavy import

    # pebble's pool threads look at their state every sleep_unit (0.1 s): closing the
    # pool waits for that look, up to 0.1 s (about 50 ms on average) of every command
    # that takes a few hundred. A command runs one pool and exits; it looks more often.
    CONSTS.sleep_unit = 0.01
    # fork: the CLI is single-threaded when it starts the pool, and forking saves the
    # start-up of a forkserver (see gateway/pipeline/workers.py)
    return WorkerPool(workers, plugins=args.plugin, log_level=args.log_level,
                      start_method="fork")


def _temp_beside(path: Path) -> Path:
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name[:40]}.", suffix=".sekisho-tmp",
                                    dir=path.parent if str(path.parent) else ".")
    except OSError as exc:
        raise UsageError(f"{path}: not writable ({exc.strerror})") from None
    os.close(fd)
    return Path(name)


def _unique(name: str, used: set[str]) -> str:
    candidate, n = name, 2
    stem, dot, ext = name.rpartition(".")
    while candidate in used:
        candidate = f"{stem} ({n}).{ext}" if dot else f"{name} ({n})"
        n += 1
    used.add(candidate)
    return candidate


def _write_json(path: Path, report: Report) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(json.dumps(report.to_dict(), ensure_ascii=False, indent=2) + "\n",
                       encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"{path}: cannot write report ({exc.strerror})") from None


def _exit_code(reports: Sequence[Report]) -> int:
    verdicts = {r.verdict for r in reports}
    if Verdict.FAILED in verdicts:
        return EXIT_FAILED
    if Verdict.BLOCKED in verdicts:
        return EXIT_BLOCKED
    return EXIT_OK


def _summary(report: Report) -> str:
    removed = [f for f in report.findings if f.action in ("removed", "neutralized", "disarmed")]
    return f"{len(removed)} change(s)" if removed else "nothing to remove"


def _print_result(src: Path, report: Report, dest: Path | None) -> None:
    if dest is not None:
        print(f"{report.verdict.value}: {src} -> {dest} ({_summary(report)})")
    else:
        _err(f"{report.verdict.value}: {src}: {report.reason or 'not delivered'}")


def _print_scan(report: Report) -> None:
    print(f"{report.input.name}: {report.input.type}, would be {report.verdict.value}")
    for item in report.items:
        for f in item.findings:
            label = kinds.info(f.kind).en
            where = "/".join(x for x in (item.location, f.location) if x)
            print(f"  {f.action:<11} {f.kind:<24} {where}  {label}"
                  + (f" — {f.detail}" if f.detail else ""))
