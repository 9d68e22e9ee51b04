"""Archives read by external programs: disk images (ISO 9660, UDF, WIM, Apple DMG,
VHD/VHDX), ARJ, 7z archives whose coders py7zr lacks (BCJ2) and LZH archives
libarchive refuses with 7-Zip; RAR, and LZH that 7-Zip refuses too (-lh1-), with unar.

Disk images. Emotet, IcedID and Qakbot mailed ISO, IMG and VHD files because Windows opens
them with a double click and, before 2022, did not mark what was inside as "from the
internet". What made them dangerous is what they held: a LNK, a DLL, a script. Sekisho
unpacks the image, sends every file in it through the pipeline like a zip member (so
the LNK and the DLL are blocked and a document is disarmed) and hands over a zip of
the result. The image itself never reaches the recipient. ``archive: {disk_images:
block}`` in a policy blocks images instead. No maintained Python library reads these
formats; 7-Zip does (Debian's ``7zip`` package, ``7zz``), and it is the tool Windows
users open such files with.

RAR. libarchive (3.6) reads RAR 5 and plain RAR 4 archives, not solid RAR 4 ones (only
their first file) nor those RAR 1.5-2.x wrote; Debian's 7-Zip has no RAR code (it is
not free software). unar (The Unarchiver's command-line tools, Debian's ``unar``; also
what the rarfile library prefers) reads them all.

Either program runs as a child process of the worker, which holds the job's resource
limits:

- the listing comes first, read line by line: an encrypted entry is
  EncryptedContent, more members than the policy allows or more bytes than one input
  may have is LimitExceeded (before anything is unpacked), and for 7-Zip the format it
  opened must be the one the sniffer named (a polyglot is not read as something else);
- extraction goes into a private temporary directory, with a file-size limit
  (``prlimit --fsize``), a timer after which the process group is killed (it counts
  the program's own time: waiting for a CPU moves it out, and is credited to the job's
  clock, gateway/pipeline/jobclock.py), and death with the worker (``setpriv
  --pdeathsig``); both programs refuse paths that lead outside the directory and do
  not write through links;
- only regular files are read back (``lstat``, ``O_NOFOLLOW``, never following a
  link); a link or a special file becomes an ``archive.link`` finding; empty folders
  are left out (HFS+ keeps its own private ones in every image).

Without the program the file is refused (Unsupported), never passed through.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from gateway.errors import (
    WRONG_PASSWORD,
    EncryptedContent,
    LimitExceeded,
    Malformed,
    Unsupported,
)
from gateway.pipeline import jobclock

#: sniffed type -> (7-Zip format names it may report, the -t switch; None: 7-Zip
#: detects, which for a DMG also opens the file system inside it). The type is forced
#: where it can be: an ISO made bootable for USB sticks starts with an MBR, which 7-Zip
#: would otherwise open as a partition table.
FORMATS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "archive.iso": (("iso",), "iso"),
    "archive.udf": (("udf",), "udf"),
    "archive.wim": (("wim",), "wim"),
    "archive.dmg": (("dmg",), None),
    # 7-Zip opens the partition table and the file system inside by itself; a fixed VHD
    # is the raw disk followed by its footer, so 7-Zip may take it for what it starts with
    "archive.vhd": (("vhd", "mbr", "gpt", "fat", "ntfs"), None),
    "archive.vhdx": (("vhdx",), None),
    "archive.arj": (("arj",), "arj"),
}
#: not a password anyone uses: 7-Zip must never wait for one on a terminal
_NO_PASSWORD = "-psekisho-no-password"  # noqa: S105 - a switch, not a credential
_COMMON = ("-bd", "-sccUTF-8", "-scsUTF-8", _NO_PASSWORD)
_UNAR_PASSWORD = "sekisho-no-password"  # noqa: S105 - never a right one (see above)
TICK = 0.2  # seconds between looks at a running program's clock


@dataclass(frozen=True, slots=True)
class Entry:
    """One file (or link) read out of an image or archive."""

    path: str                   # relative, "/"-separated, as extracted
    data: bytes | None          # None: a link or special file, not read
    mtime: float


def seven_zip() -> str | None:
    return shutil.which("7zz") or shutil.which("7z")


def image_entries(src: BinaryIO, type_id: str, limit: int, max_members: int,
                  timeout: float) -> Iterator[Entry]:
    """The files in the image ``src`` (a ``FORMATS`` type), read by 7-Zip."""
    allowed, switch = FORMATS[type_id]
    what = type_id.split(".", 1)[1].upper() + (" archive" if type_id == "archive.arj"
                                                else " image")
    yield from _seven_zip_entries(src, allowed, switch, what, limit, max_members, timeout,
                                  "reading disk images needs")


def sevenz_entries(src: BinaryIO, limit: int, max_members: int,
                   timeout: float) -> Iterator[Entry]:
    """The files in the 7z archive ``src``, read by 7-Zip: for the coders py7zr does not
    have (BCJ2, which 7-Zip itself applies to executables at its highest levels, so an
    archive of a program and its manual needs it for the manual too)."""
    yield from _seven_zip_entries(src, ("7z",), "7z", "7z archive", limit, max_members,
                                  timeout, "this 7z archive's compression needs")


def lzh_entries(src: BinaryIO, limit: int, max_members: int,
                timeout: float) -> Iterator[Entry]:
    """The files in the LZH archive ``src``, read by 7-Zip: headers of Amiga, X68000,
    Atari and OS-9 LHA versions and the -lh4- method, which libarchive refuses."""
    yield from _seven_zip_entries(src, ("lzh",), "lzh", "LZH archive", limit, max_members,
                                  timeout, "this LZH archive needs")


def _seven_zip_entries(src: BinaryIO, allowed: tuple[str, ...], switch: str | None,
                       what: str, limit: int, max_members: int, timeout: float,
                       purpose: str) -> Iterator[Entry]:
    program = seven_zip()
    if program is None:
        raise Unsupported(f"{purpose} 7-Zip (Debian package 7zip), which is not installed")
    deadline = time.monotonic() + timeout
    with tempfile.TemporaryDirectory(prefix="sekisho-7z-") as tmp:
        work = Path(tmp)
        image = _copy(src, work)
        forced = (f"-t{switch}",) if switch else ()
        listing = _Listing(limit, max_members)
        status = _run([program, "l", "-slt", *_COMMON, *forced, "--", str(image)], work,
                      limit, deadline, listing)
        if status != 0 or not listing.items_started:
            raise Malformed(f"the {what} cannot be read ({listing.error(status)})")
        if not listing.types or listing.types[0] not in allowed:
            raise Malformed(f"the {what} cannot be read as such (7-Zip read it as "
                            f"{listing.types[0] if listing.types else 'nothing'})")
        out = work / "x"
        extracting = _Listing(limit, max_members)  # only its error lines are used
        status = _run([program, "x", "-y", "-aos", *_COMMON, *forced, f"-o{out}", "--",
                       str(image)], work, limit, deadline, extracting)
        # 1: a warning (e.g. data after the end of the image); 2 with nothing but refused
        # links (a Mac disk image's "Applications -> /Applications"): everything else is out
        if status not in (0, 1) and (status != 2 or extracting.errors or not extracting.links):
            raise Malformed(f"the {what} is damaged ({extracting.error(status)})")
        yield from _walk(out, limit, extracting.links)


def unar() -> tuple[str, str] | None:
    """unar and lsar, when both are installed."""
    extract, listing = shutil.which("unar"), shutil.which("lsar")
    return (extract, listing) if extract and listing else None


def rar_entries(src: BinaryIO, limit: int, max_members: int, timeout: float,
                password: str | None = None, what: str = "RAR archive",
                garbled: bool = False) -> Iterator[Entry]:
    """The files in the RAR archive ``src`` (or another format unar reads, ``what``),
    read by unar; ``password`` opens an encrypted one (RAR 3 and 5, file data or
    headers) for the PPAP flow. unar takes a password only on its command line, where
    other local users may see it while it runs (README: hidepid). ``garbled``: a format
    (ARC) whose data unar "decrypts" with any password given, so none is given."""
    programs = unar()
    if programs is None:
        raise Unsupported(f"this {what} needs unar (Debian package unar), which is not "
                          "installed")
    extract, lister = programs
    deadline = time.monotonic() + timeout
    with tempfile.TemporaryDirectory(prefix="sekisho-unar-") as tmp:
        work = Path(tmp)
        archive = _copy(src, work)
        key = _UNAR_PASSWORD if password is None else password
        secret = [] if garbled and password is None else ["-p", key]
        listing = _LsarListing(limit, max_members, encrypted_ok=password is not None)
        status = _run([lister, "-j", *secret, "--", str(archive)], work, limit,
                      deadline, listing)
        if (status != 0 or listing.failed) and password is not None:
            raise EncryptedContent(WRONG_PASSWORD)  # encrypted headers did not decrypt
        if status != 0 or listing.failed:
            raise Malformed(f"{what} cannot be read (unar: {listing.error(status)})")
        if listing.count == 0:  # e.g. one part of a multi-volume archive, alone
            raise Malformed(f"{what} cannot be read (unar finds no file in it)")
        out = work / "x"
        # -nr: members as they are (a .tar.gz member stays one file); -k skip: no Mac
        # resource forks; -D: no folder of its own around the members
        status = _run([extract, "-q", "-f", "-D", "-nr", "-k", "skip", *secret,
                       "-o", str(out), "--", str(archive)], work, limit, deadline)
        if status != 0 and listing.encrypted:
            raise EncryptedContent(WRONG_PASSWORD)  # its check data did not match the password
        if status != 0:
            raise Malformed(f"{what} is damaged (unar could not unpack every file)")
        yield from _walk(out, limit)


def _copy(src: BinaryIO, work: Path) -> Path:
    path = work / "archive"
    with path.open("wb") as f:
        src.seek(0)
        shutil.copyfileobj(src, f)
    return path


class _Listing:
    """Reads ``7zz l -slt`` output line by line, so a listing of millions of entries is
    stopped at the member limit instead of being held in memory."""

    def __init__(self, limit: int, max_members: int) -> None:
        self.limit, self.max_members = limit, max_members
        self.types: list[str] = []
        self.items_started = False
        self.count = self.total = 0
        self.errors: list[str] = []
        self.links: set[str] = set()   # links 7-Zip refused to create (outside the folder)

    def feed(self, line: str) -> None:
        line = line.rstrip("\r\n")
        if line.startswith("ERROR: Dangerous link path was ignored : "):
            # "... : name : target": 7-Zip left an empty file in the link's place
            self.links.add(line.split(" : ")[1])
        elif line.startswith(("ERROR", "Open ERROR", "Is not archive", "Can not open")):
            if len(self.errors) < 5:
                self.errors.append(line)
        elif line == "----------":
            self.items_started = True
        elif not self.items_started:
            if line.startswith("Type = "):
                self.types.append(line[7:].strip().lower())
        elif line.startswith("Path = "):
            self._item()
        elif line == "Encrypted = +":
            raise EncryptedContent("archive is password-protected")
        elif line.startswith("Size = ") and line[7:].isdigit():
            self._size(int(line[7:]))

    def _item(self) -> None:
        self.count += 1
        if self.count > self.max_members:
            raise LimitExceeded(f"the archive holds too many items (more than "
                                f"{self.max_members})")

    def _size(self, size: int) -> None:
        self.total += size
        if self.total > self.limit:
            raise LimitExceeded(f"the archive expands to more than {self.limit} bytes")

    def error(self, status: int) -> str:
        """7-Zip's first error, without paths (they name our temporary files)."""
        for line in self.errors:
            # "ERROR: /tmp/…/image : Can not open…": the part after the path
            text = line.split(":", 1)[0] + ": " + line.rsplit(" : ", 1)[-1] \
                if " : " in line else line
            if "/" not in text:
                return text.strip()[:100]
        return f"7-Zip exit status {status}"


