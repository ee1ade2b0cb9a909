"""Crash dumps: which kernels can give them, how a dump folder is published, checked and kept,
then for real on the debug lane: a panic in the trouble module leaves a dump that drgn opens
with the module's symbols, reading the panicking task's stack."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rustkm import crash
from rustkm.errors import RustkmError
from rustkm.machine import KernelTrouble

ROOT = Path(__file__).parents[1]
DEBUG_FRAGMENT = ROOT / "src/rustkm/configs/debug.config"


def test_the_debug_fragment_has_what_dumps_need_and_nothing_is_missing_from_it():
    # The fragment sets the options that select VMCORE_INFO, not VMCORE_INFO itself (hidden).
    text = DEBUG_FRAGMENT.read_text()
    assert "CONFIG_PVPANIC_PCI=y" in text and "CONFIG_FW_CFG_SYSFS_CMDLINE=y" in text
    assert "CONFIG_CRASH_DUMP=y" in text
    full = "CONFIG_PVPANIC_PCI=y\nCONFIG_FW_CFG_SYSFS_CMDLINE=y\nCONFIG_VMCORE_INFO=y\n"
    assert crash.missing_options(full) == []
    assert crash.missing_options("CONFIG_PVPANIC_PCI=m\n# CONFIG_VMCORE_INFO is not set\n") == [
        "CONFIG_PVPANIC_PCI", "CONFIG_FW_CFG_SYSFS_CMDLINE", "CONFIG_VMCORE_INFO"]


def test_the_setting_is_auto_and_forcing_dumps_on_a_kernel_without_them_is_refused(monkeypatch):
    monkeypatch.delenv("RUSTKM_CRASH_DUMPS", raising=False)
    assert crash.dumps_wanted(True, []) and not crash.dumps_wanted(False, ["CONFIG_X"])
    monkeypatch.setenv("RUSTKM_CRASH_DUMPS", "0")
    assert not crash.dumps_wanted(True, [])
    monkeypatch.setenv("RUSTKM_CRASH_DUMPS", "1")
    with pytest.raises(RustkmError, match="CONFIG_VMCORE_INFO missing") as refused:
        crash.dumps_wanted(False, ["CONFIG_VMCORE_INFO"])
    assert "--kernel debug" in (refused.value.hint or "")
    monkeypatch.setenv("RUSTKM_CRASH_DUMPS", "yes")
    with pytest.raises(RustkmError, match="not a setting"):
        crash.dumps_wanted(True, [])


def _folder(root: Path, name: str, vmlinux: Path | None = None) -> Path:
    folder = root / name
    (folder / "modules").mkdir(parents=True)
    (folder / "vmcore").write_bytes(b"\x7fELF")
    (folder / crash.MANIFEST).write_text(json.dumps(
        {"vm": "t", "release": "7.2.12", "vmlinux": str(vmlinux) if vmlinux else None}))
    return folder


def test_only_the_newest_dumps_are_kept_and_one_being_written_is_left_alone(tmp_path):
    for i in range(7):
        _folder(tmp_path, f"2026120{i}-000000-vm-1")
    (tmp_path / "20261209-000000-vm-2.partial").mkdir()
    crash.prune(tmp_path, 5)
    assert [p.name[:8] for p in crash.saved(tmp_path)] == [
        "20261206", "20261205", "20261204", "20261203", "20261202"]
    assert (tmp_path / "20261209-000000-vm-2.partial").is_dir()


def test_a_dump_is_checked_before_drgn_is_started(tmp_path):
    with pytest.raises(RustkmError, match="no crash dump at"):
        crash.open_dump(tmp_path / "nothing")
    with pytest.raises(RustkmError, match="not a rustkm crash dump"):
        crash.open_dump(tmp_path)
    gone = _folder(tmp_path, "a", vmlinux=tmp_path / "removed/vmlinux")
    with pytest.raises(RustkmError, match="has no vmlinux") as caught:
        crash.open_dump(gone)
    assert "rustkm kernel build --debug" in (caught.value.hint or "")
    vmlinux = tmp_path / "vmlinux"
    vmlinux.write_bytes(b"\x7fELF")
    folder = _folder(tmp_path, "b", vmlinux=vmlinux)
    (folder / "modules/trouble.ko").write_bytes(b"\x7fELF")
    dump = crash.open_dump(folder / "vmcore")  # the vmcore names its folder
    argv = crash.drgn_argv(dump, "print(1)", [])
    assert argv[argv.index("-c") + 1] == str(folder / "vmcore")
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "-s"] == [
        str(vmlinux), str(folder / "modules/trouble.ko")]
    assert argv[-2:] == ["-e", "print(1)"]


def test_drgn_missing_names_the_package(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(RustkmError, match="drgn is not installed") as caught:
        crash.require_drgn()
    assert "pip install drgn" in (caught.value.hint or "")


STACK = """\
from drgn.helpers.linux.cpumask import for_each_online_cpu
from drgn.helpers.linux.sched import cpu_curr
for cpu in for_each_online_cpu(prog):
    task = cpu_curr(prog, cpu)
    print("task", task.comm.string_().decode(), "cpu", cpu)
    print(prog.stack_trace(task))
"""


@pytest.mark.rustkm(modules=["kmods/trouble"])
def test_a_panic_in_a_module_leaves_a_dump_that_drgn_reads(vm, tmp_path):
    if vm.kernel.crash_missing:
        pytest.skip("crash dumps need the debug lane's kernel (RUSTKM_DEBUG_KERNEL=1): "
                    f"{', '.join(vm.kernel.crash_missing)} missing here")
    vm.succeed("echo 1 > /proc/sys/kernel/panic_on_oops")  # the Rust panic's BUG panics
    with pytest.raises(KernelTrouble) as trouble:
        vm.insmod("trouble", action=2)
    dump = vm.crash_dump
    assert dump is not None and f"rustkm crash {dump}" in (trouble.value.hint or "")
    assert (dump / "vmcore").stat().st_size > 64 << 20  # the guest's memory
    assert (dump / "modules/trouble.ko").is_file()
    script = tmp_path / "stack.py"
    script.write_text(STACK)
    read = subprocess.run([sys.executable, "-m", "rustkm.cli", "crash", str(dump), str(script)],
                          capture_output=True, text=True, timeout=300, check=False)
    out = read.stdout + read.stderr
    assert read.returncode == 0, out
    # The panicking task is insmod, stopped in panic() called from the module's init: drgn
    # unwinds through the Rust frames and names them from the module's symbols (rustkm crash
    # demangles a script's output).
    assert "task insmod" in out, out
    frames = out[out.index("task insmod"):]
    assert "panic" in frames, out
    # The module's frame, demangled, at its line in trouble.rs.
    assert "<trouble::Trouble as kernel::Module>::init" in frames, out
    assert "trouble.rs:" in frames, out
