"""LKMPG hello-1 in Rust: its log lines at load and unload."""

import pytest

pytestmark = pytest.mark.rustkm(modules=["."])


def test_greets_and_says_goodbye(load_cycle):
    load_cycle("hello_1", "Hello world 1.", "Goodbye world 1.")
