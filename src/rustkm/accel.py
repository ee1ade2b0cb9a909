"""Choose QEMU's accelerator: KVM only when a guest kernel really boots under it, else TCG.

Opening /dev/kvm is not enough: a nested software KVM (kvm_pvm) accepts the ioctls, runs
firmware, and then fails the kernel with "KVM internal error. Suberror: 1". So the probe boots
the kernel itself with no init: it panics ("No working init found") and QEMU exits. The answer
is remembered for the host's current boot.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from rustkm.arch import Arch, host_arch
from rustkm.errors import RustkmError
from rustkm.log import say
from rustkm.toolchain import Toolchain, store_dir

_REACHED_KERNEL = "No working init found"
_decided: dict[str, str] = {}


def _host_boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def kvm_usable(tc: Toolchain, kernel: Path) -> tuple[bool, str]:
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False, "/dev/kvm is missing or not accessible to this user"
    argv = ["qemu-system-x86_64", "-accel", "kvm", "-cpu", "host", "-nodefaults",
            "-display", "none", "-m", "128", "-no-reboot", "-serial", "stdio",
            "-kernel", str(kernel), "-append", "console=ttyS0 panic=-1 rdinit=/rustkm-probe"]
    try:
        proc = subprocess.run(tc.wrap(argv, binds=[kernel.parent]), capture_output=True,
                              text=True, errors="replace", timeout=30, check=False)
    except subprocess.TimeoutExpired:
        return False, "a probe guest under KVM did not finish in 30 s"
    if _REACHED_KERNEL in proc.stdout:
        return True, "a probe guest booted under KVM"
    error = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    first = (error or proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[0]
    return False, f"a probe guest failed under KVM: {first.strip()}"


def choose_accel(tc: Toolchain, kernel: Path, wanted: str = "auto",
                 arch: Arch | None = None) -> str:
    """'kvm' or 'tcg'. With 'auto' (or RUSTKM_ACCEL), probes once per host boot. Another
    architecture's guest is always emulated (TCG)."""
    wanted = os.environ.get("RUSTKM_ACCEL", wanted)
    if arch is not None and not arch.is_host:
        if wanted == "kvm":
            raise RustkmError(f"KVM cannot run an {arch.name} guest on this "
                              f"{host_arch().name} host", hint="use --accel tcg or auto")
        return "tcg"
    if wanted in ("kvm", "tcg"):
        return wanted
    record = store_dir() / "accel.json"
    boot_id = _host_boot_id()
    if boot_id in _decided:
        return _decided[boot_id]
    try:
        saved = json.loads(record.read_text())
    except (OSError, ValueError):
        saved = {}
    if saved.get("boot_id") == boot_id and saved.get("accel") in ("kvm", "tcg"):
        accel = str(saved["accel"])
    else:
        ok, why = kvm_usable(tc, kernel)
        accel = "kvm" if ok else "tcg"
        say(f"accel: {'KVM' if ok else 'TCG (software emulation), because ' + why}")
        tmp = record.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"boot_id": boot_id, "accel": accel, "why": why}))
        tmp.replace(record)
    _decided[boot_id] = accel
    return accel
