"""The lanes of a pytest run: which ones --rustkm-kernel, --rustkm-debug, --rustkm-arch and the
environment choose (read here, at the top), each prepared once per process, rustkm.lock read
once, and the modules built for each kept for the run. The VM tests' fixtures
(rustkm.pytest_plugin) and the KUnit items (rustkm.kunit.pytest_items) share them."""

from __future__ import annotations

from pathlib import Path

import pytest

from rustkm.errors import RustkmError
from rustkm.kernel.build import KernelBuild
from rustkm.lockfile import Lock
from rustkm.module import ModuleBuild, build_module
from rustkm.toolchain import Toolchain

Prepared = tuple[Toolchain, KernelBuild]
_KERNELS = pytest.StashKey[dict[str | None, Prepared | RustkmError]]()
_LOCK = pytest.StashKey[Lock]()
_built: dict[tuple[str, Path], ModuleBuild] = {}


def configured_lanes(config: pytest.Config) -> list[str]:
    """The lanes asked for (--rustkm-kernel, else RUSTKM_KERNEL); [] for the default choice
    (the project's kernel, or the debug lane with --rustkm-debug / RUSTKM_DEBUG_KERNEL=1)."""
    from rustkm.arch import arch_from_environment, get_arch
    from rustkm.kernel.choice import FOREIGN_DEFAULT, environment_lanes
    from rustkm.kernel.lane import resolve_lanes, with_arch
    from rustkm.project import find_project

    names = config.getoption("rustkm_kernel") or environment_lanes()
    origin = "--rustkm-kernel" if config.getoption("rustkm_kernel") else "RUSTKM_KERNEL"
    try:
        arch = config.getoption("rustkm_arch") or arch_from_environment()
        if arch and not get_arch(arch).is_host:
            if not names:
                names, origin = FOREIGN_DEFAULT, "--rustkm-arch"
            names = ",".join(with_arch(name, arch) for name in names.split(","))
        if not names:
            return []
        return [lane.name for lane in resolve_lanes(names, find_project(), origin)]
    except RustkmError as e:
        raise pytest.UsageError(f"{e.message}" + (f"\nhint: {e.hint}" if e.hint else "")) \
            from None


def item_lane(item: pytest.Item) -> str:
    """The name of the lane `item` runs on."""
    from rustkm.kernel.choice import debug_from_environment

    callspec = getattr(item, "callspec", None)
    if callspec is not None and "rustkm_lane" in callspec.params:
        return str(callspec.params["rustkm_lane"])
    lanes = configured_lanes(item.config)
    if lanes:
        return lanes[0]
    return "debug" if item.config.getoption("rustkm_debug") or debug_from_environment() \
        else "default"


def lane_kernel(config: pytest.Config, name: str | None) -> Prepared:
    """The toolchain and kernel of lane `name` (None: the default choice), prepared once per
    process; a lane that cannot be prepared raises its error for every test that needs it."""
    from rustkm.kernel.choice import LaneChoice
    from rustkm.kernel.prepare import prepare_lane
    from rustkm.project import find_project

    kernels = config.stash.setdefault(_KERNELS, {})
    if name not in kernels:
        try:
            project = find_project()
            if _LOCK not in config.stash:  # once for every lane of the run
                config.stash[_LOCK] = Lock.read(project.lock_path)
            lock = config.stash[_LOCK]
            choice = LaneChoice.ask(name, True if config.getoption("rustkm_debug") else None)
            kernels[name] = prepare_lane(choice.lane(project), project, lock)
        except RustkmError as e:
            kernels[name] = e
    prepared = kernels[name]
    if isinstance(prepared, RustkmError):
        raise prepared
    return prepared


def build_modules(prepared: Prepared, folders: list[Path]) -> list[Path]:
    """The .ko files of `folders` built for the lane's kernel, each folder once per run."""
    tc, kernel = prepared
    kos: list[Path] = []
    for folder in folders:
        key = (kernel.key, folder.resolve())
        if key not in _built:
            _built[key] = build_module(tc, kernel, folder)
        kos += _built[key].modules
    return kos
