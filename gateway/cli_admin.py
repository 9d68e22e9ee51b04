"""Admin commands: ``sekisho audit verify`` and ``sekisho quarantine ...``.

Both read the daemon's configuration (``--config FILE``, else the embedded defaults,
relative to the working directory) for the quarantine, its key files and the audit log.
Exit codes: 0 done (``audit verify``: the log is intact), 1 the operation failed (no
such entry, already deleted, an original that fails authentication; ``audit verify``:
problems found, one per line on stdout), 2 usage or configuration error. Every admin
action (export, delete, purge) is recorded in the audit log with its approver and reason.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.errors import UsageError

if TYPE_CHECKING:
    from gateway.config import Config
    from gateway.store.quarantine import Quarantine, QuarantineEntry

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
STATES = ("held", "released", "deleted")
ORIGINS = ("smtp", "folder", "http", "ppap")


def add_parsers(sub: Any) -> None:
    """Register ``audit`` and ``quarantine`` on the ``sekisho`` subparsers."""
    aud = sub.add_parser("audit", help="audit log tools")
    aud_sub = aud.add_subparsers(dest="audit_command", required=True,
                                 parser_class=type(aud))
    ver = aud_sub.add_parser("verify", help="check the audit log's hash chain and anchor")
    ver.add_argument("path", nargs="?", type=Path, metavar="PATH",
                     help="audit log (default: audit.path of the configuration)")
    _config(ver)

    q = sub.add_parser("quarantine", help="list, show, export, delete and purge originals")
    q_sub = q.add_subparsers(dest="quarantine_command", required=True,
                             parser_class=type(q))
    ls = q_sub.add_parser("list", help="list entries, newest first")
    ls.add_argument("--state", choices=STATES)
    ls.add_argument("--origin", choices=ORIGINS)
    ls.add_argument("--limit", type=int, default=50, metavar="N")
    ls.add_argument("--offset", type=int, default=0, metavar="N")
    show = q_sub.add_parser("show", help="an entry's metadata, history and report")
    show.add_argument("job_id", metavar="ID")
    exp = q_sub.add_parser("export", help="decrypt an original to a file (audited)")
    exp.add_argument("job_id", metavar="ID")
    exp.add_argument("-o", "--output", type=Path, required=True, metavar="FILE")
    dele = q_sub.add_parser("delete", help="shred an original, keep a tombstone (audited)")
    dele.add_argument("job_id", metavar="ID")
    for p in (exp, dele):
        p.add_argument("--approver", required=True, metavar="NAME")
        p.add_argument("--reason", required=True, metavar="TEXT")
    purge = q_sub.add_parser("purge", help="shred originals past their retention (audited)")
    for p in (ls, show, exp, dele, purge):
        _config(p)
        p.add_argument("--json", action="store_true", help="print JSON")


def _config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, metavar="FILE",
                   help="daemon configuration (YAML); default: embedded defaults")


def run(args: argparse.Namespace) -> int:
    from gateway import config  # noqa: PLC0415 - keep `sekisho disarm` start-up light
    from gateway.store.audit import AuditError  # noqa: PLC0415
    from gateway.store.quarantine import QuarantineError  # noqa: PLC0415
    from gateway.store.sealed import SealError  # noqa: PLC0415

    cfg = config.load(args.config)
    try:
        if args.command == "audit":
            return _verify(args.path or cfg.audit_path)
        return _quarantine(args, cfg)
    except (QuarantineError, SealError, AuditError) as exc:
        _err(f"error: {exc}")
        return EXIT_FAILED
    except OSError as exc:
        _err(f"error: {exc.filename or ''}: {exc.strerror or exc}")
        return EXIT_FAILED


def _err(line: str) -> None:
    print(f"sekisho: {line}", file=sys.stderr)


# --------------------------------------------------------------------------- audit


def _verify(path: Path) -> int:
    from gateway.store.audit import read_anchor, verify  # noqa: PLC0415

    if not path.is_file():
        raise UsageError(f"{path}: no such audit log")
    problems = verify(path)
    if problems:
        for p in problems:
            print(f"{path}:{p.line}: {p.message}" if p.line else f"{path}: {p.message}")
        _err(f"audit log {path}: {len(problems)} problem(s) found")
        return EXIT_FAILED
    with open(path, "rb") as f:
        lines = sum(1 for _ in f)
    anchor = read_anchor(path.with_name(path.name + ".anchor"))
    print(f"ok: {path}: {lines} line(s), chain intact"
          + (f", anchored at seq {anchor[0]}" if anchor else ""))
    return EXIT_OK


# ---------------------------------------------------------------------- quarantine


def _open(cfg: Config) -> Quarantine:
    from gateway.store.audit import AuditLog  # noqa: PLC0415
    from gateway.store.quarantine import Quarantine  # noqa: PLC0415
    from gateway.store.sealed import load_keyring  # noqa: PLC0415

    root = cfg.var_dir / "quarantine"
    if not root.is_dir():
        raise UsageError(f"{root}: no quarantine here (wrong --config or var_dir?)")
    keys = load_keyring(cfg.quarantine_key, cfg.quarantine_old_keys)  # never created here
    return Quarantine(root, keys, retention=cfg.quarantine_retention,
                      audit=AuditLog(cfg.audit_path))


def _quarantine(args: argparse.Namespace, cfg: Config) -> int:
    cmd = args.quarantine_command
    if cmd in ("export", "delete") and not (args.approver.strip() and args.reason.strip()):
        raise UsageError("--approver and --reason must not be empty")
    if cmd == "list" and (args.limit < 1 or args.offset < 0):
        raise UsageError("--limit must be at least 1 and --offset not negative")
    if cmd == "export":
        _check_new_file(args.output)
    if cmd in ("show", "export", "delete"):
        _check_id(args.job_id)
    q = _open(cfg)
    try:
        if cmd == "list":
            entries = q.list(args.state, args.origin, args.limit, args.offset)
            total = q.count(args.state, args.origin)
            if args.json:
                _print_json({"total": total, "entries": [e.to_dict() for e in entries]})
            else:
                _print_table(entries, total, args.offset)
        elif cmd == "show":
            entry = q.get(args.job_id)
            report = q.read_report(args.job_id)
            if args.json:
                _print_json({"entry": entry.to_dict(), "report": report})
            else:
                _print_entry(entry, report)
        elif cmd == "export":
            entry = q.export(args.job_id, args.output, args.approver, args.reason)
            _done(args, entry, f"exported: {entry.job_id} -> {args.output} "
                               f"({entry.size} bytes, sha256 {entry.sha256})")
        elif cmd == "delete":
            entry = q.delete(args.job_id, args.approver, args.reason)
            _done(args, entry, f"deleted: {entry.job_id} (original shredded; tombstone kept)")
        else:
            purged = q.purge()
            if args.json:
                _print_json({"purged": [e.to_dict() for e in purged]})
            else:
                for e in purged:
                    print(f"purged: {e.job_id} (created {e.created}, expired {e.expires})")
                print(f"{len(purged)} original(s) purged")
    finally:
        q.close()
    return EXIT_OK


def _check_id(job_id: str) -> None:
    if (not job_id or len(job_id) > 200 or job_id.startswith(".")
            or any(c in job_id for c in "/\\\0")):
        raise UsageError(f"{job_id!r} is not a job id")


def _check_new_file(path: Path) -> None:
    if path.exists():
        raise UsageError(f"{path}: exists; export never overwrites, give a new file name")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"{path}: directory {parent} does not exist")


def _done(args: argparse.Namespace, entry: QuarantineEntry, line: str) -> None:
    if args.json:
        _print_json(entry.to_dict())
    else:
        print(line)


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


def _where(entry: QuarantineEntry) -> str:
    d = entry.destination
    if entry.origin == "smtp":
        rcpts = [str(r) for r in d.get("recipients", [])]
        more = f" (+{len(rcpts) - 1})" if len(rcpts) > 1 else ""
        return f"{d.get('sender') or '<>'} -> {rcpts[0] if rcpts else '?'}{more}"
    if entry.origin == "folder":
        return f"{d.get('folder', '?')}/{d.get('file', '?')}"
    if entry.origin == "http":
        return f"token {d.get('token', '?')}"
    return ", ".join(f"{k}={v}" for k, v in d.items())


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    return f"{n / 1024:.1f} KiB" if n < 1024**2 else f"{n / 1024**2:.1f} MiB"


def _print_table(entries: list[QuarantineEntry], total: int, offset: int) -> None:
    if not entries:
        print(f"no entries (total {total})")
        return
    width = max(len("JOB ID"), *(len(e.job_id) for e in entries))
    print(f"{'JOB ID':<{width}}  {'CREATED':<20}  {'ORIGIN':<6}  {'STATE':<8}  "
          f"{'VERDICT':<8}  {'SIZE':>9}  {'EXPIRES':<20}  WHERE")
    for e in entries:
        print(f"{e.job_id:<{width}}  {e.created:<20}  {e.origin:<6}  {e.state:<8}  "
              f"{e.verdict:<8}  {_size(e.size):>9}  {e.expires:<20}  {_where(e)}")
    print(f"{offset + 1}-{offset + len(entries)} of {total}")


def _print_entry(entry: QuarantineEntry, report: dict[str, Any]) -> None:
    rows = [("job id", entry.job_id), ("state", entry.state), ("created", entry.created),
            ("expires", entry.expires), ("origin", entry.origin), ("where", _where(entry)),
            ("policy", entry.policy or "-"), ("verdict", entry.verdict),
            ("reason", entry.reason or "-"), ("name", entry.name),
            ("size", f"{entry.size} bytes"), ("sha256", entry.sha256)]
    for key, value in rows:
        print(f"{key + ':':<9} {value}")
    for k, v in sorted((entry.extra or {}).items()):
        print(f"{'':<9} {k}: {json.dumps(v, ensure_ascii=False)}")
    print("history:" if entry.history else "history: none")
    for a in entry.history:
        print(f"  {a.at}  {a.action:<8} {a.actor}: {a.reason}")
    findings = [f for item in report.get("items", []) for f in item.get("findings", [])]
    print(f"findings: {len(findings) or 'none'}")
    for f in findings:
        print(f"  {f.get('action', '?'):<11} {f.get('kind', '?'):<24} {f.get('location', '')}")
