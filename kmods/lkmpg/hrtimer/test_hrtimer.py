"""A periodic hrtimer in Rust: ticks counted in /proc/sys/lkmpg/hrtimer_ticks, stopped at rmmod."""

import re

import pytest

pytestmark = pytest.mark.rustkm(modules=["."], cpus=2)

TICKS = "/proc/sys/lkmpg/hrtimer_ticks"


def ticks(vm) -> int:
    return int(vm.succeed(f"cat {TICKS}"))


def stopped_after(vm) -> list[int]:
    return [int(n) for n in re.findall(r"hrtimer: stopped after (\d+) ticks", vm.console_log)]


def test_the_count_grows_between_two_reads(vm):
    vm.insmod("hrtimer", period_ms=10)
    vm.wait_for_console_text("hrtimer: ticking every 10 ms")
    first = ticks(vm)
    vm.wait_until_succeeds(f"test $(cat {TICKS}) -gt {first}", timeout=60)
    second = ticks(vm)
    vm.wait_until_succeeds(f"test $(cat {TICKS}) -gt {second}", timeout=60)
    vm.rmmod("hrtimer")
    vm.wait_for_console_text("hrtimer: stopped after")
    assert stopped_after(vm)[0] > second


def test_the_default_period_ticks_too(vm):
    vm.insmod("hrtimer")
    vm.wait_for_console_text("hrtimer: ticking every 100 ms")
    vm.wait_until_succeeds(f"test $(cat {TICKS}) -gt 2", timeout=60)
    assert vm.succeed("cat /sys/module/hrtimer/parameters/period_ms") == "100\n"
    assert vm.succeed("stat -c %a /sys/module/hrtimer/parameters/period_ms") == "444\n"


def test_rmmod_leaves_no_timer_behind(vm):
    for _ in range(3):
        # A 1 ms timer left armed after rmmod would fire into freed module code at once.
        vm.insmod("hrtimer", period_ms=1)
        vm.wait_until_succeeds(f"test $(cat {TICKS}) -gt 5", timeout=60)
        vm.rmmod("hrtimer")
        vm.succeed("sleep 1")
        assert vm.run(f"cat {TICKS}").status != 0
        assert "hrtimer" not in vm.succeed("cut -d' ' -f1 /proc/modules").split()
    counts = stopped_after(vm)
    assert len(counts) == 3 and min(counts) > 5


def test_the_count_is_read_only(vm):
    vm.insmod("hrtimer", period_ms=1000)
    assert vm.succeed(f"stat -c %a {TICKS}") == "444\n"
    result = vm.run(f"echo 0 | rawio write {TICKS} 0")
    assert result.status != 0
    assert ticks(vm) >= 0


@pytest.mark.parametrize("period", ["0", "10001", "-1", "abc", "99999999999", ""])
def test_bad_periods_are_refused(vm, period):
    result = vm.run(f"insmod /lib/modules/rustkm/hrtimer.ko period_ms={period}")
    assert result.status != 0
    assert "hrtimer" not in vm.succeed("cut -d' ' -f1 /proc/modules").split()
    assert vm.run(f"cat {TICKS}").status != 0
    # The refusal leaves nothing behind: a good load works.
    vm.insmod("hrtimer", period_ms=5)
    vm.wait_until_succeeds(f"test $(cat {TICKS}) -gt 0", timeout=60)
    vm.rmmod("hrtimer")