class _LsarListing(_Listing):
    """Reads ``lsar -j`` output (JSON, one key per line) the same way; an encrypted
    entry is EncryptedContent unless the caller has the password (``encrypted_ok``)."""

    failed = False

    def __init__(self, limit: int, max_members: int, *, encrypted_ok: bool = False) -> None:
        super().__init__(limit, max_members)
        self.encrypted_ok = encrypted_ok
        self.encrypted = False

    def feed(self, line: str) -> None:
        key, _, value = line.strip().rstrip(",").partition(": ")
        if key == '"XADFileName"':
            self._item()
        elif key == '"XADIsEncrypted"' and value == "1":
            self.encrypted = True
            if not self.encrypted_ok:
                raise EncryptedContent("archive is password-protected")
        elif key == '"XADFileSize"' and value.isdigit():
            self._size(int(value))
        elif key == '"lsarError"':
            self.failed = True
            self.errors.append(f"error {value}")


def _run(cmd: list[str], work: Path, limit: int, deadline: float,
         listing: _Listing | None = None) -> int:
    """Run 7-Zip or unar, feeding its output to ``listing`` (if any); its exit status."""
    program = Path(cmd[0]).name
    left = deadline - time.monotonic()
    if left <= 0:
        raise LimitExceeded(f"processing took longer than the job's time limit ({program})")
    # no file bigger than one input may be; the child dies with the worker
    wrapped = ["prlimit", f"--fsize={limit + 1}", "--", "setpriv", "--pdeathsig", "KILL",
               "--", *cmd]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work),
           "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TMPDIR": str(work)}
    proc = subprocess.Popen(wrapped, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=env, cwd=work, text=True,
                            errors="replace", start_new_session=True)
    expired, done = threading.Event(), threading.Event()

    def watch() -> None:
        # the time limit counts the program's own time: what it spends waiting for a
        # CPU (a busy machine, the workers' lower priority) moves the end out, and is
        # credited to the job's clock too (the job waits for the program meanwhile)
        clock = jobclock.Clock.of(proc.pid, time.monotonic_ns())
        end = time.monotonic() + left
        while not done.wait(TICK):
            _, waiting = clock.look(time.monotonic_ns())
            end += waiting / 1e9
            jobclock.credit(waiting / 1e9)
            if time.monotonic() >= end:
                expired.set()
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                return

    watcher = threading.Thread(target=watch, name=f"{program}-timer", daemon=True)
    watcher.start()
    try:
        assert proc.stdout is not None
        with proc.stdout:
            for line in proc.stdout:
                if listing is not None:
                    listing.feed(line)
        status = proc.wait()
    finally:
        done.set()
        watcher.join()
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    if expired.is_set():
        raise LimitExceeded(f"processing took longer than {left:.0f} s ({program})")
    return status


def _walk(root: Path, limit: int, links: set[str] | frozenset[str] = frozenset()
          ) -> Iterator[Entry]:
    if not root.is_dir():
        return
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        here = Path(dirpath)
        for name in sorted(filenames) + [d for d in dirnames if (here / d).is_symlink()]:
            path = here / name
            rel = path.relative_to(root).as_posix()
            st = path.lstat()
            if not stat.S_ISREG(st.st_mode) or rel in links:
                yield Entry(rel, None, st.st_mtime)
                continue
            if st.st_size > limit:
                raise LimitExceeded(f"member {rel[:60]!r} is larger than {limit} bytes")
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(fd, "rb") as f:
                yield Entry(rel, f.read(limit + 1), st.st_mtime)
