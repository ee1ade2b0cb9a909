"""LKMPG devicemodel in Rust: a platform driver bound to its own platform device; probe and
remove run at load, unload, and on unbind/bind through sysfs."""

import pytest

pytestmark = pytest.mark.rustkm(modules=["."])

DRIVER = "/sys/bus/platform/drivers/devicemodel_example"
DEVICE = "/sys/bus/platform/devices/devicemodel_example"
GREETING = "devicemodel greeting: Hello from the Rust device model; 42"


def count(vm, text: str) -> int:
    """Lines of the kernel log holding `text`: dmesg, as the serial console can lose a line
    when the host is loaded."""
    return vm.dmesg().count(text)


def wait_count(vm, text: str, n: int) -> None:
    """Until the kernel log holds `text` n times (a wait for text alone would find the
    earlier ones)."""
    vm.wait_until_succeeds(f"test $(dmesg | grep -cF '{text}') -ge {n}", timeout=30)


@pytest.fixture
def bound(vm):
    vm.insmod("devicemodel")
    for line in ["devicemodel init", "devicemodel probe", GREETING]:
        vm.wait_for_console_text(line)
    return vm


def test_probe_binds_the_driver_to_its_device(bound):
    assert bound.succeed(f"readlink {DEVICE}/driver").strip().endswith("/devicemodel_example")
    assert bound.succeed(f"ls {DRIVER}").split().count("devicemodel_example") == 1
    assert bound.succeed(f"cat {DEVICE}/modalias").strip() == "platform:devicemodel_example"
    assert count(bound, "devicemodel probe") == 1


def test_unbind_and_bind_call_remove_and_probe(bound):
    for round_ in range(1, 3):
        bound.succeed(f"echo devicemodel_example > {DRIVER}/unbind")
        wait_count(bound, "devicemodel example removed", round_)
        assert count(bound, "devicemodel example removed") == round_
        assert bound.run(f"test -e {DEVICE}/driver").status != 0
        assert bound.run(f"test -e {DRIVER}/devicemodel_example").status != 0

        bound.succeed(f"echo devicemodel_example > {DRIVER}/bind")
        bound.wait_until_succeeds(f"test -e {DRIVER}/devicemodel_example", timeout=30)
        assert count(bound, "devicemodel probe") == round_ + 1
        assert count(bound, GREETING) == round_ + 1


def test_bad_unbind_and_bind_requests_are_refused(bound):
    # Not bound to this driver / no such device: ENODEV, nothing called.
    bound.succeed(f"echo devicemodel_example > {DRIVER}/unbind")
    bound.wait_for_console_text("devicemodel example removed")
    again = bound.run(f"echo devicemodel_example > {DRIVER}/unbind")
    assert again.status != 0 and "No such device" in again.err
    for name in ["nosuchdevice", "x" * 300]:
        result = bound.run(f"echo {name} > {DRIVER}/bind")
        assert result.status != 0 and "No such device" in result.err
    # Binding a bound device again: EBUSY, probe not called twice.
    bound.succeed(f"echo devicemodel_example > {DRIVER}/bind")
    bound.wait_until_succeeds(f"test -e {DRIVER}/devicemodel_example", timeout=30)
    busy = bound.run(f"echo devicemodel_example > {DRIVER}/bind")
    assert busy.status != 0 and "busy" in busy.err
    assert count(bound, "devicemodel probe") == 2
    assert count(bound, "devicemodel example removed") == 1


def test_unload_removes_driver_and_device_and_load_again(bound):
    for loads in range(1, 3):
        bound.rmmod("devicemodel")
        wait_count(bound, "devicemodel exit", loads)
        bound.wait_until_succeeds(f"test ! -e {DEVICE} && test ! -e {DRIVER}", timeout=30)
        assert count(bound, "devicemodel example removed") == loads
        log = bound.dmesg()
        # The original's order: exit, then the driver's remove.
        assert log.rindex("devicemodel exit") < log.rindex("devicemodel example removed")
        bound.insmod("devicemodel")
        bound.wait_until_succeeds(f"test -e {DRIVER}/devicemodel_example", timeout=30)
        assert count(bound, GREETING) == loads + 1


def test_unload_while_unbound_calls_no_remove(bound):
    bound.succeed(f"echo devicemodel_example > {DRIVER}/unbind")
    bound.wait_for_console_text("devicemodel example removed")
    bound.rmmod("devicemodel")
    bound.wait_for_console_text("devicemodel exit")
    assert count(bound, "devicemodel example removed") == 1
    assert bound.run(f"test -e {DEVICE}").status != 0


def test_a_foreign_device_forced_onto_the_driver_is_refused(bound):
    # driver_override lets root bind any platform device to the driver; only the module's own
    # device carries its platform data, so probe refuses the others.
    free = bound.succeed(
        "for d in /sys/bus/platform/devices/*; do [ -e $d/driver ] || echo ${d##*/}; done"
    ).split()
    assert free, "the guest has no unbound platform device"
    other = free[0]
    bound.succeed(f"echo devicemodel_example > /sys/bus/platform/devices/{other}/driver_override")
    result = bound.run(f"echo {other} > {DRIVER}/bind")
    assert result.status != 0 and "No such device" in result.err
    bound.wait_for_console_text("devicemodel: not our device, refused")
    assert bound.run(f"test -e /sys/bus/platform/devices/{other}/driver").status != 0
    assert count(bound, GREETING) == 1
