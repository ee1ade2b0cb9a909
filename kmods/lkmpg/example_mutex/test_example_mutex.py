"""LKMPG example_mutex in Rust: its log at load and unload (the race is in ../test_races.py)."""

import pytest

pytestmark = pytest.mark.rustkm(modules=["."], cpus=2)


def test_log_at_load_and_unload(vm):
    vm.insmod("example_mutex")
    for line in ['example_mutex init', 'mutex is locked', 'mutex is unlocked']:
        vm.wait_for_console_text(line)
    vm.rmmod("example_mutex")
    vm.wait_for_console_text("example_mutex exit")

