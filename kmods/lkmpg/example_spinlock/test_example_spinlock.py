"""LKMPG example_spinlock in Rust: its log at load and unload (the race is in ../test_races.py)."""

import pytest

pytestmark = pytest.mark.rustkm(modules=["."], cpus=2)


def test_log_at_load_and_unload(vm):
    vm.insmod("example_spinlock")
    for line in ['example spinlock started', 'Locked static spinlock', 'Unlocked static spinlock', 'Locked dynamic spinlock', 'Unlocked dynamic spinlock']:
        vm.wait_for_console_text(line)
    vm.rmmod("example_spinlock")
    vm.wait_for_console_text("example spinlock exit")

