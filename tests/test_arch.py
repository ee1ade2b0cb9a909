"""Architectures: lanes spelled NAME@ARCH or chosen with --arch and RUSTKM_ARCH, and what an
arm64 guest's QEMU command line and kernel image look like."""

from __future__ import annotations

import gzip
import textwrap
from pathlib import Path

import pytest

from rustkm.arch import ARM64, X86_64, get_arch, host_arch
from rustkm.errors import RustkmError
from rustkm.kernel.build import make_args
from rustkm.kernel.choice import LaneChoice
from rustkm.kernel.guest import image_arch
from rustkm.kernel.lane import resolve_lane, resolve_lanes, with_arch
from rustkm.project import Project, find_project
from rustkm.stock import StockToolchainNeeds, lane_name
from rustkm.vm import VmOptions, qemu_argv, shell_device

pytestmark = pytest.mark.skipif(host_arch() != X86_64, reason="written for an x86_64 host")


def test_names_and_aliases():
    assert get_arch("aarch64") == get_arch("ARM64") == ARM64
    assert get_arch("amd64") == get_arch("x86_64") == X86_64
    with pytest.raises(RustkmError, match="unknown architecture 'riscv64' \\(from --arch\\)") as e:
        get_arch("riscv64", "--arch")
    assert e.value.hint is not None and "arm64" in e.value.hint


def test_a_lane_on_another_architecture(tmp_path):
    project = Project(root=tmp_path)
    lane = resolve_lane("debian:latest@arm64", project)
    assert (lane.name, lane.stock, lane.arch) == ("debian:latest@arm64", "debian:latest", "arm64")
    assert resolve_lane("debian:latest@x86_64", project).name == "debian:latest"
    # A release names its flavour.
    assert resolve_lane("debian:7.2.13+deb14-arm64", project).arch == "arm64"
    assert with_arch("debian:next", "aarch64") == "debian:next@arm64"
    assert with_arch("debian:next", "x86_64") == "debian:next"
    both = resolve_lanes("debian:latest,debian:latest@arm64", project)
    assert [lane.name for lane in both] == ["debian:latest", "debian:latest@arm64"]
    with pytest.raises(RustkmError, match="unknown architecture 'arm65'"):
        resolve_lane("debian:latest@arm65", project, "--lanes")


def test_arch_chooses_the_stock_lane_and_a_self_built_one_on_request(tmp_path, monkeypatch):
    monkeypatch.delenv("RUSTKM_KERNEL", raising=False)
    monkeypatch.delenv("RUSTKM_DEBUG_KERNEL", raising=False)
    project = Project(root=tmp_path)
    lane = LaneChoice.ask(arch="arm64").lane(project)
    assert (lane.stock, lane.arch, lane.name) == ("debian:latest", "arm64", "debian:latest@arm64")
    monkeypatch.setenv("RUSTKM_ARCH", "aarch64")
    assert LaneChoice.ask().lane(project).name == "debian:latest@arm64"
    # The self-built arm64 kernel (by hand: not in CI): its own guest and devices fragments,
    # ARCH=arm64 in every make call and in the build's key.
    lane = LaneChoice.ask("default").lane(project)
    assert (lane.name, lane.arch, lane.stock) == ("default@arm64", "arm64", None)
    lane.check()
    names = [f.name for f in lane.fragment_list()]
    assert names[0] == "qemu-guest-arm64" and "devices-arm64" in names and "devices" not in names
    assert "ARCH=arm64" in make_args(1, "arm64") and not any(
        a.startswith("ARCH=") for a in make_args(1))
    with pytest.raises(RustkmError, match="--toolchain host builds for this host's"):
        LaneChoice.ask("default").lane(project).with_options(toolchain="host").check()
    monkeypatch.setenv("RUSTKM_ARCH", "sparc")
    with pytest.raises(RustkmError, match="from RUSTKM_ARCH"):
        LaneChoice.ask()


def test_a_project_lane_names_its_architecture(tmp_path):
    (tmp_path / "rustkm.toml").write_text(textwrap.dedent("""
        [lanes.phone]
        arch = "aarch64"
        [lanes.bad]
        arch = 64
    """))
    with pytest.raises(RustkmError, match="lanes.bad.arch"):
        find_project(tmp_path)
    (tmp_path / "rustkm.toml").write_text('[lanes.phone]\narch = "aarch64"\n')
    assert resolve_lane("phone", find_project(tmp_path)).arch == "arm64"


