"""Shared checks of the LKMPG ports' tests."""

import shlex

import pytest


@pytest.fixture
def load_cycle(vm):
    """insmod with parameters, expect a greeting; rmmod, expect a farewell; and once more.
    Each round's lines are counted in the kernel's log (dmesg): the console may show them late
    on a loaded host, and a search of the console would find the first round's lines again."""

    def logged(text: str, times: int) -> None:
        vm.wait_until_succeeds(f"test $(dmesg | grep -cF -- {shlex.quote(text)}) -ge {times}")
        assert int(vm.succeed(f"dmesg | grep -cF -- {shlex.quote(text)}")) == times, text

    def cycle(module: str, greeting: str, farewell: str, **params: object) -> None:
        for times in (1, 2):  # unload, then load again, must work
            vm.insmod(module, **params)
            logged(f"{module}: {greeting}", times)
            vm.rmmod(module)
            logged(f"{module}: {farewell}", times)

    return cycle


def hammer(vm, name: str, writers: int = 2, times: int = 100_000) -> int:
    """`writers` concurrent writes of `times` increments each; the count afterwards."""
    path = f"/proc/sys/lkmpg/{name}"
    jobs = " ".join(f"(echo {times} > {path}) &" for _ in range(writers))
    vm.succeed(f"{jobs} wait", timeout=300)
    return int(vm.succeed(f"cat {path}"))

