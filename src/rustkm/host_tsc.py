"""The host's TSC rate, for guests under TCG.

Under TCG a guest's TSC reads the host's, at the host's rate. Left to calibrate it, the guest
kernel sometimes manages (against the emulated PIT, when the host is idle) and sometimes gives
up and falls back to jiffies: two guests of one kernel keep time differently, and a guest
snapshotted before its TSC's refined calibration (a second after boot) runs it after its
restore, against a reference that jumped. Told the rate (`tsc_early_khz=`), every guest takes
the TSC as its clocksource at once, at the right rate (a guest `sleep 2` takes 2.0 s).

The rate is measured once per host boot, only on an invariant TSC (constant and nonstop), by
reading the TSC against CLOCK_MONOTONIC_RAW: a few instructions of `rdtsc` run through
ctypes, since Python has no way to read it. The figure is cached per host boot, so that
every guest of that boot gets the same kernel command line (snapshots are keyed by it).
"""

from __future__ import annotations

import ctypes
import json
import mmap
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from rustkm.cache import locked, write_atomic
from rustkm.toolchain import store_dir

# rdtsc; shl rdx, 32; or rax, rdx; ret
_RDTSC = bytes([0x0F, 0x31, 0x48, 0xC1, 0xE2, 0x20, 0x48, 0x09, 0xD0, 0xC3])
_memo: list[int | None] = []


def invariant_tsc(cpuinfo: str) -> bool:
    """Whether /proc/cpuinfo's flags promise a TSC that ticks at one rate, always."""
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags = set(line.partition(":")[2].split())
            return {"tsc", "constant_tsc", "nonstop_tsc"} <= flags
    return False


def _reader() -> tuple[mmap.mmap, Callable[[], int]]:
    code = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    code.write(_RDTSC)
    address = ctypes.addressof(ctypes.c_char.from_buffer(code))
    function: Callable[[], int] = ctypes.CFUNCTYPE(ctypes.c_uint64)(address)
    return code, function


def measure_khz(rounds: int = 5, seconds: float = 0.02) -> int:
    """The TSC's rate in kHz, to the nearest 100 kHz: the median of a few short rounds."""
    code, rdtsc = _reader()
    try:
        rates = []
        for _ in range(rounds):
            t0, c0 = time.clock_gettime_ns(time.CLOCK_MONOTONIC_RAW), rdtsc()
            time.sleep(seconds)
            t1, c1 = time.clock_gettime_ns(time.CLOCK_MONOTONIC_RAW), rdtsc()
            rates.append((c1 - c0) * 1e6 / (t1 - t0))  # ticks per ms: kHz
    finally:
        del rdtsc
        code.close()
    return int(round(statistics.median(rates), -2))


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def host_tsc_khz() -> int | None:
    """The host TSC's rate in kHz, or None where it cannot be trusted or read, or where
    RUSTKM_GUEST_TSC=0 asks guests to calibrate on their own."""
    if os.environ.get("RUSTKM_GUEST_TSC", "1") == "0":
        return None
    if _memo:
        return _memo[0]
    khz = None
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        cpuinfo = ""
    if platform.machine() == "x86_64" and invariant_tsc(cpuinfo) and (boot := _boot_id()):
        khz = _cached_khz(store_dir() / "host-tsc.json", boot)
    _memo.append(khz)
    return khz


def _cached_khz(path: Path, boot: str) -> int | None:
    def read() -> int | None:
        try:
            data = json.loads(path.read_text())
            return int(data["khz"]) if data.get("boot_id") == boot else None
        except (OSError, ValueError, KeyError, TypeError):
            return None

    if (khz := read()) is not None:
        return khz
    with locked(path, "the host's TSC rate"):
        if (khz := read()) is not None:
            return khz
        try:
            khz = measure_khz()
        except (OSError, ValueError):  # no executable memory here (a hardened host)
            return None
        if khz <= 0:
            return None
        write_atomic(path, json.dumps({"boot_id": boot, "khz": khz}))
        return khz
