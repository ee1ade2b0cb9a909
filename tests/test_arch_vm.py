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


def test_a_module_for_x86_only_shows_its_rustc_error_in_the_arm64_cell(arm64, tmp_path):
    import json
    import os
    import shutil
    import subprocess
    import sys

    from rustkm.matrix import BUILD_ERROR, BUILT, Cell

    for folder in ("printerfact", "lib"):
        shutil.copytree(ROOT / "kmods" / folder, tmp_path / "kmods" / folder,
                        ignore=shutil.ignore_patterns("test_*.py", "__pycache__"))
    source = tmp_path / "kmods" / "printerfact" / "printerfact.rs"
    source.write_text(source.read_text() + (
        "\n/// The CPU's time-stamp counter: x86 only.\n#[allow(dead_code)]\n"
        "fn stamp() -> u64 {\n    // SAFETY: RDTSC has no preconditions.\n"
        "    unsafe { core::arch::x86_64::_rdtsc() }\n}\n"))
    (tmp_path / "rustkm.toml").write_text((ROOT / "rustkm.toml").read_text().replace(
        '"kmods/lkmpg/kernel.config"', f'"{ROOT}/kmods/lkmpg/kernel.config"'))
    shutil.copy(ROOT / "rustkm.lock", tmp_path / "rustkm.lock")
    out = tmp_path / "matrix.json"
    # The lanes as named here: RUSTKM_ARCH (this lane's) would move both to arm64.
    env = {k: v for k, v in os.environ.items() if k not in ("RUSTKM_ARCH", "RUSTKM_KERNEL")}
    done = subprocess.run([sys.executable, "-m", "rustkm.cli", "matrix", "kmods/printerfact",
                           "--lanes", "debian:latest,debian:latest@arm64", "--build-only",
                           "--json", str(out)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=900, check=False, env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    cells = {c["lane"]: Cell(**c) for c in json.loads(out.read_text())["cells"]}
    assert cells["debian:latest"].status == BUILT
    arm = cells["debian:latest@arm64"]
    assert arm.status == BUILD_ERROR and "x86_64" in arm.detail, arm
    assert "printerfact.rs:" in arm.detail, arm


def test_an_arm64_kernel_without_its_emulator_says_what_is_missing(arm64):
    from rustkm import boot
    from rustkm.toolchain import ensure_toolchain

    with pytest.raises(RustkmError, match="has no qemu-system-aarch64") as caught, \
            boot(arm64.image, toolchain=ensure_toolchain()):
        pass
    assert caught.value.hint is not None and "qemu-system-arm" in caught.value.hint


def test_a_broken_device_tree_overlay_is_refused_with_dtcs_message(arm64, tmp_path):
    from rustkm import boot
    from rustkm.vm import VmOptions

    overlay = tmp_path / "broken.dts"
    overlay.write_text("/dts-v1/;\n/plugin/;\n&{/} {\n\tnode { compatible = \"x\" }\n};\n")
    with pytest.raises(RustkmError, match="device-tree overlay broken.dts does not compile") \
            as caught, boot("debian:latest@arm64",
                            options=VmOptions(dt_overlays=(str(overlay),))):
        pass
    assert "broken.dts:4" in (caught.value.details or ""), caught.value.details
    # An overlay whose target the guest's tree lacks does not apply.
    overlay.write_text("/dts-v1/;\n/plugin/;\n&{/nowhere} {\n\tnode { };\n};\n")
    with pytest.raises(RustkmError, match="do not apply"), \
            boot("debian:latest@arm64", options=VmOptions(dt_overlays=(str(overlay),))):
        pass
