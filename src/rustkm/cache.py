"""The cache directory (XDG, overridable with RUSTKM_CACHE), cache keys and file locks."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from rustkm.log import say


def cache_root() -> Path:
    explicit = os.environ.get("RUSTKM_CACHE")
    if explicit:
        root = Path(explicit)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = Path(base) / "rustkm"
    root.mkdir(parents=True, exist_ok=True)
    return root.resolve()


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


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
