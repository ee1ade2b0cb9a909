"""The LKMPG concurrency examples on two vCPUs: each one's protection (a mutex, a spinlock, an
atomic add) loses no update, and without it (a module parameter) the read-then-write
increment loses many."""

import pytest
from conftest import hammer

pytestmark = pytest.mark.rustkm(
    modules=["example_mutex", "example_spinlock", "example_atomic"], cpus=2)

RACERS = 2 * 100_000
EXAMPLES = [("example_mutex", "use_lock"), ("example_spinlock", "use_lock"),
            ("example_atomic", "use_atomic")]


@pytest.mark.parametrize("name,switch", EXAMPLES)
def test_no_update_is_lost_with_protection(vm, name, switch):
    vm.insmod(name)
    assert hammer(vm, name) == RACERS


@pytest.mark.parametrize("name,switch", EXAMPLES)
def test_updates_are_lost_without_protection(vm, name, switch):
    vm.insmod(name, **{switch: 0})
    assert hammer(vm, name) < RACERS


@pytest.mark.parametrize("name", [name for name, _ in EXAMPLES])
def test_bad_counts_are_refused(vm, name):
    vm.insmod(name)
    for bad in ("-1", "abc", "99999999999", ""):
        result = vm.run(f"printf '{bad}' | rawio write /proc/sys/lkmpg/{name} -")
        assert result.status == 1 and "EINVAL" in result.err
    assert vm.succeed(f"cat /proc/sys/lkmpg/{name}") == "0\n"
