"""LKMPG bh_threaded in Rust, on a simulated GPIO chip: the top half (hard IRQ) counts every
interrupt and wakes the IRQ thread, the bottom half (in the thread) drives the LED line and
takes 500 ms; rmmod waits for a running bottom half and frees the IRQs; a missing chip fails
insmod cleanly."""


import gpio_sim
import pytest
from gpio_sim import SimChip, check_all_counted

pytestmark = pytest.mark.rustkm(modules=["."], cpus=2)

LED, ON, OFF = 0, 1, 2
NAME = "bh_threaded"


@pytest.fixture
def chip(vm):
    chip = SimChip(vm)
    vm.insmod(NAME)
    vm.wait_for_console_text(rf"{NAME}: Successfully requested BUTTON2 IRQ # \d+")
    return chip


def interrupts(vm, button: int) -> list[int]:
    """The interrupt numbers the hard handler logged for `button`, in order."""
    return gpio_sim.interrupts(vm, NAME, button)


def bottom_halves(vm) -> list[str]:
    """The contexts the bottom halves started in."""
    return gpio_sim.bottom_halves(vm, NAME, "task")


def test_buttons_turn_the_led_on_and_off_in_the_bottom_half(vm, chip):
    assert chip.value(LED) == 0
    chip.pull(ON, True)
    chip.wait_for_value(LED, 1)
    vm.wait_for_console_text(rf"{NAME}: Bottom half task ends")
    assert interrupts(vm, 1) == [1]
    assert bottom_halves(vm) == ["task"]  # the IRQ thread, not the hard IRQ
    chip.pull(ON, False)  # the release asks for "on" again
    vm.wait_for_console_text(rf"{NAME}: button1 interrupt 2 \(hard IRQ\)")
    chip.press(OFF)
    chip.wait_for_value(LED, 0)
    vm.wait_for_console_text(rf"{NAME}: button2 interrupt 2 \(hard IRQ\)")
    assert set(bottom_halves(vm)) == {"task"}


def test_every_interrupt_reaches_the_top_half(vm, chip):
    presses = 20
    vm.succeed(f"for i in $(seq {presses}); do {chip.press_command(ON)}; "
               f"{chip.press_command(OFF)}; done", timeout=300)
    vm.wait_for_console_text(rf"{NAME}: button2 interrupt {2 * presses} ", timeout=120)
    check_all_counted(interrupts(vm, 1), 2 * presses)
    check_all_counted(interrupts(vm, 2), 2 * presses)
    # The bottom half takes 500 ms: interrupts meanwhile wake it once more, not once each; the
    # last run sees the last button, "off".
    chip.wait_for_value(LED, 0, timeout=120)
    vm.wait_until_succeeds(f"dmesg | grep -q '{NAME}: Bottom half task ends'")
    runs = bottom_halves(vm)
    assert 1 <= len(runs) <= 4 * presses and set(runs) == {"task"}


def test_rmmod_waits_for_the_bottom_half_and_frees_the_irqs(vm, chip):
    chip.pull(ON, True)
    vm.wait_for_console_text(rf"{NAME}: Bottom half task starts")
    vm.rmmod(NAME)  # while the bottom half busy-waits
    vm.wait_for_console_text(rf"{NAME}: LED OFF \(exit\)")
    log = vm.dmesg()
    assert log.rindex("Bottom half task ends") < log.index("LED OFF (exit)")
    assert chip.value(LED) == 0
    assert "gpiomod#" not in vm.succeed("cat /proc/interrupts")
    chip.pull(ON, False)
    chip.press(OFF)
    vm.succeed("sleep 1")
    assert interrupts(vm, 1) == [1] and interrupts(vm, 2) == []
    assert len(bottom_halves(vm)) == 1

    vm.insmod(NAME)
    vm.wait_for_console_text(rf"{NAME}: Successfully requested BUTTON2 IRQ")
    chip.pull(ON, True)
    chip.wait_for_value(LED, 1)
    assert interrupts(vm, 1) == [1, 1]
    vm.rmmod(NAME)
    assert chip.value(LED) == 0


def test_no_chip_with_that_label_fails_with_enodev(vm):
    mark = len(vm.console_log)
    result = vm.run(f"insmod /lib/modules/rustkm/{NAME}.ko")
    assert result.status != 0 and "No such device" in result.err
    assert 'Unable to request GPIOs for LEDs: line 0 of chip "lkmpg-gpio": -19' in \
        vm.console_log[mark:]
    assert NAME not in vm.succeed("cat /proc/modules")
