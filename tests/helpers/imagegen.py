"""Disk images and ARJ archives built from harmless files with the tools that make
them for real: genisoimage (ISO 9660 with Rock Ridge and Joliet, optionally a UDF
bridge), 7-Zip (WIM), arj, and sfdisk + mkfs.vfat + mtools + qemu-img (VHD/VHDX)."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

SECTOR = 2048


def _tree(root: Path, members: dict[str, bytes], links: dict[str, str]) -> None:
    for name, data in members.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    for name, target in links.items():
        (root / name).symlink_to(target)


def iso(members: dict[str, bytes], links: dict[str, str] | None = None, *,
        udf: bool = False) -> bytes:
    """An ISO 9660 image (Rock Ridge, Joliet; with ``udf`` also a UDF file system)."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        _tree(src, members, links or {})
        out = Path(tmp) / "out.iso"
        subprocess.run(["genisoimage", "-quiet", "-R", "-J", *(["-udf"] if udf else []),
                        "-V", "SEKISHO_TEST", "-o", str(out), str(src)], check=True)
        return out.read_bytes()


def udf_only(members: dict[str, bytes]) -> bytes:
    """A UDF image without an ISO 9660 tree: a UDF bridge image whose ISO 9660 volume
    descriptors (sectors 16-18) are replaced by its UDF recognition sequence (19-21)."""
    data = bytearray(iso(members, udf=True))
    vrs = [bytes(data[s * SECTOR:(s + 1) * SECTOR]) for s in (19, 20, 21)]
    assert [v[1:6] for v in vrs] == [b"BEA01", b"NSR02", b"TEA01"]
    for i, sector in enumerate((16, 17, 18)):
        data[sector * SECTOR:(sector + 1) * SECTOR] = vrs[i]
    for sector in (19, 20, 21):
        data[sector * SECTOR:(sector + 1) * SECTOR] = bytes(SECTOR)
    return bytes(data)


def wim(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    """A Windows imaging (WIM) file, as 7-Zip writes it (``links``: symbolic links,
    stored as links)."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        _tree(src, members, links or {})
        out = Path(tmp) / "out.wim"
        subprocess.run(["7zz", "a", "-bd", "-bso0", "-snl", "-twim", str(out), "."], cwd=src,
                       check=True)
        return out.read_bytes()


def arj(members: dict[str, bytes], password: str | None = None) -> bytes:
    """An ARJ archive (``password``: garbled, ARJ's own encryption)."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        _tree(src, members, {})
        out = Path(tmp) / "out.arj"
        cmd = ["arj", "a", "-r", "-y", *([f"-g{password}"] if password else []), str(out),
               *sorted(members)]
        subprocess.run(cmd, cwd=src, check=True, stdout=subprocess.DEVNULL)
        return out.read_bytes()


def vhd(members: dict[str, bytes], fmt: str = "vpc", *, fixed: bool = False) -> bytes:
    """A virtual disk as Windows' Disk Management makes one: an MBR partition table with
    one FAT partition holding ``members`` (flat names), as VHD (``vpc``, dynamic or
    ``fixed``) or VHDX."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        disk = work / "disk.img"
        disk.write_bytes(bytes(8 * 1024 * 1024))
        subprocess.run(["sfdisk", "-q", str(disk)], input=b"start=2048, type=06\n",
                       check=True)
        subprocess.run(["mkfs.vfat", "--offset=2048", "-n", "DATA", str(disk), "6000"],
                       check=True, capture_output=True)
        for name, data in members.items():
            (work / name).write_bytes(data)
            subprocess.run(["mcopy", "-i", f"{disk}@@1M", str(work / name), "::/"],
                           check=True)
        out = work / "out.vhd"
        options = ["-o", "subformat=fixed"] if fixed else []
        subprocess.run(["qemu-img", "convert", "-O", fmt, *options, str(disk), str(out)],
                       check=True)
        return out.read_bytes()
