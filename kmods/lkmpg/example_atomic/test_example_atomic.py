"""LKMPG example_atomic in Rust: its log at load and unload (the race is in ../test_races.py)."""

import pytest

pytestmark = pytest.mark.rustkm(modules=["."], cpus=2)


def test_log_at_load_and_unload(vm):
    vm.insmod("example_atomic")
    for line in ['example_atomic started', 'chris: 50, debbie: 52', 'Bits 0: 00000000', 'Bits 1: 00101000', 'Bits 2: 00001000', 'Bits 3: 00000000', 'Bits 4: 00001000', 'Bits 5: 11111111']:
        vm.wait_for_console_text(line)
    vm.rmmod("example_atomic")
    vm.wait_for_console_text("example_atomic exit")

