"""The user's project: the folder holding rustkm.toml (or rustkm.lock), else the current one."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rustkm.errors import RustkmError
from rustkm.lockfile import LOCK_NAME

PROJECT_FILE = "rustkm.toml"


# Every key rustkm.toml may have, by table; anything else is refused, so that a typo
# ([kernal], fragment =) is not silently a build without it.
_KEYS = {"kernel": ("source", "fragments"), "modules": ("dirs",), "lanes": ()}
_LANE_KEYS = ("source", "fragments", "debug", "arch")
_LANE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")
_SERIES = re.compile(r"^\d+(\.\d+)*$")


@dataclass(frozen=True)
class Project:
    root: Path
    kernel: str = "debian:7.2"
    fragments: tuple[str, ...] = ()
    module_dirs: tuple[str, ...] = field(default=("kmods",))
    # The rustkm.toml (or rustkm.lock) that makes `root` a project; None when no folder up
    # from the start has one and the start folder stands in.
    marker: Path | None = None
    # [lanes.NAME] tables: source (debian:SERIES or a tree path), fragments (beside
    # [kernel]'s), debug; see rustkm.kernel.lane.
    lanes: dict[str, dict[str, Any]] = field(default_factory=dict)

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
            return Project(root=folder, marker=folder / LOCK_NAME)
    return Project(root=here)


def check_source(spec: str, where: str = "") -> None:
    """A kernel source is debian:SERIES (debian:7.2) or a path to a kernel tree."""
    if not spec.strip() or (spec.startswith("debian:")
                            and not _SERIES.match(spec.removeprefix("debian:"))):
        raise RustkmError(f"bad kernel source {spec!r}{where}",
                          hint="use debian:SERIES (e.g. debian:7.2) or a path to a tree")


def _read(root: Path, config: Path) -> Project:
    try:
        data = tomllib.loads(config.read_text())
    except tomllib.TOMLDecodeError as e:
        raise RustkmError(f"{config} is not valid TOML: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise RustkmError(f"{config} cannot be read: {e}") from None
    _known_keys(config, data, "", tuple(_KEYS))
    kernel = _table(config, data, "kernel")
    modules = _table(config, data, "modules")
    _known_keys(config, kernel, "kernel.", _KEYS["kernel"])
    _known_keys(config, modules, "modules.", _KEYS["modules"])
    source = kernel.get("source", "debian:7.2")
    if not isinstance(source, str):
        raise _wrong_type(config, "kernel.source", "a string such as \"debian:7.2\"", source)
    check_source(source, f" in {config} (kernel.source)")
    if not source.startswith("debian:"):
        source = str(root / Path(source).expanduser())  # a tree path is relative to the project
    return Project(
        root=root,
        kernel=source,
        fragments=tuple(_fragment(root, f)
                        for f in _strings(config, kernel, "kernel.fragments", ())),
        module_dirs=_strings(config, modules, "modules.dirs", ("kmods",)),
        marker=config,
        lanes=_lanes(root, config, _table(config, data, "lanes")),
    )


def _lanes(root: Path, config: Path, tables: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The project's own lanes, checked: a typo is an error here, not a lane that builds
    something else."""
    lanes: dict[str, dict[str, Any]] = {}
    for name, table in tables.items():
        where = f"lanes.{name}"
        if not _LANE_NAME.match(name) or name in ("default", "debug"):
            raise RustkmError(f"{config}: [{where}] is not a name a lane can have",
                              hint="a letter, then letters, digits, '_', '.', '-'; not default "
                                   "or debug (built in)")
        if not isinstance(table, dict):
            raise _wrong_type(config, where, f"a table ([{where}])", table)
        _known_keys(config, table, where + ".", _LANE_KEYS)
        source = table.get("source", "debian:7.2")
        if not isinstance(source, str):
            raise _wrong_type(config, where + ".source", "a string such as \"debian:7.3\"",
                              source)
        check_source(source, f" in {config} ({where}.source)")
        if not source.startswith("debian:"):
            source = str(root / Path(source).expanduser())
        debug = table.get("debug", False)
        if not isinstance(debug, bool):
            raise _wrong_type(config, where + ".debug", "true or false", debug)
        arch = table.get("arch", "")
        if not isinstance(arch, str):
            raise _wrong_type(config, where + ".arch", "a string such as \"arm64\"", arch)
        if arch:
            from rustkm.arch import get_arch

            arch = get_arch(arch, f"{config} ({where}.arch)").name
        lanes[name] = {"source": source, "debug": debug, "arch": arch, "fragments": tuple(
            _fragment(root, f) for f in _strings(config, table, where + ".fragments", ()))}
    return lanes


def _known_keys(config: Path, table: dict[str, Any], prefix: str,
                known: tuple[str, ...]) -> None:
    unknown = [key for key in table if key not in known]
    if unknown:
        raise RustkmError(f"{config}: unknown key {prefix}{unknown[0]}",
                          hint=f"{'[' + prefix.rstrip('.') + ']' if prefix else 'rustkm.toml'}"
                               f" takes {', '.join(prefix + k for k in known)}")


def _table(config: Path, data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise _wrong_type(config, key, f"a table ([{key}])", value)
    return value


def _strings(config: Path, table: dict[str, Any], name: str,
             default: tuple[str, ...]) -> tuple[str, ...]:
    value = table.get(name.split(".")[-1], default)
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise _wrong_type(config, name, "a list of strings", value)
    return tuple(value)


def _wrong_type(config: Path, name: str, wanted: str, value: object) -> RustkmError:
    return RustkmError(f"{config}: {name} must be {wanted}, not {_toml_type(value)} "
                       f"({value!r})")


def _toml_type(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a float", str: "a string",
             list: "an array", dict: "a table"}
    return names.get(type(value), type(value).__name__)


def _fragment(root: Path, spec: str) -> str:
    """A fragment path in rustkm.toml is relative to the project; a bare name is a bundled one."""
    if spec.endswith(".config") or "/" in spec:
        return str(root / spec)
    return spec
