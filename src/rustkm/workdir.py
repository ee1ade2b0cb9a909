"""A VM's temporary folder (sockets, console log), and the removal of those whose owner died.

Each folder names its owner process (pid and start time, so a reused pid does not count; the
record is written whole, by a rename) and, once started, its QEMU. A folder is stale when
neither is alive any more: a process killed with SIGKILL cannot clean up after itself, so the
next VM started on the machine does it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

PREFIX = "rustkm-"
_OWNER = "owner"
_QEMU = "qemu.pid"
# A folder holding only a partial owner record is being made; one still so after this long was
# left by a process killed between making it and naming itself.
_MAKING = 600.0


def process_identity(pid: int) -> str | None:
    """`pid:starttime`, or None when no such process exists."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()
    return f"{pid}:{fields[19]}" if len(fields) > 19 else None


def _alive(record: Path, missing: bool = False) -> bool:
    """Whether the process a record names still runs; `missing`: the answer when the record
    is gone."""
    try:
        identity = record.read_text().strip()
    except FileNotFoundError:
        return missing
    except OSError:
        return True  # unreadable: not ours to judge
    pid, _, _ = identity.partition(":")
    return pid.isdigit() and process_identity(int(pid)) == identity


def _age(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0.0


def _only_partial_owner(folder: Path) -> bool:
    """Whether `folder` holds only an owner record not yet renamed into place: what a process
    killed while making its VM folder leaves."""
    try:
        return [p.name for p in folder.iterdir()] == [f".{_OWNER}"]
    except OSError:
        return False


def remove_stale(base: Path) -> list[Path]:
    """Remove the VM folders under `base` whose owner and QEMU are both gone, and those a
    process killed while making them left (only a partial owner record, older than 10 min).
    A folder without an owner record is otherwise never touched."""
    removed = []
    for folder in base.glob(f"{PREFIX}*"):
        owner = folder / _OWNER
        try:
            if not folder.is_dir() or folder.is_symlink() or folder.stat().st_uid != os.getuid():
                continue
        except OSError:
            continue
        if not owner.exists():
            if _age(folder) < _MAKING or not _only_partial_owner(folder):
                continue  # being made right now, or not a VM folder (rustkm matrix's results)
        elif _alive(owner, missing=True) or _alive(folder / _QEMU):
            # Still in use; or the owner record went between the two looks: its owner is
            # removing the folder this moment (sweeping too would race its rmtree).
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def make_workdir(name: str, base: Path | None = None) -> Path:
    """A fresh folder for one VM, after sweeping the stale ones."""
    base = base or Path("/tmp")  # the toolchain's sandbox shares the host's /tmp, not $TMPDIR
    remove_stale(base)
    folder = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{name}-", dir=base))
    identity = process_identity(os.getpid())
    # Whole or absent: another process's sweep must never read it half-written (empty, so
    # "no owner alive") and remove the folder of a VM being started. A rename under a fixed
    # name, not cache.write_atomic: its fsync would cost every VM start a disk sync (/tmp is
    # on disk here) for a record that need not outlive its process.
    partial = folder / f".{_OWNER}"
    partial.write_text(f"{identity}\n")
    partial.replace(folder / _OWNER)
    return folder


def record_qemu(folder: Path, pid: int) -> None:
    identity = process_identity(pid)
    if identity:
        (folder / _QEMU).write_text(f"{identity}\n")
