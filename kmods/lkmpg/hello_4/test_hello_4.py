"""LKMPG hello-4 in Rust: its log lines at load and unload."""

import pytest

pytestmark = pytest.mark.rustkm(modules=["."])


def test_greets_and_says_goodbye(load_cycle):
    load_cycle("hello_4", "Hello, world 4", "Goodbye, world 4")


def test_modinfo_shows_the_metadata(vm):
    from rustkm.modinfo import read_module

    [ko] = [m for m in vm.spec.modules if m.name == "hello_4.ko"]
    info = read_module(ko)
    assert (info.get("author"), info.get("description"), info.get("license")) == (
        "LKMPG", "A sample driver", "GPL")
