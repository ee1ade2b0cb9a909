"""Kernel lanes: a lane is a named kernel that modules are built and tested against.

Built-in lanes:
    default            the project's self-built kernel (rustkm.toml [kernel])
    debug              the same with the debug fragment (KASAN, lockdep, kmemleak)
    kernel-tests       the same with the kernel's own Rust KUnit suites and doctests built in
                       (`rustkm kunit --kernel-tests`; built by hand, not in CI)
    debian:latest      Debian's newest stock kernel in sid (no build)
    debian:next        Debian's newest stock kernel, experimental included (no build)
    debian:RELEASE     one stock kernel release, e.g. debian:7.2.13+deb14-amd64
A project defines more in rustkm.toml:
    [lanes.v73]
    source = "debian:7.3"          # or a kernel tree path
    fragments = ["extra.config"]   # added to [kernel].fragments
    debug = false
and a folder holding a kernel rustkm built (its rustkm-build.json) is a lane too.

Every lane is for the host's architecture unless NAME@ARCH (debian:latest@arm64), `--arch`,
RUSTKM_ARCH or a lane table's `arch` says otherwise (rustkm.arch). `--arch arm64` alone means
Debian's stock arm64 kernel (no build); `default@arm64` is the project's kernel built for arm64
(by hand: about 15 minutes on 2 cores).

`--kernel LANE` means the same in every verb, `--rustkm-kernel LANE[,LANE...]` in pytest and
RUSTKM_KERNEL; `--debug`, `--rustkm-debug` and RUSTKM_DEBUG_KERNEL=1 spell the `debug` lane.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from rustkm.arch import ARCHES, get_arch, host_arch
from rustkm.errors import RustkmError
from rustkm.project import Project

BUILT_IN = ("default", "debug", "kernel-tests", "debian:latest", "debian:next")
# The bundled fragment (src/rustkm/configs/kernel-tests.config) of the kernel-tests lane.
KERNEL_TESTS_FRAGMENT = "kernel-tests"
_RELEASE = re.compile(r"^debian:\d+\.\d+(\.\d+)?(~rc\d+)?(\+deb\d+)?-[a-z0-9-]+$")
BUILD_STAMP = "rustkm-build.json"


def debug_from_environment() -> bool:
    """RUSTKM_DEBUG_KERNEL=1: the debug lane (0 or unset: not asked for)."""
    value = os.environ.get("RUSTKM_DEBUG_KERNEL", "")
    if value not in ("", "0", "1"):
        raise RustkmError(f"RUSTKM_DEBUG_KERNEL={value!r} is neither 1 nor 0",
                          hint="RUSTKM_DEBUG_KERNEL=1 selects the debug kernel (KASAN, "
                               "lockdep); unset it or set 0 for the default one")
    return value == "1"


def environment_lanes() -> str:
    """RUSTKM_KERNEL: one lane, or several separated by commas (pytest); "" when unset."""
    return os.environ.get("RUSTKM_KERNEL", "").strip()


def lane_from_environment() -> tuple[str, str] | None:
    """The lane the environment chooses and the variable that chose it: RUSTKM_KERNEL, else
    RUSTKM_DEBUG_KERNEL=1 (the debug lane); None when it chooses none. The one place rustkm
    reads these two variables."""
    if name := environment_lanes():
        return name, "RUSTKM_KERNEL"
    if debug_from_environment():
        return "debug", "RUSTKM_DEBUG_KERNEL=1"
    return None


@dataclass(frozen=True)
class Lane:
    """One kernel to build and test against; exactly one of its kinds applies."""

    name: str
    debug: bool = False
    stock: str | None = None  # debian:latest, debian:next or debian:RELEASE
    source: str | None = None  # a project lane's own kernel source (debian:SERIES or a path)
    fragments: tuple[str, ...] = ()  # a project lane's fragments, beside [kernel]'s
    build_dir: Path | None = None  # a kernel rustkm built, used as it is
    arch: str = host_arch().name  # the guest's architecture (rustkm.arch)

    @property
    def kind(self) -> str:
        if self.stock:
            return "stock"
        if self.build_dir is not None:
            return "build folder"
        return "self-built"


def lane_names(project: Project) -> list[str]:
    return [*BUILT_IN, "debian:RELEASE", *sorted(project.lanes)]


def with_arch(name: str, arch: str) -> str:
    """The lane `name` on architecture `arch` ("" or the host's: `name` as it is)."""
    if not arch or "@" in name:
        return name
    target = get_arch(arch)
    return name if target.is_host else f"{name}@{target.name}"


def resolve_lane(name: str, project: Project, origin: str = "") -> Lane:
    """The lane `name` names: a built-in one, the project's, or a kernel build folder; NAME@ARCH
    is that lane on another architecture."""
    name = name.strip()
    base, _, arch_name = name.rpartition("@") if "@" in name else (name, "", "")
    if arch_name:
        arch = get_arch(arch_name, origin)
        lane = resolve_lane(base, project, origin)
        if arch.name == lane.arch:
            return lane
        if lane.build_dir is not None:
            raise RustkmError(f"{base} is a kernel folder: its architecture is the one it was "
                              f"built for, not {arch.name}")
        return replace(lane, name=f"{lane.name}@{arch.name}", arch=arch.name)
    if name == "default":
        return Lane("default")
    if name == "debug":
        return Lane("debug", debug=True)
    if name == "kernel-tests":
        return Lane("kernel-tests", fragments=(KERNEL_TESTS_FRAGMENT,))
    if name in ("debian:latest", "debian:next"):
        return Lane(name, stock=name)
    if _RELEASE.match(name):
        # A release names its flavour: debian:7.2.13+deb14-arm64 is an arm64 kernel.
        flavour = name.rsplit("-", 1)[-1]
        named = next((a.name for a in ARCHES.values() if a.debian == flavour), host_arch().name)
        return Lane(name, stock=name, arch=named)
    if name in project.lanes:
        table = project.lanes[name]
        return Lane(name, debug=bool(table.get("debug", False)),
                    source=table.get("source") or None,
                    fragments=tuple(table.get("fragments", ())),
                    arch=table.get("arch") or host_arch().name)
    path = Path(name).expanduser()
    if name and ("/" in name or name.startswith(".")) and path.is_dir():
        if not (path / BUILD_STAMP).is_file():
            raise RustkmError(f"{path} is not a kernel folder rustkm built (no {BUILD_STAMP})",
                              hint="a lane, or a folder that `rustkm kernel build` made")
        return Lane(str(path.resolve()), build_dir=path.resolve())
    where = f" (from {origin})" if origin else ""
    raise RustkmError(f"unknown kernel {name!r}{where}",
                      hint=f"lanes: {', '.join(lane_names(project))}, or a kernel build folder")


def resolve_lanes(names: str, project: Project, origin: str = "") -> list[Lane]:
    """Comma-separated lane names, each once, in the order given."""
    seen: dict[str, Lane] = {}
    for name in names.split(","):
        if not name.strip():
            raise RustkmError(f"empty lane name in {names!r}" + (f" ({origin})" if origin else ""),
                              hint="separate lane names with single commas: default,debian:next")
        lane = resolve_lane(name, project, origin)
        seen.setdefault(lane.name, lane)
    return list(seen.values())


def module_lane_skip(folder: Path, lane: str) -> str:
    """Why the module in `folder` does not apply to `lane` ("" when it does), from its
    rustkm-module.toml: [lanes] skip = {"debian:*" = "needs CONFIG_KUNIT"}; a pattern that
    starts with ! skips every lane it does not match ("!*@arm64": arm64 lanes only)."""
    from rustkm.module_file import read_module_file

    return lane_skip_reason(read_module_file(folder).skip, lane)


def lane_skip_reason(skip: dict[str, str], lane: str) -> str:
    """The reason of the first pattern of `skip` that skips `lane` ("" when none does): an
    fnmatch pattern skips the lanes it matches, one that starts with ! those it does not."""
    import fnmatch

    for pattern, reason in skip.items():
        negated = pattern.startswith("!")
        if fnmatch.fnmatchcase(lane, pattern.removeprefix("!")) != negated:
            return reason
    return ""
