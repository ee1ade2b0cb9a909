"""LKMPG hello-3 in Rust: its log lines at load and unload."""

import pytest

pytestmark = pytest.mark.rustkm(modules=["."])


def test_greets_and_says_goodbye(load_cycle):
    load_cycle("hello_3", "Hello, world 3", "Goodbye, world 3")
