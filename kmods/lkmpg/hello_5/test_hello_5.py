"""LKMPG hello-5 in Rust: integer module parameters, defaults, values given at insmod, sysfs."""

import pytest

from rustkm.modinfo import Parameter, read_module

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


PARAMS = "/sys/module/hello_5/parameters"


def test_parameters_are_in_sysfs_with_the_originals_permissions(vm):
    vm.insmod("hello_5", myshort=-7, myint=123456, mylong=-9876543210)
    assert vm.succeed(f"ls {PARAMS}").split() == ["myint", "mylong", "myshort"]
    modes = vm.succeed(f"stat -c '%n %a' {PARAMS}/*").split("\n")
    assert modes[:3] == [f"{PARAMS}/myint 644", f"{PARAMS}/mylong 400",
                         f"{PARAMS}/myshort 660"]
    assert vm.succeed(f"cat {PARAMS}/myshort {PARAMS}/myint {PARAMS}/mylong") == (
        "-7\n123456\n-9876543210\n")


def test_defaults_are_in_sysfs_and_modinfo_describes_the_parameters(vm):
    vm.insmod("hello_5")
    assert vm.succeed(f"cat {PARAMS}/myshort {PARAMS}/myint {PARAMS}/mylong") == (
        "1\n420\n9999\n")
    [ko] = [m for m in vm.spec.modules if m.name == "hello_5.ko"]
    assert read_module(ko).parameters == {
        "myshort": Parameter("short", "A short integer"),
        "myint": Parameter("int", "An integer"),
        "mylong": Parameter("long", "A long integer"),
    }


def test_writable_parameters_take_values_and_refuse_bad_ones(vm):
    vm.insmod("hello_5")
    vm.succeed(f"echo -300 > {PARAMS}/myshort", f"echo 77 > {PARAMS}/myint")
    assert vm.succeed(f"cat {PARAMS}/myshort {PARAMS}/myint") == "-300\n77\n"
    # The kernel's own parsers (param_set_short, param_set_int) refuse bad text.
    for path, text in (("myshort", "40000"), ("myshort", "x"), ("myint", "12abc"),
                       ("myint", "99999999999"), ("myint", "")):
        result = vm.run(f"echo '{text}' > {PARAMS}/{path}")
        assert result.status != 0, (path, text)
        assert "Invalid argument" in result.err or "out of range" in result.err, result.err
    assert vm.succeed(f"cat {PARAMS}/myshort {PARAMS}/myint") == "-300\n77\n"
    # mylong is 0400: even root cannot open it for writing (no store for a read-only mode).
    result = vm.run(f"echo 5 > {PARAMS}/mylong")
    assert result.status != 0 and "Permission denied" in result.err
    assert vm.succeed(f"cat {PARAMS}/mylong") == "9999\n"


def test_parameters_leave_with_the_module_and_reload_fresh(vm):
    vm.insmod("hello_5", myint=5)
    vm.succeed(f"echo 6 > {PARAMS}/myint")
    vm.rmmod("hello_5")
    vm.fail("ls /sys/module/hello_5")
    vm.insmod("hello_5")
    assert vm.succeed(f"cat {PARAMS}/myint") == "420\n"
