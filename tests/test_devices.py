"""QEMU devices per VM: -device strings parsed and checked against QEMU's own list before any
boot, a property QEMU rejects reported with QEMU's message, devices in the guest and in the
snapshot key, and how VMs with devices start."""

import os
import pty
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rustkm import boot
from rustkm.devices import (
    check_devices,
    device_driver,
    parse_help,
    qemu_device_names,
    snapshot_obstacle,
    split_options,
)
from rustkm.errors import RustkmError
from rustkm.vm import VmOptions, qemu_argv

ROOT = Path(__file__).parents[1]

HELP = '''Controller/Bridge/Hub devices:
name "pci-bridge", bus PCI, desc "Standard PCI Bridge"
name "qemu-xhci", bus PCI

Misc devices:
name "edu", bus PCI
name "pci-testdev", bus PCI, desc "PCI Test Device"
name "tmp105", bus i2c-bus
'''


@pytest.mark.parametrize(("spec", "driver"), [
    ("edu", "edu"),
    ("tmp105,address=0x48,id=sensor", "tmp105"),
    ("driver=tmp105,address=0x48", "tmp105"),
    ("address=0x48,driver=tmp105", "tmp105"),
    ('{"driver": "edu", "id": "e0"}', "edu"),
    ("edu,id=a,,b", "edu"),
])
def test_the_driver_is_read_as_qemu_reads_it(spec, driver):
    assert device_driver(spec) == driver


def test_doubled_commas_are_commas():
    assert split_options("a,b=x,,y,c") == ["a", "b=x,y", "c"]
    assert split_options("edu") == ["edu"]


@pytest.mark.parametrize(("spec", "message"), [
    ("", "not a QEMU -device string"),
    ("  ", "not a QEMU -device string"),
    ("edu\nfoo", "not a QEMU -device string"),
    ("address=0x48", "names no driver"),
    ("driver=", "names no driver"),
    ("help", "asks QEMU for help"),
    ("edu,help", "asks QEMU for help"),
    ("tmp105,address=?", "asks QEMU for help"),
    ("{nope", "not valid JSON"),
    ('{"id": "x"}', 'no "driver" string'),
])
def test_malformed_devices_are_refused(spec, message):
    with pytest.raises(RustkmError, match=message):
        device_driver(spec)


def test_help_output_gives_the_names():
    assert parse_help(HELP) == {"pci-bridge", "qemu-xhci", "edu", "pci-testdev", "tmp105"}


def test_an_unknown_device_is_refused_with_qemus_names_and_the_closest_first():
    with pytest.raises(RustkmError) as caught:
        check_devices(["edu", "tmp10,address=0x48"], parse_help(HELP))
    error = caught.value
    assert "QEMU has no device 'tmp10'" in error.message
    assert error.hint is not None and error.hint.startswith("did you mean tmp105?")
    assert error.details is not None
    assert "edu, pci-bridge, pci-testdev, qemu-xhci, tmp105" in error.details
    check_devices(["edu", "tmp105,address=0x48", '{"driver": "qemu-xhci"}'], parse_help(HELP))


def test_devices_without_migration_state_make_the_vm_boot_cold():
    assert snapshot_obstacle([]) is None
    assert snapshot_obstacle(["qemu-xhci", "usb-kbd"]) is None
    why = snapshot_obstacle(["qemu-xhci", "edu", "edu,id=two"])
    assert why is not None and why.startswith("device(s) edu have no state")


def test_devices_go_on_qemus_command_line_in_order():
    options = VmOptions(devices=("edu", "tmp105,address=0x48"))
    argv = qemu_argv(Path("/k"), Path("/i"), options, "tcg", Path("/c"), Path("/a"))
    at = argv.index("edu")
    assert argv[at - 1:at + 3] == ["-device", "edu", "-device", "tmp105,address=0x48"]
    assert "edu" not in qemu_argv(Path("/k"), Path("/i"), VmOptions(), "tcg", Path("/c"),
                                  Path("/a"))


