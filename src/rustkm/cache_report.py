"""`rustkm cache`: what the cache holds (size, last use) and `rustkm cache clean`, which
removes what can be made again and nothing in use: a snapshot a VM is restoring from, a
kernel someone is building (its lock is held), the toolchain, the pinned kernel source."""

from __future__ import annotations

import argparse
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from rustkm import snapshot
from rustkm.cache import cache_root
from rustkm.errors import RustkmError
from rustkm.log import say
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
    ]
    for kind, paths, regenerable in kinds:
        for path in paths:
            if path.exists():
                yield Entry(kind, path, *_usage(path), regenerable)
    for snap in snapshot.entries():
        yield Entry("snapshot", snap.folder, *_usage(snap.folder)[:1], snapshot.last_used(snap),
                    True)


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def _age(when: float) -> str:
    seconds = max(0.0, time.time() - when)
    for unit, length in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= length:
            return f"{seconds / length:.0f} {unit} ago"
    return "just now"


def cmd_list(args: argparse.Namespace) -> int:
    total = 0
    print(f"{'kind':20} {'size':>10} {'last use':>12}  path")
    for entry in entries():
        total += entry.size
        print(f"{entry.kind:20} {_human(entry.size):>10} {_age(entry.last_use):>12}  "
              f"{entry.path}")
    print(f"{'total':20} {_human(total):>10}")
    return 0


def _remove(entry: Entry) -> bool:
    """Remove one entry unless something uses it right now."""
    if entry.kind == "snapshot":
        return snapshot.discard(snapshot.Snapshot(entry.path.name, entry.path))
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


def cmd_clean(args: argparse.Namespace) -> int:
    if args.older_than is not None and args.older_than < 0:
        raise RustkmError("--older-than takes a number of days, 0 or more")
    cutoff = time.time() - (args.older_than or 0) * 86400
    freed = 0
    for entry in entries():
        if not entry.regenerable or entry.last_use > cutoff:
            continue
        if args.dry_run:
            say(f"would remove {entry.kind} {entry.path} ({_human(entry.size)})")
            freed += entry.size
        elif _remove(entry):
            say(f"removed {entry.kind} {entry.path} ({_human(entry.size)})")
            freed += entry.size
        else:
            say(f"kept {entry.kind} {entry.path}: in use right now")
    say(f"{'would free' if args.dry_run else 'freed'} {_human(freed)}")
    return 0


def register(verbs: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = verbs.add_parser("cache", help="what the cache holds; `cache clean` frees space")
    p.set_defaults(func=cmd_list)
    actions = p.add_subparsers(metavar="ACTION")
    clean = actions.add_parser("clean", help="remove what can be made again and is not in use "
                                             "(snapshots, initramfs images, guest programs, "
                                             "downloaded packages)")
    clean.add_argument("--older-than", type=float, metavar="DAYS",
                       help="only what was last used more than DAYS days ago")
    clean.add_argument("--dry-run", action="store_true", help="say what would go")
    clean.set_defaults(func=cmd_clean)
