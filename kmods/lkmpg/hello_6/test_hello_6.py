"""LKMPG hello-6 in Rust: module_param_cb(), a parameter whose set/get callbacks log."""

import pytest

from rustkm.modinfo import Parameter, read_module

pytestmark = pytest.mark.rustkm(modules=["."])

WATCHED = "/sys/module/hello_6/parameters/watched"


def test_default_and_reload(vm, load_cycle):
    load_cycle("hello_6", "Hello, world 6", "Goodbye, world 6")
    assert "hello_6: watched starts at 42" in vm.console_log
    # No value given: the set callback never ran.
    assert "watched updated" not in vm.console_log


def test_a_value_given_at_insmod_goes_through_the_callback(vm):
    vm.insmod("hello_6", watched=-17)
    vm.wait_for_console_text("watched starts at -17")
    log = vm.console_log
    assert log.index("watched updated to -17") < log.index("watched starts at -17")
    [ko] = [m for m in vm.spec.modules if m.name == "hello_6.ko"]
    assert read_module(ko).parameters == {
        "watched": Parameter("int", "An integer that logs every update")}


def test_sysfs_writes_and_reads_go_through_the_callbacks(vm):
    vm.insmod("hello_6")
    assert vm.succeed(f"stat -c %a {WATCHED}").strip() == "644"
    assert vm.succeed(f"cat {WATCHED}") == "42\n"
    vm.wait_for_console_text("hello_6: watched was read")
    vm.succeed(f"echo 1000 > {WATCHED}")
    vm.wait_for_console_text("hello_6: watched updated to 1000")
    assert vm.succeed(f"cat {WATCHED}") == "1000\n"
    assert vm.dmesg().count("watched was read") == 2  # the kernel log: the console can lose lines


@pytest.mark.parametrize(("text", "errno"), [("abc", "EINVAL"), ("12x", "EINVAL"),
                                             ("\\n", "EINVAL"),
                                             ("2147483648", "ERANGE")])
def test_bad_values_get_the_callbacks_errno_and_change_nothing(vm, text, errno):
    vm.insmod("hello_6", watched=5)
    result = vm.run(f"printf '{text}' | rawio write {WATCHED} -")
    assert result.status != 0 and errno in result.err, result.err
    assert vm.succeed(f"cat {WATCHED}") == "5\n"
    assert vm.dmesg().count("watched updated to") == 1


def test_a_bad_value_at_insmod_keeps_the_module_out(vm):
    result = vm.run("insmod /lib/modules/rustkm/hello_6.ko watched=forty")
    assert result.status != 0
    assert "hello_6" not in vm.succeed("cat /proc/modules")
    vm.insmod("hello_6", watched=40)
    assert vm.succeed(f"cat {WATCHED}") == "40\n"
