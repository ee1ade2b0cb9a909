"""The user's project: the folder holding rustkm.toml (or rustkm.lock), else the current one."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from rustkm.errors import RustkmError
from rustkm.lockfile import LOCK_NAME

PROJECT_FILE = "rustkm.toml"


@dataclass(frozen=True)
class Project:
    root: Path
    kernel: str = "debian:7.2"
    fragments: tuple[str, ...] = ()
    module_dirs: tuple[str, ...] = field(default=("kmods",))

    @property
    def lock_path(self) -> Path:
        return self.root / LOCK_NAME


def find_project(start: Path | None = None) -> Project:
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        config = folder / PROJECT_FILE
        if config.is_file():
            return _read(folder, config)
        if (folder / LOCK_NAME).is_file():
            return Project(root=folder)
    return Project(root=here)


def _read(root: Path, config: Path) -> Project:
    try:
        data = tomllib.loads(config.read_text())
    except tomllib.TOMLDecodeError as e:
        raise RustkmError(f"{config} is not valid TOML: {e}") from None
    kernel = data.get("kernel", {})
    return Project(
        root=root,
        kernel=str(kernel.get("source", "debian:7.2")),
        fragments=tuple(_fragment(root, str(f)) for f in kernel.get("fragments", ())),
        module_dirs=tuple(data.get("modules", {}).get("dirs", ("kmods",))),
    )


def _fragment(root: Path, spec: str) -> str:
    """A fragment path in rustkm.toml is relative to the project; a bare name is a bundled one."""
    if spec.endswith(".config") or "/" in spec:
        return str(root / spec)
    return spec
