"""The cache directory (XDG, overridable with RUSTKM_CACHE), cache keys, file locks, and the
two ways an entry appears in it whole: `publish_once` (built once) and `write_atomic`."""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import pwd
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from rustkm.errors import RustkmError
from rustkm.log import say


def sudo_user() -> pwd.struct_passwd | None:
    """The user who ran `sudo rustkm ...`, when this process is root because of sudo."""
    name = os.environ.get("SUDO_USER")
    if os.geteuid() != 0 or not name or name == "root":
        return None
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


def cache_root() -> Path:
    """The cache: $RUSTKM_CACHE, else $XDG_CACHE_HOME/rustkm, else ~/.cache/rustkm. Under sudo
    it is the invoking user's (~user/.cache/rustkm), and what this process adds to it is
    handed to that user when it exits, so their next rustkm command, without sudo, can use it.
    """
    explicit = os.environ.get("RUSTKM_CACHE")
    user = sudo_user()
    if explicit:
        root = Path(explicit)
    elif user is not None:
        root = Path(user.pw_dir) / ".cache" / "rustkm"
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = Path(base) / "rustkm"
    try:
        root.mkdir(parents=True, exist_ok=True)
        writable = os.access(root, os.W_OK | os.X_OK) and (
            not (root / "store").exists() or os.access(root / "store", os.W_OK | os.X_OK))
    except PermissionError:
        writable = False
    if not writable:
        raise RustkmError(f"the cache {root} is not writable by this user",
                          hint="it was made by another user (with sudo?): give it back with "
                               f"`sudo chown -R $USER {root}`, or set RUSTKM_CACHE to a folder "
                               "of your own")
    if user is not None and root not in _handed_over:
        _handed_over.add(root)
        atexit.register(hand_over, root, user.pw_uid, user.pw_gid)
    return root.resolve()


_handed_over: set[Path] = set()


def hand_over(root: Path, uid: int, gid: int) -> None:
    """Give what root made in the cache to the user who ran sudo; toolchain root filesystems
    stay root's (the user only reads them)."""
    for folder, dirs, files in os.walk(root):
        if Path(folder).parent == root / "toolchain":
            dirs[:] = [d for d in dirs if d != "root"]
        for name in (*dirs, *files):
            path = os.path.join(folder, name)
            try:
                if os.lstat(path).st_uid == 0:
                    os.lchown(path, uid, gid)
            except OSError:
                continue
    try:
        os.lchown(root, uid, gid)
    except OSError:
        pass


def cache_key(*parts: object) -> str:
    """A short stable hash of JSON-serialisable parts, used to name cache entries."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


@contextmanager
def locked(path: Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock on `path`.lock; say so if another rustkm process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path) + ".lock")
    try:
        lock.acquire(timeout=0.2)
    except Timeout:
        say(f"waiting for another rustkm process that holds the lock on {what}")
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def write_atomic(path: Path, data: bytes | str, mode: int = 0o644) -> None:
    """Replace `path` with `data` in one step: a reader sees the old content or the new one,
    never an empty or half-written file (a temporary file of this process beside it, synced,
    then renamed over it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            os.fchmod(f.fileno(), mode)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def publish_once(dest: Path, what: str, build: Callable[[Path], None],
                 ready: Callable[[Path], bool] = Path.exists) -> Path:
    """`dest` (a file or a folder), made by `build` once, however many processes ask at once.

    When `ready(dest)` holds, `dest` is returned at once. Otherwise, under the lock on `dest`
    (and after checking again), `build(private)` makes the entry at `private`, a path inside
    a folder of this process's own beside `dest`, and `private` is then renamed to `dest`:
    nobody sees a half-made entry, and builders never share a scratch place. A `dest` that
    exists but is not ready (out of date, or left by an older rustkm) is removed first.

    Only a builder holding the lock has a private folder, so any folder named like one that
    is there while we hold the lock was left by a killed builder, and is removed.
    """
    if ready(dest):
        return dest
    with locked(dest, what):
        if ready(dest):
            return dest
        prefix = f"{dest.name}.partial"  # also matches the single .partial of older rustkm
        for leftover in dest.parent.iterdir():
            if leftover.name.startswith(prefix):
                say(f"removing {leftover}, left unfinished by a killed rustkm process")
                _remove(leftover)
        if dest.exists() or dest.is_symlink():
            _remove(dest)
        private = Path(tempfile.mkdtemp(dir=dest.parent, prefix=prefix + "-"))
        try:
            build(private / dest.name)
            if not (private / dest.name).exists():
                raise RustkmError(f"{what} made nothing at {private / dest.name}")
            os.replace(private / dest.name, dest)
        finally:
            _remove(private)
    return dest


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        # A root filesystem whose builder was killed may still have /proc, /sys or /dev
        # mounted inside: removing through those would remove the host's own files.
        mounted = _mounts_under(path)
        if mounted:
            raise RustkmError(f"{path} has file systems mounted inside: not removing it",
                              details="\n".join(mounted),
                              hint="unmount them (umount -R on each), then run again")
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _mounts_under(folder: Path) -> list[str]:
    inside = str(folder.resolve()) + "/"
    try:
        table = Path("/proc/self/mountinfo").read_text()
    except OSError:
        return []
    points = [line.split()[4].replace("\\040", " ") for line in table.splitlines()]
    return [p for p in points if p.startswith(inside)]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
