"""LKMPG hello-2 in Rust: its log lines at load and unload."""

import pytest

pytestmark = pytest.mark.rustkm(modules=["."])


def test_greets_and_says_goodbye(load_cycle):
    load_cycle("hello_2", "Hello, world 2", "Goodbye, world 2")
