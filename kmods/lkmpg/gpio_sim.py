"""A simulated GPIO chip in the guest (gpio-sim, configured through configfs), for the tests of
LKMPG's GPIO examples (led, intrpt, bottomhalf, bh_threaded).

The modules look their lines up on the chip labelled `lkmpg-gpio`. `SimChip(vm)` creates it
(one bank of `lines` lines); `pull(offset, up)` sets an input line's level from outside, which
raises the edge interrupts a module requested on it, and `value(offset)` reads what an output
line drives. See Documentation/admin-guide/gpio/gpio-sim.rst.
"""

import re
from typing import Any

CONFIGFS = "/sys/kernel/config"
LABEL = "lkmpg-gpio"


class SimChip:
    """A live gpio-sim chip with one bank; removed by `remove()` (or with the VM)."""

    def __init__(self, vm: Any, label: str = LABEL, lines: int = 4, name: str = "lkmpg") -> None:
        self.vm = vm
        self.config = f"{CONFIGFS}/gpio-sim/{name}"
        bank = f"{self.config}/gpio-bank0"
        vm.succeed(f"grep -q ' {CONFIGFS} configfs ' /proc/mounts "
                   f"|| mount -t configfs none {CONFIGFS}")
        vm.succeed(f"mkdir {self.config} {bank}",
                   f"echo {lines} > {bank}/num_lines",
                   f"echo {label} > {bank}/label",
                   f"echo 1 > {self.config}/live")
        device = vm.succeed(f"cat {self.config}/dev_name").strip()
        chip = vm.succeed(f"cat {bank}/chip_name").strip()
        self.sysfs = f"/sys/devices/platform/{device}/{chip}"

    def line(self, offset: int) -> str:
        return f"{self.sysfs}/sim_gpio{offset}"

    def pull(self, offset: int, up: bool) -> None:
        """Pulls input line `offset` up or down: an edge, if the level changes."""
        self.vm.succeed(f"echo pull-{'up' if up else 'down'} > {self.line(offset)}/pull")

    def press(self, offset: int) -> None:
        """A button press and release on line `offset`: a rising and a falling edge."""
        self.pull(offset, True)
        self.pull(offset, False)

    def press_command(self, offset: int) -> str:
        """The shell command of `press`, for loops run in the guest."""
        pull = f"{self.line(offset)}/pull"
        return f"echo pull-up > {pull}; echo pull-down > {pull}"

    def value(self, offset: int) -> int:
        """The line's value: what an output line drives, or an input line's pull."""
        return int(self.vm.succeed(f"cat {self.line(offset)}/value"))

    def wait_for_value(self, offset: int, value: int, timeout: float = 60) -> None:
        """Waits until line `offset` has `value` (a bottom half sets it a little later)."""
        self.vm.wait_until_succeeds(f"[ $(cat {self.line(offset)}/value) = {value} ]",
                                    timeout=timeout)

    def remove(self) -> None:
        """Takes the chip down (no module may hold its lines) and deletes its configuration."""
        self.vm.succeed(f"echo 0 > {self.config}/live",
                        f"rmdir {self.config}/gpio-bank0 {self.config}")


def interrupts(vm, module: str, button: int) -> list[int]:
    """The interrupt numbers `module`'s hard handler logged for `button`, in order, read from
    the kernel's log (dmesg), which keeps every line: the serial console can lose bytes when
    the host is loaded (QEMU drops what its chardev cannot take, seen as
    "[    5.304on2 interrupt 31" with four workers on two cores)."""
    return [int(n) for n in re.findall(rf"{module}: button{button} interrupt (\d+) \(",
                                       vm.dmesg())]


def bottom_halves(vm, module: str, kind: str) -> list[str]:
    """The contexts `module`'s bottom halves ("Bottom half KIND starts (CONTEXT)") started in,
    from the kernel's log, as interrupts() reads it."""
    return re.findall(rf"{module}: Bottom half {kind} starts \(([^)\n]*)\)", vm.dmesg())


def check_all_counted(numbers: list[int], total: int) -> None:
    """The interrupt numbers a module logged run 1..`total` in order: none lost, none doubled,
    and the last is the module's own count."""
    assert numbers == list(range(1, total + 1)), numbers
