"""LKMPG led in Rust, on a simulated GPIO chip: writes of 1 and 0 to /dev/gpio_led drive the
LED line; it starts off and is turned off at unload; other input is refused with EINVAL; an
open file keeps the module; a missing chip or a bad line fails insmod cleanly."""

import pytest
from gpio_sim import SimChip

pytestmark = pytest.mark.rustkm(modules=["."], cpus=2)

DEV = "/dev/gpio_led"
LED = 0


@pytest.fixture
def chip(vm):
    chip = SimChip(vm)
    vm.insmod("led")
    vm.wait_for_file(DEV)
    return chip


def write(vm, data: str):
    """One write() of `data`: rawio prints the count, or the errno name on failure."""
    return vm.run(f"printf '{data}' | rawio write {DEV} -")


def test_writes_switch_the_led(vm, chip):
    vm.wait_for_console_text(r"led: Device created on /dev/gpio_led")
    assert chip.value(LED) == 0  # off at load, as the original
    vm.succeed(f"echo 1 > {DEV}")
    assert chip.value(LED) == 1
    vm.wait_for_console_text(r"led: LED ON")
    vm.succeed(f"echo 0 > {DEV}")
    assert chip.value(LED) == 0
    vm.wait_for_console_text(r"led: LED OFF")
    result = write(vm, "1")
    assert result.status == 0 and result.out.strip() == "1"
    assert chip.value(LED) == 1
    # The LED line is held: nobody else can request it while the module is loaded.
    assert "LED 1" in vm.succeed("cat /sys/kernel/debug/gpio 2>/dev/null || "
                                 "(mount -t debugfs none /sys/kernel/debug && "
                                 "cat /sys/kernel/debug/gpio)")


def test_a_write_consumes_two_bytes_and_acts_on_the_first(vm, chip):
    result = write(vm, "10")
    assert result.status == 0 and result.out.strip() == "2"
    assert chip.value(LED) == 1
    result = write(vm, "0111")  # one write() call: two bytes taken
    assert result.status == 0 and result.out.strip() == "2"
    assert chip.value(LED) == 0
    # A huge write: still two bytes taken, the rest is left to the caller.
    result = vm.run(f"head -c 1048576 /dev/zero | tr '\\0' 1 | rawio write {DEV} -")
    assert result.status == 0 and result.out.strip() == "2"
    assert chip.value(LED) == 1
    # printf retries the rest of a short write: "1x0" is "1x" (on), then "0" (off).
    vm.succeed(f"printf '1x0' > {DEV}")
    assert chip.value(LED) == 0
    # An empty write does nothing.
    result = write(vm, "")
    assert result.status == 0 and result.out.strip() == "0"
    assert chip.value(LED) == 0


def test_bad_values_are_refused_with_einval(vm, chip):
    vm.succeed(f"echo 1 > {DEV}")
    for data in ("x", "2", " 1", "\\n", "on"):
        result = write(vm, data)
        assert result.status == 1 and "EINVAL" in result.err, data
    vm.wait_for_console_text(r"led: Invalid value!")
    result = vm.run(f"head -c 1048576 /dev/zero | tr '\\0' x | rawio write {DEV} -")
    assert result.status == 1 and "EINVAL" in result.err
    assert chip.value(LED) == 1  # unchanged
    # No read operation, as in the original.
    result = vm.run(f"rawio read {DEV} 0 4")
    assert result.status == 1 and "EINVAL" in result.err


def test_concurrent_writers(vm, chip):
    vm.succeed(f"(for i in $(seq 50); do echo 1 > {DEV}; done) & "
               f"(for i in $(seq 50); do echo 0 > {DEV}; done) & wait", timeout=300)
    assert chip.value(LED) in (0, 1)
    vm.succeed(f"echo 1 > {DEV}")
    assert chip.value(LED) == 1


def test_unload_turns_the_led_off_and_reload_works(vm, chip):
    vm.succeed(f"echo 1 > {DEV}")
    # An open file keeps the module loaded.
    vm.succeed(f"sh -c 'exec 3>{DEV}; echo $$ > /tmp/holder; exec sleep 600' "
               "> /dev/null 2>&1 &")
    vm.wait_for_file("/tmp/holder")
    assert vm.run("rmmod led").status != 0
    vm.succeed("kill $(cat /tmp/holder)")
    vm.wait_until_succeeds("rmmod led", timeout=30)
    vm.wait_for_console_text(r"led: LED OFF \(exit\)")
    assert chip.value(LED) == 0
    assert vm.run(f"test -e {DEV}").status != 0
    vm.insmod("led")
    vm.wait_for_file(DEV)
    assert chip.value(LED) == 0
    vm.succeed(f"echo 1 > {DEV}")
    assert chip.value(LED) == 1
    vm.rmmod("led")
    assert chip.value(LED) == 0


def failed_insmod(vm, params: str) -> tuple[str, str]:
    mark = len(vm.console_log)
    result = vm.run(f"insmod /lib/modules/rustkm/led.ko {params}")
    assert result.status != 0
    assert vm.run(f"test -e {DEV}").status != 0
    assert "led " not in vm.succeed("cat /proc/modules")
    return result.err, vm.console_log[mark:]


def test_no_chip_or_a_bad_line_fails_cleanly(vm):
    err, log = failed_insmod(vm, "")
    assert "No such device" in err
    assert 'Unable to request GPIOs for LEDs: line 0 of chip "lkmpg-gpio": -19' in log
    chip = SimChip(vm)
    err, log = failed_insmod(vm, "led=4")
    assert "Invalid argument" in err and "line 4" in log and ": -22" in log
    vm.insmod("led", led=3)
    vm.wait_for_file(DEV)
    vm.succeed(f"echo 1 > {DEV}")
    assert chip.value(3) == 1 and chip.value(LED) == 0
    vm.rmmod("led")
    assert chip.value(3) == 0
