"""`rustkm cache`: what the cache holds (size, last use) and `rustkm cache clean`, which
removes what can be made again and nothing in use: a snapshot a VM is restoring from, a
kernel someone is building (its lock is held), the toolchain, the pinned kernel source."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from rustkm import snapshot
from rustkm.cache import cache_root
from rustkm.toolchain import store_dir


@dataclass(frozen=True)
class Entry:
    kind: str
    path: Path
    size: int
    last_use: float
    # Whether `cache clean` may remove it: it is made again on demand at little cost.
    regenerable: bool


def _usage(path: Path) -> tuple[int, float]:
    """Bytes on disk and the newest modification time under `path`."""
    if path.is_file() or path.is_symlink():
        st = path.lstat()
        return st.st_blocks * 512, st.st_mtime
    size, newest = 0, 0.0
    for folder, _, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(folder, name))
            except FileNotFoundError:
                continue
            size += st.st_blocks * 512
            newest = max(newest, st.st_mtime)
    return size, newest or path.stat().st_mtime


def entries() -> Iterator[Entry]:
    store = store_dir()
    kinds: list[tuple[str, list[Path], bool]] = [
        ("toolchain", sorted((cache_root() / "toolchain").glob("*")), False),
        ("kernel source", sorted((store / "src").glob("linux-*[!k]")), False),
        ("downloaded package", sorted((store / "debs").glob("*.deb")), True),
        ("kernel build", sorted(p for p in (store / "kernels").glob("*") if p.is_dir()), False),
        ("initramfs image", sorted((store / "initramfs").glob("*.cpio")), True),
        ("guest program", sorted(p for p in (store / "guest-tools").glob("*-*")
                                 if p.suffix not in (".c", ".lock")), True),
        ("compiler cache", [store / "ccache"], False),
        # Stock kernels' packages and prepared headers: a pinned upload may have left Debian's
        # archive, so only `rustkm lock --update` makes one again.
        ("stock kernel", sorted(p for p in (store / "stock").glob("*") if p.is_dir()), False),
        # A test may load a module built minutes ago: listed, left to `rm` by hand.
        ("module build", sorted(p for p in (store / "modules").glob("*/*") if p.is_dir()),
         False),
        ("crash dump", sorted(p for p in (store / "crashes").glob("*")
                              if p.is_dir() and ".partial" not in p.name), False),
    ]
    for kind, paths, regenerable in kinds:
        for path in paths:
            if path.exists():
                yield Entry(kind, path, *_usage(path), regenerable)
    for snap in snapshot.entries():
        yield Entry("snapshot", snap.folder, *_usage(snap.folder)[:1], snapshot.last_used(snap),
                    True)
    for folder in snapshot.leftovers():
        yield Entry("unfinished snapshot", folder, *_usage(folder), True)


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def last_use_age(when: float) -> str:
    seconds = max(0.0, time.time() - when)
    for unit, length in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= length:
            return f"{seconds / length:.0f} {unit} ago"
    return "just now"


def remove_entry(entry: Entry) -> bool:
    """Remove one entry unless something uses it right now."""
    if entry.kind == "snapshot":
        return snapshot.discard(snapshot.Snapshot(entry.path.name, entry.path))
    if entry.kind == "unfinished snapshot":
        return snapshot.remove_leftover(entry.path)
    lock = FileLock(str(entry.path) + ".lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return False
    try:
        if entry.path.is_dir():
            shutil.rmtree(entry.path)
        else:
            entry.path.unlink(missing_ok=True)
        return True
    finally:
        lock.release()
