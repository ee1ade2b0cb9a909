"""Booted guests saved once and restored for every VM that would boot the same way.

A snapshot is QEMU's migration stream of a guest whose agent has just said it is ready, keyed
by everything that shapes that guest (kernel image, base initramfs, QEMU version, accelerator,
memory, CPUs, devices, command line); modules and files reach a restored guest afterwards,
through the agent, so one snapshot serves every test of a kernel. Each entry is published
whole (written under a private name, checked, renamed), verified by size and SHA-256 before
use, held under a shared lock while QEMU reads it, and bounded in total size.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from rustkm.cache import cache_key, sha256_file
from rustkm.errors import RustkmError
from rustkm.log import say
from rustkm.qmp import QmpClient
from rustkm.toolchain import store_dir

_STATE = "state"
_META = "meta.json"
_USED = "used"
_DEFAULT_LIMIT_MB = 1024
# Snapshots this process checked in full: (size, mtime) then, so later restores skip the hash.
_verified: dict[Path, tuple[int, int]] = {}


@dataclass(frozen=True)
class Snapshot:
    key: str
    folder: Path

    @property
    def state(self) -> Path:
        return self.folder / _STATE

    @property
    def size(self) -> int:
        return self.state.stat().st_size


def snapshots_enabled() -> bool:
    """On unless RUSTKM_SNAPSHOTS=0 (cold boots only, to compare or to rule snapshots out)."""
    value = os.environ.get("RUSTKM_SNAPSHOTS", "1")
    if value not in ("0", "1"):
        raise RustkmError(f"RUSTKM_SNAPSHOTS={value!r} is not 0 or 1")
    return value == "1"


# How a snapshot is made, as part of its key: v2 saves the guest only once its clock has
# settled on its final clocksource (Machine._settle_clock).
RECIPE = "snapshot-v2"


def snapshot_key(**parts: object) -> str:
    return cache_key(RECIPE, parts)


def _root() -> Path:
    folder = store_dir() / "snapshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def find(key: str) -> Snapshot | None:
    """The published snapshot for `key`, if it is whole; a damaged one is removed."""
    folder = _root() / key
    if not (folder / _META).exists():
        return None
    snapshot = Snapshot(key, folder)
    problem = _check(snapshot)
    if problem:
        say(f"snapshot {key}: {problem}; it is removed and made again")
        discard(snapshot)
        return None
    return snapshot


def _check(snapshot: Snapshot) -> str | None:
    try:
        meta = json.loads((snapshot.folder / _META).read_text())
        size = snapshot.size
    except (OSError, ValueError) as e:
        return f"unreadable ({e})"
    if size != meta.get("size"):
        return f"truncated ({size} bytes, {meta.get('size')} written)"
    stamp = (size, snapshot.state.stat().st_mtime_ns)
    if _verified.get(snapshot.state) == stamp:
        return None
    if sha256_file(snapshot.state) != meta.get("sha256"):
        return "damaged (its SHA-256 changed)"
    _verified[snapshot.state] = stamp
    return None


@contextmanager
def reading(snapshot: Snapshot) -> Iterator[None]:
    """Hold the snapshot against removal (`rustkm cache clean`, pruning) while QEMU reads it.
    One removed since `find` (by another process, between the two) raises RustkmError."""
    try:
        meta = (snapshot.folder / _META).open("rb")
    except FileNotFoundError:
        raise RustkmError(f"snapshot {snapshot.key} was removed (by another rustkm) before "
                          "it could be opened") from None
    with meta:
        fcntl.flock(meta, fcntl.LOCK_SH)
        try:  # a remover that held the lock first has moved the folder away by now
            there = (snapshot.folder / _META).stat().st_ino == os.fstat(meta.fileno()).st_ino
            (snapshot.folder / _USED).touch()
        except FileNotFoundError:
            there = False
        if not there:
            raise RustkmError(f"snapshot {snapshot.key} was removed (by another rustkm) "
                              "while it was being opened")
        yield


def discard(snapshot: Snapshot) -> bool:
    """Remove a snapshot unless a reader holds it; returns whether it went."""
    try:
        meta = (snapshot.folder / _META).open("rb")
    except FileNotFoundError:
        shutil.rmtree(snapshot.folder, ignore_errors=True)
        return True
    with meta:
        try:
            fcntl.flock(meta, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        doomed = snapshot.folder.with_name(f"{snapshot.key}.doomed-{os.getpid()}")
        try:
            snapshot.folder.rename(doomed)
        except OSError:
            return False
    shutil.rmtree(doomed, ignore_errors=True)
    return True


def save(qmp: QmpClient, key: str) -> Snapshot | None:
    """Save the (running) guest as the snapshot for `key`, then leave it paused for the caller
    to continue. Returns None when another process is saving the same one right now."""
    root = _root()
    lock = FileLock(str(root / f"{key}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return None
    try:
        if (root / key / _META).exists():
            return None
        partial = Path(tempfile.mkdtemp(prefix=f"{key}.partial-", dir=root))
        try:
            qmp.execute("stop")
            qmp.execute("migrate", uri=f"file:{partial / _STATE}")
            _wait_for_migration(qmp, "the snapshot to be written")
            size = (partial / _STATE).stat().st_size
            meta = {"size": size, "sha256": sha256_file(partial / _STATE),
                    "created": time.time()}
            (partial / _META).write_text(json.dumps(meta))
            partial.rename(root / key)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        prune(limit_bytes())
        return Snapshot(key, root / key)
    finally:
        lock.release()


def restore(qmp: QmpClient, snapshot: Snapshot) -> None:
    """Load `snapshot` into a QEMU started with `-incoming defer`, and run it."""
    with reading(snapshot):
        qmp.execute("migrate-incoming", uri=f"file:{snapshot.state}")
        _wait_for_migration(qmp, "the snapshot to load")
    qmp.execute("cont")


def _wait_for_migration(qmp: QmpClient, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        info = qmp.execute("query-migrate") or {}
        status = info.get("status", "")
        if status == "completed":
            return
        if status in ("failed", "cancelled"):
            raise RustkmError(f"QEMU failed waiting for {what}: "
                              f"{info.get('error-desc', status)}")
        if time.monotonic() > deadline:
            raise RustkmError(f"QEMU took over {timeout:.0f} s waiting for {what}")
        time.sleep(0.005)


def limit_bytes() -> int:
    value = os.environ.get("RUSTKM_SNAPSHOT_LIMIT_MB", str(_DEFAULT_LIMIT_MB))
    if not value.isdigit():
        raise RustkmError(f"RUSTKM_SNAPSHOT_LIMIT_MB={value!r} is not a number of MiB")
    return int(value) << 20


def entries() -> list[Snapshot]:
    root = _root()
    # Published folders only: a removal cut short leaves KEY.doomed-PID with its meta inside.
    return [Snapshot(f.name, f) for f in root.iterdir()
            if "." not in f.name and (f / _META).exists()]


def leftovers() -> list[Path]:
    """Folders a save or a removal left when its process died: `KEY.partial-*` (a save cut
    short) and `KEY.doomed-*` (a removal cut short)."""
    return sorted(f for f in _root().iterdir()
                  if f.is_dir() and (".partial-" in f.name or ".doomed-" in f.name))


def remove_leftover(folder: Path) -> bool:
    """Remove an unfinished save's or removal's folder unless a save of that key runs now."""
    key = folder.name.split(".", 1)[0]
    lock = FileLock(str(folder.parent / f"{key}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return False
    try:
        shutil.rmtree(folder, ignore_errors=True)
        return not folder.exists()
    finally:
        lock.release()


def last_used(snapshot: Snapshot) -> float:
    for name in (_USED, _META):
        try:
            return (snapshot.folder / name).stat().st_mtime
        except FileNotFoundError:
            continue
    return 0.0


def prune(limit: int) -> list[Snapshot]:
    """Remove the least recently used snapshots until the rest fit in `limit` bytes."""
    removed = []
    ordered = sorted(entries(), key=last_used)
    total = sum(_size(s) for s in ordered)
    for snapshot in ordered:
        if total <= limit:
            break
        size = _size(snapshot)
        if discard(snapshot):
            total -= size
            removed.append(snapshot)
    return removed


def _size(snapshot: Snapshot) -> int:
    try:
        return snapshot.size
    except FileNotFoundError:
        return 0
