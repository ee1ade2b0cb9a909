"""Wiring of the stages: from a project (or request) to a toolchain and a built kernel."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from rustkm.arch import arch_from_environment, get_arch, host_arch
from rustkm.errors import RustkmError
from rustkm.kernel.build import KernelBuild, ensure_kernel
from rustkm.kernel.config import DEBUG_FRAGMENTS, Fragment, base_fragments, load_fragment
from rustkm.kernel.source import DEFAULT_SERIES, KernelSource, debian_source, local_source
from rustkm.lanes import (
    Lane,
    debug_from_environment,
    environment_lanes,
    resolve_lane,
    with_arch,
)
from rustkm.lockfile import Lock, editing
from rustkm.log import say
from rustkm.project import PROJECT_FILE, Project, check_source, find_project
from rustkm.toolchain import Toolchain, ensure_toolchain, rootfs_toolchain, store_dir

# debian:latest, or a Debian kernel release such as debian:7.2.13+deb14-amd64.
_STOCK = re.compile(r"^debian:(latest|next|\d+\.\d+(\.\d+)?(~rc\d+)?(\+deb\d+)?-[a-z0-9-]+)$")
TOOLCHAINS = ("debian", "host")
# The lane of another architecture when none is named: its stock kernel needs no build.
FOREIGN_DEFAULT = "debian:latest"


@dataclass(frozen=True)
class KernelRequest:
    source: str = f"debian:{DEFAULT_SERIES}"  # debian:SERIES, or a path to a kernel tree
    toolchain: str = "debian"
    debug: bool = False
    fragments: tuple[str, ...] = ()
    # A distribution's stock kernel instead of a self-built one: debian:latest, debian:next
    # or debian:RELEASE (e.g. debian:7.2.13+deb14-amd64).
    stock: str | None = None
    lane: str = "default"  # the lane's name, as rustkm.lanes resolved it
    build_dir: str | None = None  # a kernel rustkm built, used as it is
    arch: str = host_arch().name  # the guest's architecture (rustkm.arch)

    @classmethod
    def from_project(cls, project: Project, **overrides: object) -> KernelRequest:
        """The request for a lane (rustkm.lanes): `lane` (or `stock`, its older name) from
        the command line, else RUSTKM_KERNEL, else `debug` (--debug, RUSTKM_DEBUG_KERNEL=1),
        else the default lane; the other `overrides` (None means not given) on top."""
        values = {k: v for k, v in overrides.items() if v is not None}
        name = values.pop("lane", None) or values.pop("stock", None)
        arch = str(values.pop("arch", None) or arch_from_environment())
        origin = "--kernel"
        if name is None and (variable := environment_lanes()):
            name, origin = variable, "RUSTKM_KERNEL"
        debug = values.pop("debug", None)
        if debug is None:
            debug = debug_from_environment()
        if name is None and not debug and arch and not get_arch(arch).is_host:
            # Another architecture's self-built kernel is built by hand: its stock kernel is
            # the lane that needs no build.
            name = FOREIGN_DEFAULT
            say(f"--arch {arch}: using the lane {FOREIGN_DEFAULT}@{arch} (Debian's stock "
                f"{arch} kernel; --kernel chooses another)")
        lane = resolve_lane(with_arch(str(name or ("debug" if debug else "default")), arch),
                            project, origin)
        if debug and not lane.debug:
            if lane.stock or lane.build_dir:
                raise RustkmError(f"the debug lane is a self-built kernel, but {origin} names "
                                  f"{lane.kind} lane {lane.name}",
                                  hint="drop --debug (or RUSTKM_DEBUG_KERNEL=1), or choose a "
                                       "self-built lane")
            lane = replace(lane, debug=True)
        return cls.for_lane(lane, project, **values)

    @classmethod
    def for_lane(cls, lane: Lane, project: Project, **values: object) -> KernelRequest:
        if lane.stock:
            request = cls(stock=lane.stock, lane=lane.name, arch=lane.arch)
        elif lane.build_dir is not None:
            request = cls(build_dir=str(lane.build_dir), lane=lane.name)
        else:
            request = cls(source=lane.source or project.kernel,
                          fragments=(*project.fragments, *lane.fragments), debug=lane.debug,
                          lane=lane.name, arch=lane.arch)
        return cls(**{**request.__dict__, **values})

    def check(self) -> None:
        """Refuse a malformed request before any toolchain, download or build work."""
        if self.stock:
            stock_release(self.stock)
            return
        if not get_arch(self.arch).is_host and self.toolchain == "host":
            raise RustkmError(f"lane {self.lane}: --toolchain host builds for this host's "
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
        names = [*base_fragments(self.arch), *(DEBUG_FRAGMENTS if self.debug else ()),
                 *self.fragments]
        return [load_fragment(n) for n in names]


def resolve_source(tc: Toolchain, request: KernelRequest, project: Project,
                   update_lock: bool = False) -> KernelSource:
    check_source(request.source)
    if request.source.startswith("debian:"):
        series = request.source.split(":", 1)[1]
        lock = Lock.read(project.lock_path)
        return debian_source(tc, series, lock, project.lock_path, update=update_lock)
    return local_source(Path(request.source))


def prepare_kernel(request: KernelRequest | None = None,
                   project: Project | None = None) -> tuple[Toolchain, KernelBuild]:
    project = project or find_project()
    request = request or KernelRequest.from_project(project)
    request.check()
    if request.stock:
        return _stock(request.stock, project, request.arch)
    if request.build_dir is not None:
        return _built_folder(Path(request.build_dir), request)
    fragments = request.fragment_list()  # fail on a bad fragment before any download
    # A local tree is checked (it exists, it is a kernel tree, unbuilt) before the toolchain.
    local = None if request.source.startswith("debian:") else local_source(Path(request.source))
    foreign = not get_arch(request.arch).is_host
    if project.marker is None and not foreign:
        reused = _kernel_outside_project(request, project)
        if reused is not None:
            return ensure_toolchain(request.toolchain), reused
    tc = ensure_toolchain(request.toolchain, request.arch if foreign else "")
    if local is not None and request.toolchain == "host":
        from rustkm.kernel.tools import check_host_tools

        check_host_tools(local.tree)
        source = local
    else:
        source = local or resolve_source(tc, request, project)
        record_toolchain(tc, project)
    build = ensure_kernel(tc, source, fragments, arch=request.arch)
    if foreign:
        build = replace(build, busybox=str(_foreign_busybox(tc, request, project)))
    return tc, build


def _foreign_busybox(tc: Toolchain, request: KernelRequest, project: Project) -> Path:
    """A self-built kernel of another architecture: its guest's busybox, Debian's for that
    architecture from the toolchain's suite, pinned in the lane's section of rustkm.lock."""
    from rustkm.guest_busybox import guest_busybox
    from rustkm.kernel.source import DebianArchive
    from rustkm.toolchain import SUITE

    arch = get_arch(request.arch)
    archive = DebianArchive.for_suite(tc, SUITE, arch.debian)
    return guest_busybox(request.lane, Lock.read(project.lock_path), project.lock_path,
                         archive, tc, arch)


def default_kernel() -> KernelBuild:
    """The kernel `boot()` uses when given none: the project's (see prepare_kernel for what
    happens outside any project)."""
    return prepare_kernel()[1]


def stock_release(spec: str, origin: str = "") -> str:
    """The release of a stock kernel spec: 'latest' or e.g. 7.2.13+deb14-amd64."""
    if not _STOCK.match(spec):
        where = f" (from {origin})" if origin else ""
        raise RustkmError(f"unknown kernel {spec!r}{where}",
                          hint="use debian:latest, debian:next or debian:RELEASE (e.g. "
                               "debian:7.2.13+deb14-amd64)")
    return spec.split(":", 1)[1]


def ready_kernels(request: KernelRequest) -> list[KernelBuild]:
    """Finished self-built kernels in the cache that give what `request` asks (its Debian
    series, toolchain, the debug lane or not, and at least its fragments), the closest first."""
    if not request.source.startswith("debian:") or request.toolchain != "debian":
        return []
    origin = f"debian:linux-source-{request.source.removeprefix('debian:')}="
    wanted = {f.name for f in request.fragment_list()}
    found = []
    for stamp in (store_dir() / "kernels").glob("*/rustkm-build.json"):
        try:
            build = KernelBuild.load(stamp.parent)
            built = stamp.stat().st_mtime
        except (OSError, ValueError, KeyError, TypeError):
            continue  # unreadable or from another rustkm: not one to boot
        if (build.source.origin.startswith(origin) and build.vmlinux.is_file()
                and build.toolchain == rootfs_toolchain().name
                and wanted <= set(build.fragments)
                and ("debug" in build.fragments) == request.debug):
            found.append((len(set(build.fragments) - wanted), -built, build))
    # The closest first (the fewest fragments beyond those asked for: a project's kernel
    # before its kernel-tests lane's), then the newest.
    return [build for *_, build in sorted(found, key=lambda entry: entry[:2])]


def _kernel_outside_project(request: KernelRequest, project: Project) -> KernelBuild | None:
    """Outside any project (no rustkm.toml from here up) the request is the bare default,
    whose kernel few caches hold: a project's kernel (built with its fragments) boots modules
    as well, so the newest finished one that fits is used rather than a second build."""
    here = f"no {PROJECT_FILE} in {project.root} or above"
    ready = ready_kernels(request)
    if ready:
        build = ready[0]
        say(f"{here}: using the kernel {build.release} built at {build.build_dir} "
            f"(fragments: {', '.join(build.fragments)}), the closest finished "
            f"{request.source} kernel in the cache; a {PROJECT_FILE} chooses another")
        return build
    fragments = ", ".join(f.name for f in request.fragment_list())
    say(f"{here}, and no finished {request.source} kernel that fits in the cache: building "
        f"one with the fragments {fragments} (about 10 minutes on 2 cores, once); in a project "
        f"folder its {PROJECT_FILE} chooses the kernel")
    return None


def _built_folder(folder: Path, request: KernelRequest) -> tuple[Toolchain, KernelBuild]:
    try:
        build = KernelBuild.load(folder)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise RustkmError(f"{folder} holds no kernel rustkm can use: {e}",
                          hint="rebuild it with `rustkm kernel build`, or choose a lane") from None
    if build.image_path:
        raise RustkmError(f"{folder} holds a stock kernel's metadata",
                          hint=f"use its lane: --kernel debian:{build.release}")
    if not build.vmlinux.is_file():
        raise RustkmError(f"{folder} holds an unfinished kernel build (no vmlinux)",
                          hint="run `rustkm kernel build` to finish it")
    return ensure_toolchain(request.toolchain), build


def _stock(spec: str, project: Project, arch: str) -> tuple[Toolchain, KernelBuild]:
    from rustkm.stock import prepare_stock_kernel

    release = stock_release(spec)
    return prepare_stock_kernel(release, Lock.read(project.lock_path), project.lock_path,
                                arch=get_arch(arch))


def record_toolchain(tc: Toolchain, project: Project) -> None:
    """Pin the toolchain's tool versions in the lock; say when they have moved since."""
    lock = Lock.read(project.lock_path)
    current = {f"{tc.name}/{tool}": version for tool, version in tc.versions().items()}
    drift = {k: (lock.toolchain[k], v) for k, v in current.items()
             if k in lock.toolchain and lock.toolchain[k] != v}
    for key, (old, new) in drift.items():
        say(f"toolchain: {key} is now {new!r}; rustkm.lock says {old!r} "
            "(the archive moved; `rustkm lock --update` records the new one)")
    if any(k not in lock.toolchain for k in current):
        # Another process may be pinning too: add ours to what the file holds by then.
        with editing(project.lock_path) as pins:
            pins.toolchain.update({k: v for k, v in current.items() if k not in pins.toolchain})
