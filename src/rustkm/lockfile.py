"""rustkm.lock: the exact Debian package versions (and SHA256) a project resolved once."""

from __future__ import annotations

import copy
import re
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import tomli_w

from rustkm.cache import cache_key, cache_root, locked, write_atomic
from rustkm.errors import RustkmError

LOCK_NAME = "rustkm.lock"
_REPAIR = ("fix that entry (`git diff` shows what changed), or delete the file and run "
           "`rustkm lock --update` to resolve every version afresh")


@dataclass(frozen=True)
class LockedPackage:
    package: str
    version: str
    sha256: str
    suite: str


_PACKAGE_FIELDS = tuple(f.name for f in fields(LockedPackage))


@dataclass
class Lock:
    packages: dict[str, LockedPackage]
    toolchain: dict[str, str]

    @classmethod
    def read(cls, path: Path) -> Lock:
        """The lock at `path` (no pins when there is no file). It is only ever replaced whole
        (see `write`), so a reader never sees half of one; a malformed one is an error."""
        try:
            text = path.read_text()
        except FileNotFoundError:
            return cls({}, {})
        return _parse(path, text)

    def write(self, path: Path) -> None:
        data = {
            "toolchain": dict(sorted(self.toolchain.items())),
            "package": {name: asdict(p) for name, p in sorted(self.packages.items())},
        }
        header = "# Written by rustkm: the exact versions this project builds with.\n" \
                 "# `rustkm lock --update` resolves them again.\n"
        write_atomic(path, header + tomli_w.dumps(data))


@contextmanager
def editing(path: Path | None, lock: Lock | None = None) -> Iterator[Lock]:
    """The lock at `path` for a read-modify-write, held exclusively from the read to the
    write so that two processes pinning at once never lose each other's pins. It is written
    back when the block ends normally and changed it. `lock`, a copy the caller read before,
    is brought up to date with it. Without a path: `lock` itself, kept in memory only."""
    if path is None:
        yield lock if lock is not None else Lock({}, {})
        return
    guard = cache_root() / "locks" / f"rustkm.lock-{cache_key(str(path.resolve()))}"
    with locked(guard, str(path)):
        current = Lock.read(path)
        before = copy.deepcopy(current)
        yield current
        if current != before:
            current.write(path)
    if lock is not None:
        lock.packages, lock.toolchain = current.packages, current.toolchain


def _parse(path: Path, text: str) -> Lock:
    if not text.strip():
        raise RustkmError(f"{path} is empty", hint=_REPAIR)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise RustkmError(f"{path} is not valid TOML: {e}", hint=_REPAIR) from None
    for key in data:
        if key not in ("toolchain", "package"):
            raise RustkmError(f"{path}: unknown entry {_name(key)} (rustkm.lock has "
                              "[toolchain] and [package.NAME] tables)", hint=_REPAIR)
    toolchain = _table(path, data.get("toolchain", {}), "toolchain")
    for key, value in toolchain.items():
        _string(path, value, "toolchain", key)
    packages = {}
    for name, entry in _table(path, data.get("package", {}), "package").items():
        entry = _table(path, entry, "package", name)
        for field in _PACKAGE_FIELDS:
            if field not in entry:
                raise RustkmError(f"{path}: {_name('package', name)} has no {field}",
                                  hint=_REPAIR)
            _string(path, entry[field], "package", name, field)
        for field in entry:
            if field not in _PACKAGE_FIELDS:
                raise RustkmError(f"{path}: {_name('package', name, field)} is not a field "
                                  f"of a package ({', '.join(_PACKAGE_FIELDS)})", hint=_REPAIR)
        if not re.fullmatch(r"[0-9a-f]{64}", entry["sha256"]):
            raise RustkmError(f"{path}: {_name('package', name, 'sha256')} is not a SHA256 "
                              "(64 hexadecimal digits)", hint=_REPAIR)
        packages[name] = LockedPackage(**entry)
    return Lock(packages, dict(toolchain))


def _table(path: Path, value: object, *where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RustkmError(f"{path}: {_name(*where)} must be a table, not {_kind(value)}",
                          hint=_REPAIR)
    return value


def _string(path: Path, value: object, *where: str) -> None:
    if not isinstance(value, str):
        raise RustkmError(f"{path}: {_name(*where)} must be a string, not {_kind(value)}",
                          hint=_REPAIR)


def _name(*parts: str) -> str:
    """A dotted TOML key, quoting the parts that are not bare keys: package."stock/x".sha256."""
    return ".".join(p if re.fullmatch(r"[A-Za-z0-9_-]+", p) else f'"{p}"' for p in parts)


def _kind(value: object) -> str:
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string",
            list: "an array", dict: "a table"}.get(type(value), type(value).__name__)
