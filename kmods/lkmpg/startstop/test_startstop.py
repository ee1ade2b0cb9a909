"""LKMPG startstop in Rust: one module from two source files."""

import pytest

pytestmark = pytest.mark.rustkm(modules=["."])


def test_init_from_one_file_exit_from_the_other(load_cycle):
    load_cycle("startstop", "Hello, world - this is the kernel speaking",
               "Short is the life of a kernel module")
