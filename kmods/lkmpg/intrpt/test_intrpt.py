"""LKMPG intrpt in Rust, on a simulated GPIO chip: button 1 turns the LED line on, button 2
off; every interrupt is handled (counted in the log) in hard IRQ context, the LED written from
the IRQ thread; rmmod frees the IRQs; a missing chip or bad lines fail insmod cleanly."""

import re
import time

import gpio_sim
import pytest
from gpio_sim import SimChip, check_all_counted

pytestmark = pytest.mark.rustkm(modules=["."], cpus=2)

LED, ON, OFF = 0, 1, 2


@pytest.fixture
def chip(vm):
    return SimChip(vm)


def interrupts(vm, button: int) -> list[int]:
    """The interrupt numbers the hard handler logged for `button`, in order."""
    return gpio_sim.interrupts(vm, "intrpt", button)


def test_buttons_turn_the_led_on_and_off(vm, chip):
    vm.insmod("intrpt")
    vm.wait_for_console_text(r"intrpt: Successfully requested BUTTON2 IRQ # \d+")
    assert vm.wait_for_console_text(r"intrpt: Current button1 value: \d").endswith("0")
    assert chip.value(LED) == 0
    assert re.search(r"gpiomod#button1", vm.succeed("cat /proc/interrupts"))

    chip.pull(ON, True)  # press: the LED goes on, in the IRQ thread
    chip.wait_for_value(LED, 1)
    vm.wait_for_console_text(r"intrpt: LED ON \(task\)")
    chip.pull(ON, False)  # release: another interrupt, the LED stays on
    vm.wait_for_console_text(r"intrpt: button1 interrupt 2 \(hard IRQ\)")
    assert chip.value(LED) == 1

    chip.press(OFF)
    chip.wait_for_value(LED, 0)
    vm.wait_for_console_text(r"intrpt: LED OFF \(task\)")
    vm.wait_for_console_text(r"intrpt: button2 interrupt 2 \(hard IRQ\)")
    # Pressing "off" again changes nothing.
    chip.press(OFF)
    vm.wait_for_console_text(r"intrpt: button2 interrupt 4 \(hard IRQ\)")
    assert chip.value(LED) == 0


def test_every_press_is_handled(vm, chip):
    vm.insmod("intrpt")
    vm.wait_for_console_text(r"intrpt: Successfully requested BUTTON2 IRQ")
    presses = 25
    vm.succeed(f"for i in $(seq {presses}); do {chip.press_command(ON)}; "
               f"{chip.press_command(OFF)}; done", timeout=300)
    # Two edges per press, each its own interrupt, none lost or doubled.
    vm.wait_for_console_text(rf"intrpt: button1 interrupt {2 * presses} ", timeout=120)
    vm.wait_for_console_text(rf"intrpt: button2 interrupt {2 * presses} ", timeout=120)
    check_all_counted(interrupts(vm, 1), 2 * presses)
    check_all_counted(interrupts(vm, 2), 2 * presses)
    chip.wait_for_value(LED, 0)  # the last press was "off"
    # The LED was written in the thread, never in the hard handler.
    log = vm.dmesg()
    assert re.search(r"intrpt: LED ON \(task\)", log)
    assert not re.search(r"intrpt: LED \w+ \((hard IRQ|softirq)\)", log)


def test_two_cpus_pressing_at_once(vm, chip):
    vm.insmod("intrpt")
    vm.wait_for_console_text(r"intrpt: Successfully requested BUTTON2 IRQ")
    on, off = (f"for i in $(seq 20); do {chip.press_command(b)}; done" for b in (ON, OFF))
    vm.succeed(f"({on}) & ({off}) & wait", timeout=300)
    # The LED ends in the state the last handled interrupt asked for, whichever that was.
    vm.rmmod("intrpt")
    vm.wait_for_console_text(r"intrpt: LED OFF \(exit\)")
    assert chip.value(LED) == 0


def test_rmmod_frees_the_irqs_and_reload_works(vm, chip):
    vm.insmod("intrpt")
    vm.wait_for_console_text(r"intrpt: Successfully requested BUTTON2 IRQ")
    chip.pull(ON, True)
    chip.wait_for_value(LED, 1)
    vm.rmmod("intrpt")
    vm.wait_for_console_text(r"intrpt: intrpt_exit")
    vm.wait_for_console_text(r"intrpt: LED OFF \(exit\)")
    assert chip.value(LED) == 0
    assert "gpiomod#" not in vm.succeed("cat /proc/interrupts")
    # Presses now reach no handler.
    chip.pull(ON, False)
    chip.press(OFF)
    chip.press(ON)
    vm.succeed("sleep 1")
    assert interrupts(vm, 1) == [1] and interrupts(vm, 2) == []
    assert chip.value(LED) == 0

    # The lines were released: loading again works and counts from 1.
    vm.insmod("intrpt")
    vm.wait_for_console_text(r"intrpt: Successfully requested BUTTON2 IRQ")
    chip.pull(ON, True)
    chip.wait_for_value(LED, 1)
    # The hard handler's message can reach the serial console after the thread's LED write.
    deadline = time.monotonic() + 30
    while interrupts(vm, 1) != [1, 1] and time.monotonic() < deadline:
        vm.succeed("sleep 0.1")
    assert interrupts(vm, 1) == [1, 1]
    vm.rmmod("intrpt")
    assert chip.value(LED) == 0


def failed_insmod(vm, params: str) -> tuple[str, str]:
    mark = len(vm.console_log)
    result = vm.run(f"insmod /lib/modules/rustkm/intrpt.ko {params}")
    assert result.status != 0
    assert "intrpt" not in vm.succeed("cat /proc/modules")
    return result.err, vm.console_log[mark:]


def test_no_chip_with_that_label_fails_with_enodev(vm):
    err, log = failed_insmod(vm, "")
    assert "No such device" in err
    assert 'Unable to request GPIOs for LEDs: line 0 of chip "lkmpg-gpio": -19' in log
    # A chip with another label is not used either.
    SimChip(vm, label="other-gpio", name="other")
    err, log = failed_insmod(vm, "")
    assert "No such device" in err


def test_bad_lines_fail_cleanly(vm, chip):
    err, log = failed_insmod(vm, "led=4")  # the chip has lines 0-3
    assert "Invalid argument" in err and "line 4" in log and ": -22" in log
    err, log = failed_insmod(vm, "button1=3 button2=3")  # one line for two buttons
    assert "Device or resource busy" in err and ": -16" in log
    err, log = failed_insmod(vm, "button2=0")  # the LED's line as a button
    assert "Device or resource busy" in err
    # Every failure released what it had taken: other offsets work.
    vm.insmod("intrpt", led=3, button1=2, button2=1)
    vm.wait_for_console_text(r"intrpt: Successfully requested BUTTON2 IRQ")
    chip.pull(2, True)
    chip.wait_for_value(3, 1)
    chip.pull(1, True)
    chip.wait_for_value(3, 0)
    vm.rmmod("intrpt")
    # And the chip can go away once the module let go of its lines.
    chip.remove()
