"""Kernel lanes: a lane is a named kernel that modules are built and tested against, and one
`Lane` says all of it: which kernel (stock, self-built or a build folder), its architecture,
its fragments and toolchain. rustkm.kernel.prepare makes it ready (`prepare_lane`).

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

Which lane a command uses is chosen once, at the top (rustkm.kernel.choice).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from rustkm.arch import ARCHES, get_arch, host_arch
from rustkm.errors import RustkmError
from rustkm.kernel.config import DEBUG_FRAGMENTS, Fragment, base_fragments, load_fragment
from rustkm.kernel.source import DEFAULT_SERIES
from rustkm.project import Project, check_source

BUILT_IN = ("default", "debug", "kernel-tests", "debian:latest", "debian:next")
# The bundled fragment (src/rustkm/configs/kernel-tests.config) of the kernel-tests lane.
KERNEL_TESTS_FRAGMENT = "kernel-tests"
# debian:latest, debian:next, or a Debian kernel release such as debian:7.2.13+deb14-amd64.
_RELEASE_BODY = r"\d+\.\d+(\.\d+)?(~rc\d+)?(\+deb\d+)?-[a-z0-9-]+"
_STOCK = re.compile(rf"^debian:(latest|next|{_RELEASE_BODY})$")
_RELEASE = re.compile(rf"^debian:{_RELEASE_BODY}$")
BUILD_STAMP = "rustkm-build.json"
TOOLCHAINS = ("debian", "host")


@dataclass(frozen=True)
class Lane:
    """One kernel to build and test against; exactly one of its kinds applies: a stock kernel
    (`stock`), a kernel rustkm built (`build_dir`), or a self-built one (`source`)."""

    name: str = "default"
    debug: bool = False
    stock: str | None = None  # debian:latest, debian:next or debian:RELEASE
    build_dir: Path | None = None  # a kernel rustkm built, used as it is
    source: str = f"debian:{DEFAULT_SERIES}"  # a self-built lane's: debian:SERIES or a tree
    fragments: tuple[str, ...] = ()  # a self-built lane's, beside the bundled ones
    toolchain: str = "debian"  # what builds a self-built lane: "debian" or "host"
    arch: str = host_arch().name  # the guest's architecture (rustkm.arch)

    @property
    def kind(self) -> str:
        if self.stock:
            return "stock"
        if self.build_dir is not None:
            return "build folder"
        return "self-built"

    def with_options(self, source: str | None = None, toolchain: str | None = None,
                     fragments: tuple[str, ...] = ()) -> Lane:
        """This lane with a command's --source, --toolchain and extra --fragment files."""
        return replace(self, source=source or self.source, toolchain=toolchain or self.toolchain,
                       fragments=(*self.fragments, *fragments))

    def check(self) -> None:
        """Refuse a malformed lane before any toolchain, download or build work."""
        if self.stock:
            stock_release(self.stock)
            return
        if not get_arch(self.arch).is_host and self.toolchain == "host":
            raise RustkmError(f"lane {self.name}: --toolchain host builds for this host's "
                              f"architecture only, not {self.arch}",
                              hint="use the default Debian toolchain, which cross-builds")
        check_source(self.source)
        if self.toolchain not in TOOLCHAINS:
            raise RustkmError(f"unknown toolchain {self.toolchain!r}",
                              hint="use --toolchain debian or host")
        if self.toolchain == "host" and self.source.startswith("debian:"):
            raise RustkmError("--toolchain host builds a local kernel tree only",
                              hint="add --source PATH (a kernel checkout), or use the "
                                   "default Debian toolchain")

    def fragment_list(self) -> list[Fragment]:
        """A self-built lane's config fragments: the bundled ones, then its own."""
        names = [*base_fragments(self.arch), *(DEBUG_FRAGMENTS if self.debug else ()),
                 *self.fragments]
        return [load_fragment(n) for n in names]


def stock_release(spec: str, origin: str = "") -> str:
    """The release of a stock kernel spec: 'latest' or e.g. 7.2.13+deb14-amd64."""
    if not _STOCK.match(spec):
        where = f" (from {origin})" if origin else ""
        raise RustkmError(f"unknown kernel {spec!r}{where}",
                          hint="use debian:latest, debian:next or debian:RELEASE (e.g. "
                               "debian:7.2.13+deb14-amd64)")
    return spec.split(":", 1)[1]


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
    is that lane on another architecture. A self-built lane carries the project's kernel
    source and fragments."""
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
    own = Lane(name, source=project.kernel, fragments=project.fragments)
    if name == "default":
        return own
    if name == "debug":
        return replace(own, debug=True)
    if name == "kernel-tests":
        return replace(own, fragments=(*own.fragments, KERNEL_TESTS_FRAGMENT))
    if name in ("debian:latest", "debian:next"):
        return Lane(name, stock=name)
    if _RELEASE.match(name):
        # A release names its flavour: debian:7.2.13+deb14-arm64 is an arm64 kernel.
        flavour = name.rsplit("-", 1)[-1]
        named = next((a.name for a in ARCHES.values() if a.debian == flavour), host_arch().name)
        return Lane(name, stock=name, arch=named)
    if name in project.lanes:
        table = project.lanes[name]
        return replace(own, debug=bool(table.get("debug", False)),
                       source=table.get("source") or project.kernel,
                       fragments=(*own.fragments, *table.get("fragments", ())),
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
