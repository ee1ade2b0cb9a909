"""rustkm.lock: the exact Debian package versions (and SHA256) a project resolved once."""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path

import tomli_w

LOCK_NAME = "rustkm.lock"


@dataclass(frozen=True)
class LockedPackage:
    package: str
    version: str
    sha256: str
    suite: str


@dataclass
class Lock:
    packages: dict[str, LockedPackage]
    toolchain: dict[str, str]

    @classmethod
    def read(cls, path: Path) -> Lock:
        if not path.exists():
            return cls({}, {})
        data = tomllib.loads(path.read_text())
        packages = {name: LockedPackage(**entry) for name, entry in data.get("package", {}).items()}
        return cls(packages, dict(data.get("toolchain", {})))

    def write(self, path: Path) -> None:
        data = {
            "toolchain": dict(sorted(self.toolchain.items())),
            "package": {name: asdict(p) for name, p in sorted(self.packages.items())},
        }
        header = "# Written by rustkm: the exact versions this project builds with.\n" \
                 "# `rustkm lock --update` resolves them again.\n"
        path.write_text(header + tomli_w.dumps(data))
