"""rustkm.lock: the exact Debian package versions (and SHA256) a project resolved once.

Layout: [toolchain] (tool versions), [package.NAME] (the default kernel's source), and one
[lanes.LANE] section per lane that pins its own choices (a stock lane: release, suite,
toolchain-suite) and packages ([lanes.LANE.package.NAME]), so that two lanes used in one run
never overwrite each other's pins. A lock in the older layout (the one stock lane's pins as
toolchain.stock-* and package."stock/NAME") is read as the debian:latest lane's, and written
back in this layout at the next edit.
"""

from __future__ import annotations

import copy
import re
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
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
class LanePins:
    """One lane's section: its own choices (e.g. release = "7.3-amd64") and packages."""

    pins: dict[str, str] = field(default_factory=dict)
    packages: dict[str, LockedPackage] = field(default_factory=dict)


# The older layout's keys of the one stock lane, and where they go (lane debian:latest).
LEGACY_LANE = "debian:latest"
_LEGACY_PINS = {"stock-release": "release", "stock-suite": "suite",
                "stock-toolchain-suite": "toolchain-suite"}
_LEGACY_PACKAGE = "stock/"


@dataclass
class Lock:
    packages: dict[str, LockedPackage]
    toolchain: dict[str, str]
    lanes: dict[str, LanePins] = field(default_factory=dict)
    # Read from the older layout: written back in this one at the next edit.
    legacy: bool = field(default=False, compare=False, repr=False)

    def lane(self, name: str) -> LanePins:
        """The section of lane `name`, made empty when it has none (an empty one is not
        written)."""
        return self.lanes.setdefault(name, LanePins())

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
        data: dict[str, Any] = {
            "toolchain": dict(sorted(self.toolchain.items())),
            "package": {name: asdict(p) for name, p in sorted(self.packages.items())},
        }
        lanes = {name: {**dict(sorted(lane.pins.items())),
                        "package": {n: asdict(p) for n, p in sorted(lane.packages.items())}}
                 for name, lane in sorted(self.lanes.items()) if lane.pins or lane.packages}
        if lanes:
            data["lanes"] = lanes
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
        if current != before or current.legacy:
            current.write(path)
            current.legacy = False
    if lock is not None:
        lock.packages, lock.toolchain = current.packages, current.toolchain
        lock.lanes, lock.legacy = current.lanes, current.legacy


def _parse(path: Path, text: str) -> Lock:
    if not text.strip():
        raise RustkmError(f"{path} is empty", hint=_REPAIR)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise RustkmError(f"{path} is not valid TOML: {e}", hint=_REPAIR) from None
    for key in data:
        if key not in ("toolchain", "package", "lanes"):
            raise RustkmError(f"{path}: unknown entry {_name(key)} (rustkm.lock has "
                              "[toolchain], [package.NAME] and [lanes.LANE] tables)",
                              hint=_REPAIR)
    toolchain = _table(path, data.get("toolchain", {}), "toolchain")
    for key, value in toolchain.items():
        _string(path, value, "toolchain", key)
    packages = _packages(path, data.get("package", {}), "package")
    lanes = {}
    for name, entry in _table(path, data.get("lanes", {}), "lanes").items():
        entry = dict(_table(path, entry, "lanes", name))
        lane_packages = _packages(path, entry.pop("package", {}), "lanes", name, "package")
        for key, value in entry.items():
            _string(path, value, "lanes", name, key)
        lanes[name] = LanePins(entry, lane_packages)
    return _migrate(Lock(packages, dict(toolchain), lanes))


def _packages(path: Path, value: object, *where: str) -> dict[str, LockedPackage]:
    packages = {}
    for name, entry in _table(path, value, *where).items():
        entry = _table(path, entry, *where, name)
        for key in _PACKAGE_FIELDS:
            if key not in entry:
                raise RustkmError(f"{path}: {_name(*where, name)} has no {key}", hint=_REPAIR)
            _string(path, entry[key], *where, name, key)
        for key in entry:
            if key not in _PACKAGE_FIELDS:
                raise RustkmError(f"{path}: {_name(*where, name, key)} is not a field "
                                  f"of a package ({', '.join(_PACKAGE_FIELDS)})", hint=_REPAIR)
        if not re.fullmatch(r"[0-9a-f]{64}", entry["sha256"]):
            raise RustkmError(f"{path}: {_name(*where, name, 'sha256')} is not a SHA256 "
                              "(64 hexadecimal digits)", hint=_REPAIR)
        packages[name] = LockedPackage(**entry)
    return packages


def _migrate(lock: Lock) -> Lock:
    """The older layout's stock pins moved into lane debian:latest's section (the lane that
    reused them: `debian:latest` kept whatever release was pinned). Pins the section already
    has win; the lock is marked to be written back in the new layout."""
    old_pins = {new: lock.toolchain.pop(old) for old, new in _LEGACY_PINS.items()
                if old in lock.toolchain}
    old_packages = {name.removeprefix(_LEGACY_PACKAGE): lock.packages.pop(name)
                    for name in list(lock.packages) if name.startswith(_LEGACY_PACKAGE)}
    if old_pins or old_packages:
        lane = lock.lane(LEGACY_LANE)
        lane.pins = {**old_pins, **lane.pins}
        lane.packages = {**old_packages, **lane.packages}
        lock.legacy = True
    return lock


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
