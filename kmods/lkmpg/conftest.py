"""Shared checks of the LKMPG ports' tests."""

import re

import pytest


@pytest.fixture
def load_cycle(vm):
    """insmod with parameters, expect a greeting; rmmod, expect a farewell; and once more."""

    def cycle(module: str, greeting: str, farewell: str, **params: object) -> None:
        for _ in range(2):  # unload, then load again, must work
            mark = len(vm.console_log.splitlines())
            vm.insmod(module, **params)
            vm.wait_for_console_text(rf"{module}: {re.escape(greeting)}")
            vm.rmmod(module)
            vm.wait_for_console_text(rf"{module}: {re.escape(farewell)}")
            assert len(vm.console_log.splitlines()) > mark

    return cycle


def hammer(vm, name: str, writers: int = 2, times: int = 100_000) -> int:
    """`writers` concurrent writes of `times` increments each; the count afterwards."""
    path = f"/proc/sys/lkmpg/{name}"
    jobs = " ".join(f"(echo {times} > {path}) &" for _ in range(writers))
    vm.succeed(f"{jobs} wait", timeout=300)
    return int(vm.succeed(f"cat {path}"))

