"""LKMPG hello-5 in Rust: integer module parameters, defaults and values given at insmod."""

import pytest

pytestmark = pytest.mark.rustkm(modules=["."])


def test_defaults(vm, load_cycle):
    load_cycle("hello_5", "Hello, world 5", "Goodbye, world 5")
    log = vm.console_log
    for line in ("myshort is a short integer: 1", "myint is an integer: 420",
                 "mylong is a long integer: 9999"):
        assert line in log


def test_values_given_at_insmod_are_used(vm):
    vm.insmod("hello_5", myshort=-7, myint=123456, mylong=-9876543210)
    for line in ("myshort is a short integer: -7", "myint is an integer: 123456",
                 "mylong is a long integer: -9876543210"):
        vm.wait_for_console_text(line)


@pytest.mark.parametrize("param", ["myshort=70000", "myint=abc", "mylong="])
def test_bad_values_are_refused_and_the_module_stays_out(vm, param):
    result = vm.run(f"insmod /lib/modules/rustkm/hello_5.ko {param}")
    assert result.status != 0
    assert "hello_5" not in vm.succeed("cat /proc/modules")


def test_an_unknown_parameter_is_ignored_with_a_warning(vm):
    vm.insmod("hello_5", nosuch=1)
    vm.wait_for_console_text("unknown parameter 'nosuch' ignored")
