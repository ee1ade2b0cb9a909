"""Which kernel a lane gets outside any project: a finished kernel of the cache that fits,
said aloud, rather than a second ten-minute build; else what will be built, said first.
Fake cache folders hold rustkm-build.json stamps; nothing is built or downloaded."""

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from rustkm.errors import RustkmError
from rustkm.kernel import prepare
from rustkm.kernel.build import KernelBuild
from rustkm.kernel.choice import LaneChoice
from rustkm.kernel.config import BASE_FRAGMENTS, Fragment
from rustkm.kernel.lane import Lane
from rustkm.kernel.prepare import prepare_lane, ready_kernels
from rustkm.kernel.source import KernelSource
from rustkm.project import find_project
from rustkm.toolchain import Toolchain

BASE = BASE_FRAGMENTS
LKMPG = "/work/elsewhere/kmods/lkmpg/kernel.config"


@dataclass
class Cache:
    root: Path
    built: list[tuple[str, ...]] = field(default_factory=list)  # fragments of each new build

    def build(self, tc: Toolchain, source: KernelSource, fragments: list[Fragment],
              arch: str = "x86_64") -> KernelBuild:
        self.built.append(tuple(f.name for f in fragments))
        return stamp(self, "new", self.built[-1])


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cache:
    """An empty cache, a working folder outside any project, and every stage that would
    create a toolchain, fetch a source or build a kernel replaced: the build by a recorder.
    No host tools on PATH either, so that a stage reached by mistake (the stock lane's own
    toolchain) fails at once instead of running mmdebstrap."""
    monkeypatch.setenv("RUSTKM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))
    for name in ("RUSTKM_DEBUG_KERNEL", "RUSTKM_KERNEL"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    cache = Cache(tmp_path / "cache")
    monkeypatch.setattr(prepare, "ensure_toolchain",
                        lambda kind="debian", arch="": Toolchain("debian-trixie", tmp_path / "root"))
    monkeypatch.setattr(prepare, "resolve_source",
                        lambda *a, **k: KernelSource(tmp_path, "7.2.12", _origin("7.2")))
    monkeypatch.setattr(prepare, "record_toolchain", lambda tc, project, lock: None)
    monkeypatch.setattr(prepare, "ensure_kernel", cache.build)
    return cache


def default_kernel() -> KernelBuild:
    """The kernel of the lane chosen when nothing names one, as every verb chooses it."""
    project = find_project()
    return prepare_lane(LaneChoice.ask().lane(project), project)[1]


def _origin(series: str) -> str:
    return f"debian:linux-source-{series}=7.2.12-1~bpo13+1"


def stamp(cache: Cache, key: str, fragments: tuple[str, ...], series: str = "7.2",
          toolchain: str = "debian-trixie", age: float = 0, vmlinux: bool = True) -> KernelBuild:
    """A finished kernel build in the cache, as far as its stamp and vmlinux go."""
    build_dir = cache.root / "store" / "kernels" / key
    build_dir.mkdir(parents=True)
    build = KernelBuild(key, build_dir, KernelSource(cache.root / "src", "7.2.12", _origin(series)),
                        toolchain, "7.2.12", fragments)
    build.save()
    if vmlinux:
        (build_dir / "vmlinux").write_bytes(b"\x7fELF")
    when = 1_800_000_000 - age
    os.utime(build_dir / "rustkm-build.json", (when, when))
    return build


def test_outside_a_project_the_closest_kernel_that_fits_is_reused_and_named(cache, capsys):
    stamp(cache, "older", (*BASE, LKMPG), age=3600)
    newest = stamp(cache, "project", (*BASE, LKMPG), age=60)
    # A kernel with more built in (the kernel-tests lane's) fits, but is not the closest.
    stamp(cache, "kernel-tests", (*BASE, LKMPG, "kernel-tests"), age=0)
    assert default_kernel().build_dir == newest.build_dir
    assert cache.built == []
    said = capsys.readouterr().err
    assert f"no rustkm.toml in {Path.cwd()} or above: using the kernel 7.2.12 built at " \
           f"{newest.build_dir}" in said
    assert LKMPG in said
    exact = stamp(cache, "bare", BASE, age=7200)
    assert default_kernel().build_dir == exact.build_dir  # the fewest extra fragments first


def test_kernels_that_do_not_fit_are_passed_over_and_the_build_is_announced(cache, capsys):
    stamp(cache, "debug", (*BASE, "debug"))
    stamp(cache, "other-series", BASE, series="7.1")
    stamp(cache, "other-toolchain", BASE, toolchain="host")
    stamp(cache, "no-vmlinux", BASE, vmlinux=False)
    kernels = cache.root / "store" / "kernels"
    (kernels / "unfinished").mkdir()
    (kernels / "damaged").mkdir()
    (kernels / "damaged" / "rustkm-build.json").write_text("{")
    assert ready_kernels(Lane()) == []
    assert default_kernel().key == "new"
    assert cache.built == [BASE]
    said = capsys.readouterr().err
    assert "and no finished debian:7.2 kernel that fits in the cache: building one with the " \
           f"fragments {', '.join(BASE)} (about 10 minutes" in said


def test_the_debug_lane_reuses_only_a_debug_kernel(cache, monkeypatch):
    stamp(cache, "plain", BASE, age=0)
    debug = stamp(cache, "debug", (*BASE, "debug"), age=100)
    monkeypatch.setenv("RUSTKM_DEBUG_KERNEL", "1")
    assert default_kernel().build_dir == debug.build_dir


def test_extra_fragments_are_never_assumed(cache, tmp_path):
    stamp(cache, "plain", BASE)
    extra = tmp_path / "extra.config"
    extra.write_text("CONFIG_KASAN=y\n")
    _, build = prepare_lane(Lane(fragments=(str(extra),)), find_project())
    assert build.key == "new"


def test_inside_a_project_its_own_kernel_is_asked_for(cache, tmp_path):
    stamp(cache, "project", (*BASE, LKMPG))
    (tmp_path / "elsewhere" / "rustkm.toml").write_text("[kernel]\nsource = \"debian:7.2\"\n")
    assert default_kernel().key == "new"
    assert cache.built == [BASE]


def test_a_build_folder_lane_reads_no_lock(cache, tmp_path):
    # A kernel folder is pinned nowhere: a broken rustkm.lock is not its business.
    folder = stamp(cache, "folder", BASE)
    (tmp_path / "elsewhere" / "rustkm.lock").write_text("not [toml")
    _, build = prepare_lane(Lane(str(folder.build_dir), build_dir=folder.build_dir),
                            find_project())
    assert build.build_dir == folder.build_dir
    with pytest.raises(RustkmError, match="not valid TOML"):
        prepare_lane(Lane(), find_project())


@pytest.mark.parametrize("lane, message", [
    (Lane(stock="debian:7.2"), "unknown kernel 'debian:7.2'"),
    (Lane(source="debian:seven"), "bad kernel source 'debian:seven'"),
    (Lane(toolchain="llvm"), "unknown toolchain 'llvm'"),
    (Lane(toolchain="host"), "--toolchain host builds a local kernel tree only"),
])
def test_malformed_lanes_are_refused_before_the_toolchain(cache, monkeypatch, lane, message):
    def no_toolchain(kind: str = "debian") -> Toolchain:
        raise AssertionError("the toolchain was asked for")

    monkeypatch.setattr(prepare, "ensure_toolchain", no_toolchain)
    with pytest.raises(RustkmError, match=message):
        prepare_lane(lane, find_project())
