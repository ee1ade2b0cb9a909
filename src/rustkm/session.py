"""Wiring of the stages: from a project (or request) to a toolchain and a built kernel."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from rustkm.errors import RustkmError
from rustkm.kernel.build import KernelBuild, ensure_kernel
from rustkm.kernel.config import BASE_FRAGMENTS, DEBUG_FRAGMENTS, Fragment, load_fragment
from rustkm.kernel.source import DEFAULT_SERIES, KernelSource, debian_source, local_source
from rustkm.lockfile import Lock
from rustkm.log import say
from rustkm.project import Project, find_project
from rustkm.toolchain import Toolchain, ensure_toolchain


@dataclass(frozen=True)
class KernelRequest:
    source: str = f"debian:{DEFAULT_SERIES}"  # debian:SERIES, or a path to a kernel tree
    toolchain: str = "debian"
    debug: bool = False
    fragments: tuple[str, ...] = ()
    # A distribution's stock kernel instead of a self-built one: debian:latest or
    # debian:RELEASE (e.g. debian:7.2.13+deb14-amd64).
    stock: str | None = None

    @classmethod
    def from_project(cls, project: Project, **overrides: object) -> KernelRequest:
        request = cls(source=project.kernel, fragments=project.fragments,
                      debug=os.environ.get("RUSTKM_DEBUG_KERNEL") == "1",
                      stock=os.environ.get("RUSTKM_KERNEL") or None)
        values = {k: v for k, v in overrides.items() if v is not None}
        return cls(**{**request.__dict__, **values})

    def fragment_list(self) -> list[Fragment]:
        names = [*BASE_FRAGMENTS, *(DEBUG_FRAGMENTS if self.debug else ()), *self.fragments]
        return [load_fragment(n) for n in names]


def resolve_source(tc: Toolchain, request: KernelRequest, project: Project,
                   update_lock: bool = False) -> KernelSource:
    if request.source.startswith("debian:"):
        series = request.source.split(":", 1)[1]
        if not series.replace(".", "").isdigit():
            raise RustkmError(f"bad kernel source {request.source!r}",
                              hint="use debian:SERIES (e.g. debian:7.2) or a path to a tree")
        lock = Lock.read(project.lock_path)
        return debian_source(tc, series, lock, project.lock_path, update=update_lock)
    return local_source(Path(request.source))


def prepare_kernel(request: KernelRequest | None = None,
                   project: Project | None = None) -> tuple[Toolchain, KernelBuild]:
    project = project or find_project()
    request = request or KernelRequest.from_project(project)
    if request.stock:
        return _stock(request.stock, project)
    fragments = request.fragment_list()  # fail on a bad fragment before any download
    tc = ensure_toolchain(request.toolchain)
    if request.toolchain == "host":
        if request.source.startswith("debian:"):
            raise RustkmError("--toolchain host builds a local kernel tree only",
                              hint="add --source PATH (a kernel checkout), or use the "
                                   "default Debian toolchain")
        from rustkm.doctor import check_host_tools

        source = local_source(Path(request.source))
        check_host_tools(source.tree)
    else:
        source = resolve_source(tc, request, project)
        record_toolchain(tc, project)
    return tc, ensure_kernel(tc, source, fragments)


def default_kernel() -> KernelBuild:
    return prepare_kernel()[1]


def _stock(spec: str, project: Project) -> tuple[Toolchain, KernelBuild]:
    from rustkm.stock import prepare_stock_kernel

    distro, _, release = spec.partition(":")
    if distro != "debian" or not release:
        raise RustkmError(f"unknown kernel {spec!r}",
                          hint="use debian:latest or debian:RELEASE (e.g. 7.2.13+deb14-amd64)")
    return prepare_stock_kernel(release, Lock.read(project.lock_path), project.lock_path)


def record_toolchain(tc: Toolchain, project: Project) -> None:
    """Pin the toolchain's tool versions in the lock; say when they have moved since."""
    lock = Lock.read(project.lock_path)
    current = {f"{tc.name}/{tool}": version for tool, version in tc.versions().items()}
    drift = {k: (lock.toolchain[k], v) for k, v in current.items()
             if k in lock.toolchain and lock.toolchain[k] != v}
    for key, (old, new) in drift.items():
        say(f"toolchain: {key} is now {new!r}; rustkm.lock says {old!r} "
            "(the archive moved; `rustkm lock --update` records the new one)")
    missing = {k: v for k, v in current.items() if k not in lock.toolchain}
    if missing:
        lock.toolchain.update(missing)
        lock.write(project.lock_path)
