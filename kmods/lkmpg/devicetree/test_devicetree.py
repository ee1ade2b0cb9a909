"""LKMPG devicetree on the arm64 guest: the overlay's devices exist from boot, the driver binds
to the enabled ones, reads their properties (and its defaults where a node has none), unbinds
and binds again through sysfs, and leaves with rmmod."""

import pytest

pytestmark = pytest.mark.rustkm(modules=["."], devicetree=["dt-overlay.dts"])

DRIVER = "/sys/bus/platform/drivers/devicetree"
NODES = ("c000000.lkmpg_device", "c001000.lkmpg_device", "c002000.lkmpg_device")


def bound(vm) -> list[str]:
    return sorted(vm.succeed(f"ls {DRIVER} | grep lkmpg_device || true").split())


def test_the_overlay_describes_the_devices_before_the_module(vm):
    base = "/proc/device-tree/lkmpg_device@c000000"
    assert vm.succeed(f"cat {base}/compatible").rstrip("\0") == "lkmpg,example-device"
    assert vm.succeed(f"cat {base}/label").rstrip("\0") == "LKMPG Test Device"
    # The kernel made platform devices of the nodes at boot: they wait for their driver.
    devices = set(vm.succeed("ls /sys/bus/platform/devices").split())
    assert set(NODES) <= devices
    assert "c003000.lkmpg_device" not in devices  # status = "disabled": no device


def test_probe_reads_each_nodes_properties(vm):
    vm.insmod("devicetree")  # the driver binds to the waiting devices before insmod returns
    log = vm.succeed("dmesg")
    for text in ("Found label property: LKMPG Test Device",
                 "Found reg property: 0xc000000 (size 0x1000)",
                 "Found custom-value property: 100",
                 "has-clock property: present",
                 "Found label property: LKMPG Secondary Device",
                 "Found custom-value property: 200",
                 "has-clock property: absent",
                 "No label property found, using default",
                 "No custom-value found, using default: 42"):
        assert f"devicetree: {text}" in log
    assert log.count("devicetree: Device probe successful") == 3
    assert "LKMPG Disabled Device" not in log  # status = "disabled": never probed
    assert bound(vm) == list(NODES)


def test_unbind_and_bind_through_sysfs(vm):
    vm.insmod("devicetree")
    vm.succeed(f"echo c001000.lkmpg_device > {DRIVER}/unbind")
    vm.wait_for_console_text("devicetree: Removing device LKMPG Secondary Device")
    assert bound(vm) == [NODES[0], NODES[2]]
    vm.succeed(f"echo c001000.lkmpg_device > {DRIVER}/bind")
    assert bound(vm) == list(NODES)
    # A device that is not one of ours is refused, and nothing breaks.
    other = vm.succeed("ls /sys/bus/platform/devices | grep -v lkmpg_device | head -n 1").strip()
    assert other and vm.run(f"echo {other} > {DRIVER}/bind").status != 0
    assert bound(vm) == list(NODES)


def test_rmmod_removes_every_device_and_a_reload_binds_them_again(vm):
    for _ in range(2):
        vm.insmod("devicetree")
        assert bound(vm) == list(NODES)
        vm.rmmod("devicetree")
        log = vm.succeed("dmesg")
        for label in ("LKMPG Test Device", "LKMPG Secondary Device", "unnamed"):
            assert f"devicetree: Removing device {label}" in log
        assert vm.run(f"test -e {DRIVER}").status != 0
