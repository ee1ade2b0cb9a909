"""LKMPG kbleds in Rust: the foreground VT's keyboard LEDs blink (all on, then the keyboard's
own state) every 200 ms while loaded and get the keyboard's state back at unload. The guest's
VT has a dummy console and no keyboard: its LED state is read with KDGETLED on /dev/tty1."""

from itertools import pairwise

import pytest

pytestmark = pytest.mark.rustkm(modules=["."], programs=["kdgetled.c"])


def leds(vm, count: int, ms: int = 50) -> list[int]:
    return [int(v) for v in vm.succeed(f"kdgetled /dev/tty1 {count} {ms}").split()]


def test_the_leds_blink_while_loaded_and_are_restored_at_unload(vm):
    # A VT has a tty only while something has it open: hold the console open.
    vm.succeed("sleep 600 < /dev/tty1 > /dev/null 2>&1 &")
    assert set(leds(vm, 5)) == {0}
    vm.insmod("kbleds")
    vm.wait_for_console_text(r"kbleds: fgconsole is 0")
    seen = leds(vm, 40)  # two seconds: about ten blinks
    assert set(seen) == {0, 7}
    changes = sum(1 for a, b in pairwise(seen) if a != b)
    assert changes >= 4
    vm.rmmod("kbleds")
    vm.wait_for_console_text(r"kbleds: unloading")
    assert set(leds(vm, 10)) == {0}
    assert "no LEDs to set" not in vm.console_log


def test_a_console_nobody_has_open_is_skipped_not_an_oops(vm):
    # The original dereferences the console's tty, which does not exist until an open.
    vm.insmod("kbleds")
    vm.wait_for_console_text(r"kbleds: no LEDs to set yet")
    vm.rmmod("kbleds")
    vm.wait_for_console_text(r"kbleds: unloading")
    vm.insmod("kbleds")  # and it loads again
    vm.rmmod("kbleds")


def test_unloading_at_any_point_of_a_blink_runs_no_freed_code(vm):
    # rmmod waits for the blink in flight; the module's text goes only once that blink has
    # returned. Unloads land before, during and after the first blink (due at 200 ms); an oops
    # (code run from freed module memory) fails the test at teardown.
    vm.succeed("for i in $(seq 1 24); do insmod /lib/modules/rustkm/kbleds.ko && "
               "usleep $((i * 12000)) && rmmod kbleds || exit 1; done", timeout=120)
    assert vm.console_log.count("kbleds: unloading") == 24
