"""Making a lane ready: its toolchain and its kernel, pinned in rustkm.lock (read once by the
caller and passed on), downloaded and built as need be. `prepare_lane` is the way in."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from rustkm.arch import get_arch
from rustkm.errors import RustkmError
from rustkm.kernel.build import KernelBuild, ensure_kernel
from rustkm.kernel.lane import Lane, stock_release
from rustkm.kernel.source import KernelSource, debian_source, local_source
from rustkm.lockfile import Lock, editing
from rustkm.log import say
from rustkm.project import PROJECT_FILE, Project, check_source
from rustkm.toolchain import Toolchain, ensure_toolchain, rootfs_toolchain, store_dir


def prepare_lane(lane: Lane, project: Project,
                 lock: Lock | None = None) -> tuple[Toolchain, KernelBuild]:
    """The lane's toolchain and kernel, ready: pinned in `lock` (the project's rustkm.lock,
    read here when not given), downloaded and built as need be."""
    lane.check()
    if lane.build_dir is not None:
        return _built_folder(lane.build_dir, lane.toolchain)  # pinned nowhere: no lock read
    lock = lock if lock is not None else Lock.read(project.lock_path)
    if lane.stock:
        from rustkm.stock import prepare_stock_kernel

        return prepare_stock_kernel(stock_release(lane.stock), lock, project.lock_path,
                                    arch=get_arch(lane.arch))
    fragments = lane.fragment_list()  # fail on a bad fragment before any download
    # A local tree is checked (it exists, it is a kernel tree, unbuilt) before the toolchain.
    local = None if lane.source.startswith("debian:") else local_source(Path(lane.source))
    foreign = not get_arch(lane.arch).is_host
    if project.marker is None and not foreign:
        reused = _kernel_outside_project(lane, project)
        if reused is not None:
            return ensure_toolchain(lane.toolchain), reused
    tc = ensure_toolchain(lane.toolchain, lane.arch if foreign else "")
    if local is not None and lane.toolchain == "host":
        from rustkm.kernel.tools import check_host_tools

        check_host_tools(local.tree)
        source = local
    else:
        source = local or resolve_source(tc, lane, project, lock)
        record_toolchain(tc, project, lock)
    build = ensure_kernel(tc, source, fragments, arch=lane.arch)
    if foreign:
        build = replace(build, busybox=str(_foreign_busybox(tc, lane, project, lock)))
    return tc, build


def resolve_source(tc: Toolchain, lane: Lane, project: Project, lock: Lock,
                   update_lock: bool = False) -> KernelSource:
    """A self-built lane's kernel source: its pinned Debian package, or its local tree."""
    check_source(lane.source)
    if lane.source.startswith("debian:"):
        series = lane.source.split(":", 1)[1]
        return debian_source(tc, series, lock, project.lock_path, update=update_lock)
    return local_source(Path(lane.source))


def _foreign_busybox(tc: Toolchain, lane: Lane, project: Project, lock: Lock) -> Path:
    """A self-built kernel of another architecture: its guest's busybox, Debian's for that
    architecture from the toolchain's suite, pinned in the lane's section of rustkm.lock."""
    from rustkm.guest_busybox import guest_busybox
    from rustkm.kernel.source import DebianArchive
    from rustkm.toolchain import SUITE

    arch = get_arch(lane.arch)
    archive = DebianArchive.for_suite(tc, SUITE, arch.debian)
    return guest_busybox(lane.name, lock, project.lock_path, archive, tc, arch)


def ready_kernels(lane: Lane) -> list[KernelBuild]:
    """Finished self-built kernels in the cache that give what `lane` asks (its Debian series,
    toolchain, the debug lane or not, and at least its fragments), the closest first."""
    if not lane.source.startswith("debian:") or lane.toolchain != "debian":
        return []
    origin = f"debian:linux-source-{lane.source.removeprefix('debian:')}="
    wanted = {f.name for f in lane.fragment_list()}
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
                and ("debug" in build.fragments) == lane.debug):
            found.append((len(set(build.fragments) - wanted), -built, build))
    # The closest first (the fewest fragments beyond those asked for: a project's kernel
    # before its kernel-tests lane's), then the newest.
    return [build for *_, build in sorted(found, key=lambda entry: entry[:2])]


def _kernel_outside_project(lane: Lane, project: Project) -> KernelBuild | None:
    """Outside any project (no rustkm.toml from here up) the lane is the bare default, whose
    kernel few caches hold: a project's kernel (built with its fragments) boots modules as
    well, so the newest finished one that fits is used rather than a second build."""
    here = f"no {PROJECT_FILE} in {project.root} or above"
    ready = ready_kernels(lane)
    if ready:
        build = ready[0]
        say(f"{here}: using the kernel {build.release} built at {build.build_dir} "
            f"(fragments: {', '.join(build.fragments)}), the closest finished "
            f"{lane.source} kernel in the cache; a {PROJECT_FILE} chooses another")
        return build
    fragments = ", ".join(f.name for f in lane.fragment_list())
    say(f"{here}, and no finished {lane.source} kernel that fits in the cache: building "
        f"one with the fragments {fragments} (about 10 minutes on 2 cores, once); in a project "
        f"folder its {PROJECT_FILE} chooses the kernel")
    return None


def _built_folder(folder: Path, toolchain: str) -> tuple[Toolchain, KernelBuild]:
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
    return ensure_toolchain(toolchain), build


def record_toolchain(tc: Toolchain, project: Project, lock: Lock) -> None:
    """Pin the toolchain's tool versions in the lock; say when they have moved since."""
    current = {f"{tc.name}/{tool}": version for tool, version in tc.versions().items()}
    drift = {k: (lock.toolchain[k], v) for k, v in current.items()
             if k in lock.toolchain and lock.toolchain[k] != v}
    for key, (old, new) in drift.items():
        say(f"toolchain: {key} is now {new!r}; rustkm.lock says {old!r} "
            "(the archive moved; `rustkm lock --update` records the new one)")
    if any(k not in lock.toolchain for k in current):
        # Another process may be pinning too: add ours to what the file holds by then.
        with editing(project.lock_path, lock) as pins:
            pins.toolchain.update({k: v for k, v in current.items() if k not in pins.toolchain})