def test_a_device_without_a_driver_is_refused_before_the_toolchain(tmp_path):
    cache = tmp_path / "cache"
    result = subprocess.run(
        [sys.executable, "-m", "rustkm.cli", "run", "--device", "address=0x48", "--", "true"],
        cwd=ROOT, env={"RUSTKM_CACHE": str(cache), "PATH": str(tmp_path / "none")},
        capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert "error: device 'address=0x48' names no driver" in result.stderr
    assert not (cache / "toolchain").exists()


# -- against the real QEMU and kernel --------------------------------------------------------


def pci_ids(vm) -> list[str]:
    return vm.succeed("for d in /sys/bus/pci/devices/*; do echo $(cat $d/vendor):$(cat "
                      "$d/device); done").split()


def test_qemus_list_is_read_once_and_cached(rustkm_kernel):
    tc, _ = rustkm_kernel
    names = qemu_device_names(tc)
    assert {"edu", "pci-testdev", "qemu-xhci", "usb-kbd"} <= names
    start = time.monotonic()
    assert qemu_device_names(tc) == names
    assert time.monotonic() - start < 0.5


def test_an_unknown_device_is_refused_before_boot(rustkm_kernel):
    tc, kernel = rustkm_kernel
    start = time.monotonic()
    with (pytest.raises(RustkmError, match="QEMU has no device 'edux'") as caught,
          boot(kernel, options=VmOptions(devices=("edux",)), toolchain=tc)):
        pytest.fail("booted")
    assert caught.value.hint is not None and "did you mean edu" in caught.value.hint
    assert time.monotonic() - start < 10


def test_a_property_qemu_rejects_gets_qemus_message_without_a_hang(rustkm_kernel):
    tc, kernel = rustkm_kernel
    start = time.monotonic()
    with (pytest.raises(RustkmError) as caught,
          boot(kernel, options=VmOptions(devices=("edu,bogus=1",)), toolchain=tc)):
        pytest.fail("booted")
    assert "Property 'edu.bogus' not found" in str(caught.value)
    assert time.monotonic() - start < 15


@pytest.mark.rustkm(devices=["edu", "pci-testdev"])
def test_pci_devices_appear_in_the_guest_and_the_vm_booted_cold(vm):
    ids = pci_ids(vm)
    assert "0x1234:0x11e8" in ids and "0x1b36:0x0005" in ids  # edu, pci-testdev
    assert vm.boot_how.startswith(("cold boot: device(s) edu, pci-testdev have no state",
                                   "cold boot: snapshots are off"))


@pytest.mark.rustkm(devices=["qemu-xhci,id=xhci"])
def test_snapshot_safe_devices_restore_and_qmp_reaches_them(vm):
    assert not vm.boot_how.startswith("cold boot: device")
    assert "0x1b36:0x000d" in pci_ids(vm)  # qemu-xhci
    assert "xhci" in [p["name"] for p in vm.qmp("qom-list", path="/machine/peripheral")]


def usb_products(vm) -> list[str]:
    """The product strings of the USB devices the guest enumerated (hubs included)."""
    return vm.succeed("cat /sys/bus/usb/devices/*/product 2>/dev/null; true").splitlines()


@pytest.mark.rustkm(devices=["qemu-xhci,id=xhci", "usb-kbd,bus=xhci.0"])
def test_usb_devices_enumerate_behind_xhci_and_follow_qmp_hotplug(vm):
    # A cold-booted guest's agent can be ready before the hub has enumerated its ports.
    vm.wait_until_succeeds("grep -qx 'QEMU USB Keyboard' /sys/bus/usb/devices/*/product",
                           timeout=30)
    # xHCI reports a port change itself: no ACPI, no rescan.
    vm.qmp("device_add", driver="usb-tablet", bus="xhci.0", id="tablet")
    vm.wait_until_succeeds("grep -qx 'QEMU USB Tablet' /sys/bus/usb/devices/*/product",
                           timeout=30)
    vm.qmp("device_del", id="tablet")
    vm.wait_until_fails("grep -qx 'QEMU USB Tablet' /sys/bus/usb/devices/*/product",
                        timeout=30)
    assert "QEMU USB Keyboard" in usb_products(vm)


@pytest.mark.rustkm(devices=["qemu-xhci,id=xhci", "usb-kbd,bus=xhci.0"])
def test_a_rust_usb_driver_binds_emulated_devices_and_lets_them_go(vm, kernel):
    # The kernel's own Rust USB driver sample (built as a module with the devices fragment),
    # given QEMU's HID devices' id (0627:0001): the keyboard, then a hotplugged tablet.
    vm.insmod(Path(kernel.build_dir) / "samples/rust/rust_driver_usb.ko")
    drivers = "/sys/bus/usb/drivers/rust_driver_usb"
    vm.succeed(f"echo 0627 0001 > {drivers}/new_id")

    def bound() -> int:
        return int(vm.succeed(f"ls {drivers} | grep -c ':' || true").strip())

    vm.wait_until_succeeds(f"ls {drivers} | grep -q ':'", timeout=30)
    assert bound() == 1
    vm.qmp("device_add", driver="usb-tablet", bus="xhci.0", id="tablet")
    vm.wait_until_succeeds(f"[ $(ls {drivers} | grep -c ':') = 2 ]", timeout=30)
    vm.qmp("device_del", id="tablet")  # unplugged while bound: disconnect runs
    vm.wait_until_succeeds(f"[ $(ls {drivers} | grep -c ':') = 1 ]", timeout=30)
    log = vm.succeed("dmesg")
    assert log.count("Rust USB driver sample probed") == 2
    assert log.count("Rust USB driver sample disconnected") == 1
    vm.rmmod("rust_driver_usb")  # the keyboard's binding goes with it
    assert vm.succeed("dmesg").count("Rust USB driver sample disconnected") == 2
    assert "QEMU USB Keyboard" in usb_products(vm)


def rustkm_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rustkm.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, check=False)


def test_rustkm_run_adds_devices(rustkm_kernel):
    result = rustkm_cli("run", "--device", "edu", "--device", "pci-testdev",
                        "kmods/drivers/edu", "--", "cat", "/sys/class/misc/edu0/device/vendor",
                        "/sys/bus/pci/devices/0000:00:05.0/device")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split() == ["0x1234", "0x0005"]


def test_rustkm_run_refuses_an_unknown_device_with_qemus_names(rustkm_kernel):
    result = rustkm_cli("run", "--device", "edux,id=a", "--", "true")
    assert result.returncode == 1
    assert "error: QEMU has no device 'edux'" in result.stdout + result.stderr
    assert "did you mean edu?" in result.stdout + result.stderr
    assert "booting" not in result.stdout + result.stderr


def test_rustkm_shell_adds_devices(kernel):
    # The terminal reader of rustkm shell's own test.
    from test_shell import _read_until, wait_for_prompt

    main, side = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "rustkm.cli", "shell", "--device", "edu",
                             "kmods/drivers/edu"],
                            stdin=side, stdout=side, stderr=side, cwd=ROOT, close_fds=True)
    os.close(side)
    try:
        wait_for_prompt(main)
        os.write(main, b"cat /sys/class/misc/edu0/device/vendor; echo marker-$((6*7))\r")
        out = _read_until(main, b"marker-42", 60)
        assert b"0x1234" in out
        os.write(main, b"exit\r")
        assert b"the guest shell exited" in _read_until(main, b"the guest shell exited", 60)
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
        os.close(main)
