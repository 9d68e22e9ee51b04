"""What every benchmark shares: paths, the sekisho command, batch reports, the corpus
manifest, and the facts about the run (command, date, machine, load) that head each
section of bench/RESULTS.md."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from bench.report import Table, section, write_section

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
OUT = BENCH / "out"
RESULTS = BENCH / "RESULTS.md"

MB = 1_000_000
DELIVERED = frozenset({"clean", "disarmed"})
NOT_MEASURED = "not yet measured"
MANIFEST = "manifest.json"


def progress(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def fresh_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def sekisho_disarm(plugins: Sequence[str] = ()) -> list[str]:
    """``sekisho disarm`` with extra stage modules (options of the subcommand)."""
    beside = Path(sys.executable).with_name("sekisho")
    found = str(beside) if beside.exists() else shutil.which("sekisho")
    if found is None:
        raise SystemExit("bench: the sekisho console script is not installed (make install)")
    return [found, "disarm", *(f"--plugin={m}" for m in plugins)]


def report_verdicts(out: Path) -> Counter[str]:
    """Verdicts of the ``*.report.json`` files a batch run wrote into ``out``."""
    verdicts: Counter[str] = Counter()
    for report in out.glob("*.report.json"):
        verdicts[json.loads(report.read_text(encoding="utf-8"))["verdict"]] += 1
    return verdicts


def verdict_text(verdicts: Counter[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(verdicts.items())) or "-"


def all_delivered(verdicts: Counter[str]) -> bool:
    return bool(verdicts) and set(verdicts) <= DELIVERED


def mb(nbytes: float) -> str:
    return f"{nbytes / MB:.1f} MB"


def secs(values: Sequence[float]) -> str:
    return " ".join(f"{v:.3f}" for v in values)


def status(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def today() -> str:
    return time.strftime("%Y-%m-%d", time.gmtime())


# ---------------------------------------------------------------------------- manifest


class Manifest:
    """``manifest.json`` of a generated corpus: file name -> size, for one corpus version.
    A file is reused only when it exists with the recorded size."""

    def __init__(self, root: Path, version: int) -> None:
        self.root, self.version = root, version
        self.files = self._read()

    def _read(self) -> dict[str, int]:
        try:
            data = json.loads((self.root / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("version") != self.version:
            return {}
        files = data.get("files")
        return {str(k): int(v) for k, v in files.items()} if isinstance(files, dict) else {}

    def size(self, name: str) -> int | None:
        """The recorded size of ``name`` if the file is there with that size."""
        size = self.files.get(name)
        path = self.root / name
        if size is None or not path.is_file() or path.stat().st_size != size:
            return None
        return size

    def record(self, name: str, size: int) -> None:
        self.files[name] = size
        tmp = self.root / f".{MANIFEST}.tmp"
        tmp.write_text(json.dumps({"version": self.version, "files": self.files}, indent=1,
                                  sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.root / MANIFEST)


def write_atomic(path: Path, data: bytes) -> int:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return len(data)


# ------------------------------------------------------------------------ environment


def cmd(argv: Sequence[str]) -> str:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, check=False, cwd=ROOT)
    except OSError:
        return "?"
    return done.stdout.strip() or "?"


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def load_fact(before: str) -> str:
    after = loadavg()
    busy = max(float(before.split(maxsplit=1)[0]), float(after.split(maxsplit=1)[0])) >= 1.0
    return f"{before} before, {after} after" + (
        " — other work was running on the machine: expect noise" if busy else "")


def mem_total() -> str:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return f"{int(line.split()[1]) / 1024**2:.1f} GiB RAM"
    return "?"


def machine() -> str:
    return (f"nproc {cmd(['nproc'])}, {cpu_model()}, {mem_total()}, "
            f"Linux {platform.release()}")


def command(module: str, argv: Sequence[str]) -> str:
    exe = os.path.relpath(sys.executable, ROOT)
    return f"`{shlex.join([exe, '-m', module, *argv])}` (in {ROOT})"


def source_state(label: str, files: Sequence[Path]) -> str:
    """The commit, whether gateway/ or policies/ differ from it, and one sha256 over
    ``files`` (the stages being measured) so runs of different code can be told apart."""
    commit = cmd(["git", "rev-parse", "--short", "HEAD"])
    changes = subprocess.run(["git", "status", "--porcelain", "--", "gateway", "policies"],
                             capture_output=True, text=True, check=False, cwd=ROOT).stdout
    dirty = bool(changes.strip())
    present = [f for f in sorted(files) if f.exists()]
    digest = hashlib.sha256()
    for f in present:
        digest.update(f.read_bytes())
    stage = digest.hexdigest()[:12] if present else "absent"
    return (f"commit {commit}{' + uncommitted changes in gateway/' if dirty else ''}; "
            f"{label} sha256 {stage}")


def publish(facts: Sequence[tuple[str, str]], tables: Sequence[Table], *,
            key: str | None, title: str) -> None:
    """Print the facts and tables; with ``key``, also write them as the RESULTS.md
    section ``key`` (replacing a section with the same key)."""
    print("\n".join(f"{k}: {v}" for k, v in facts))
    for table in tables:
        print()
        print(table.text())
    if key is not None:
        write_section(RESULTS, key, section(key, title, facts, tables))
        progress(f"wrote section {key} to {RESULTS.relative_to(ROOT)}")


def build_in_child(module: str, root: Path, *, quick: bool) -> None:
    """Generate a corpus with ``python -m module`` in a child process. The generators
    import python-docx, openpyxl, python-pptx, Pillow…; in the measuring process their
    objects would stay on the heap and make every garbage collection of the code being
    measured slower (about +20 % on allocation-heavy stages). Afterwards the measuring
    process only lists the corpus, which imports none of them."""
    argv = [sys.executable, "-m", module, "--root", str(root), *(["--quick"] if quick else [])]
    done = subprocess.run(argv, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          check=False)
    if done.returncode != 0:
        raise SystemExit(f"bench: {module} failed (exit {done.returncode})")
