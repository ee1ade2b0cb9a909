"""An arm64 guest (the debian:latest@arm64 lane, under TCG): the same Machine API, and modules
of the wrong architecture refused with the reason by the insmod helper and by `rustkm check`.
Runs on an arm64 lane (--rustkm-arch arm64); elsewhere its tests are skipped saying so."""

from __future__ import annotations

from pathlib import Path

import pytest
from handmade_ko import EM_AARCH64, EM_X86_64, write_module

from rustkm.errors import RustkmError
from rustkm.modcheck import check

ROOT = Path(__file__).parents[1]
pytestmark = pytest.mark.rustkm(modules=[str(ROOT / "kmods/printerfact")])


@pytest.fixture
def arm64(rustkm_kernel):
    _, kernel = rustkm_kernel
    if kernel.arch != "arm64":
        pytest.skip(f"an arm64 lane's test (this lane's kernel is {kernel.arch}): "
                    "--rustkm-arch arm64")
    return kernel


def test_the_guest_is_arm64_and_runs_the_module(arm64, vm):
    assert vm.succeed("uname -m").strip() == "aarch64"
    assert "AArch64" in vm.succeed("cat /proc/cpuinfo") or \
        "CPU architecture: 8" in vm.succeed("cat /proc/cpuinfo")
    vm.insmod("printerfact")
    assert vm.succeed("cat /dev/printerfact").endswith("\n")
    # The guest's own helpers were cross-built too: the agent answers, rawio runs.
    assert vm.run("rawio 2>&1").status != 127


def test_an_x86_module_is_refused_with_the_reason(arm64, vm, tmp_path):
    x86 = write_module(tmp_path / "x86.ko", machine=EM_X86_64)
    with pytest.raises(RustkmError, match=r"x86\.ko is built for x86_64, and this guest is arm64"):
        vm.insmod(x86)
    report = check(x86, arm64)
    assert any("architecture" in p or "x86" in p for p in report.problems), report.problems
    ours = write_module(tmp_path / "ours.ko", machine=EM_AARCH64)
    assert not [p for p in check(ours, arm64).problems if "rchitecture" in p]
