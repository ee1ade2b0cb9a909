"""The host's TSC rate for TCG guests: read only from an invariant TSC, measured close to what
the host kernel calibrated, cached per host boot; and guests keep time by it."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from rustkm import host_tsc
from rustkm.host_tsc import invariant_tsc, measure_khz

CPUINFO = Path("/proc/cpuinfo").read_text()
INVARIANT = invariant_tsc(CPUINFO)


def test_only_an_invariant_tsc_counts():
    assert invariant_tsc("flags\t\t: fpu tsc constant_tsc nonstop_tsc\n")
    assert not invariant_tsc("flags\t\t: fpu tsc constant_tsc\n")
    assert not invariant_tsc("processor\t: 0\n")


@pytest.mark.skipif(not INVARIANT, reason="the host's TSC is not invariant")
def test_the_measured_rate_matches_the_host_kernels():
    khz = measure_khz()
    dmesg = subprocess.run(["dmesg"], capture_output=True, text=True, check=False).stdout
    found = re.findall(r"tsc: (?:Refined TSC clocksource calibration: |Detected )"
                       r"([0-9.]+) MHz", dmesg)
    if not found:
        pytest.skip("the host kernel's log does not say its TSC rate")
    assert abs(khz - float(found[-1]) * 1000) / khz < 0.001, (khz, found)


def test_cached_per_host_boot(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(host_tsc, "measure_khz", lambda: calls.append(1) or 2596200)
    path = tmp_path / "host-tsc.json"
    assert host_tsc._cached_khz(path, "boot-a") == 2596200
    assert host_tsc._cached_khz(path, "boot-a") == 2596200 and len(calls) == 1
    assert json.loads(path.read_text()) == {"boot_id": "boot-a", "khz": 2596200}
    path.write_text("{damaged")
    assert host_tsc._cached_khz(path, "boot-a") == 2596200 and len(calls) == 2
    assert host_tsc._cached_khz(path, "boot-b") == 2596200 and len(calls) == 3


@pytest.mark.skipif(not INVARIANT, reason="the host's TSC is not invariant")
def test_guests_keep_time_by_the_tsc(vm):
    if vm.accel != "tcg":
        pytest.skip("under KVM the guest has its own clock")
    assert vm.succeed("cat /sys/devices/system/clocksource/clocksource0/current_clocksource") \
        .strip() in ("tsc-early", "tsc")
    before, start = float(vm.succeed("cut -d' ' -f1 /proc/uptime")), time.monotonic()
    time.sleep(2)
    after, elapsed = float(vm.succeed("cut -d' ' -f1 /proc/uptime")), time.monotonic() - start
    # /proc/uptime has 10 ms steps; each agent call adds a few ms of host time.
    assert abs((after - before) - elapsed) < 0.1, (after - before, elapsed)