def test_the_lock_section_and_toolchain_of_an_arm64_lane():
    assert lane_name("latest", ARM64) == "debian:latest@arm64"
    assert lane_name("latest", X86_64) == lane_name("latest") == "debian:latest"
    needs = StockToolchainNeeds("rustc 1.93.0 (Debian)", "aarch64-linux-gnu-gcc-15 (Debian "
                                "15.2.0-4) 15.2.0", "bindgen 0.72.1")
    packages = needs.packages_for(ARM64)
    assert {"gcc-15", "gcc-15-aarch64-linux-gnu", "libc6-dev-arm64-cross",
            "qemu-system-arm"} <= set(packages)
    assert needs.cross_package(ARM64) == "gcc-15-aarch64-linux-gnu"
    assert "gcc-15-aarch64-linux-gnu" not in needs.packages_for(X86_64)


def test_an_arm64_guest_boots_on_virt_with_its_agent_on_virtio(tmp_path):
    options = VmOptions(shell_port=True)
    argv = qemu_argv(Path("Image"), Path("i.cpio"), options, "tcg", tmp_path / "console.sock",
                     tmp_path / "agent.sock", virtio=True, arch=ARM64)
    text = " ".join(argv)
    assert argv[0] == "qemu-system-aarch64" and "-M virt" in text
    assert "console=ttyAMA0" in text and "tsc" not in text
    assert "name=rustkm.agent" in text and "name=rustkm.shell" in text
    assert argv.count("-serial") == 1 and "-nic none" in text
    assert "virtconsole,bus=vser0.0,chardev=shell,name=rustkm.shell" in text
    assert shell_device(ARM64) == "/dev/hvc0" and shell_device(X86_64) == "/dev/ttyS2"
    with pytest.raises(RustkmError, match="needs virtio-pci and virtio-console"):
        qemu_argv(Path("Image"), Path("i.cpio"), options, "tcg", tmp_path / "c", tmp_path / "a",
                  virtio=False, arch=ARM64)


def test_the_architecture_of_a_kernel_image(tmp_path):
    # Documentation/arch/arm64/booting.rst: the header's magic "ARM\x64" at offset 56.
    header = bytearray(64)
    header[56:60] = b"ARMd"
    (tmp_path / "Image").write_bytes(bytes(header) + b"\0" * 64)
    (tmp_path / "Image.gz").write_bytes(gzip.compress(bytes(header) + b"\0" * 64))
    (tmp_path / "bzImage").write_bytes(b"\0" * 0x202 + b"HdrS" + b"\0" * 64)
    assert image_arch(tmp_path / "Image") == ARM64
    assert image_arch(tmp_path / "Image.gz") == ARM64
    assert image_arch(tmp_path / "bzImage") == X86_64


def test_device_tree_overlays_are_for_arm64_guests_and_checked_before_any_boot(tmp_path):
    from rustkm.devicetree import overlay_sources

    options = VmOptions(dt_overlays=(str(tmp_path / "x.dts"),))
    with pytest.raises(RustkmError, match="an x86_64 guest has none") as caught:
        qemu_argv(Path("bzImage"), Path("i.cpio"), options, "tcg", tmp_path / "c",
                  tmp_path / "a", virtio=True)
    assert caught.value.hint is not None and "--arch arm64" in caught.value.hint
    argv = qemu_argv(Path("Image"), Path("i.cpio"), options, "tcg", tmp_path / "c",
                     tmp_path / "a", virtio=True, arch=ARM64, dtb=tmp_path / "merged.dtb")
    assert argv[argv.index("-dtb") + 1] == str(tmp_path / "merged.dtb")
    with pytest.raises(RustkmError, match="x.dts: No such file"):
        overlay_sources([tmp_path / "x.dts"])
    (tmp_path / "x.dtb").write_bytes(b"\xd0\x0d\xfe\xed")
    with pytest.raises(RustkmError, match="expected a .dts source or a compiled .dtbo"):
        overlay_sources([tmp_path / "x.dtb"])
