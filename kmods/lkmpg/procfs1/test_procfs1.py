"""LKMPG procfs1 in Rust: /proc/helloworld reads HelloWorld!, once per open; writes get EIO."""

import pytest

pytestmark = pytest.mark.rustkm(modules=["."])


def test_reads_hello_world(vm):
    vm.insmod("procfs1")
    vm.wait_for_console_text("/proc/helloworld created")
    assert vm.succeed("cat /proc/helloworld; cat /proc/helloworld") == "HelloWorld!\n" * 2
    assert vm.succeed("dd if=/proc/helloworld bs=3 2>/dev/null") == "HelloWorld!\n"
    assert vm.succeed("rawio read /proc/helloworld 50 10") == ""


def test_writes_get_eio_and_unload_removes_it(vm):
    vm.insmod("procfs1")
    result = vm.run("printf x | rawio write /proc/helloworld -")
    assert result.status == 1 and "EIO" in result.err
    vm.rmmod("procfs1")
    vm.wait_for_console_text("/proc/helloworld removed")
    vm.fail("test -e /proc/helloworld")
    vm.insmod("procfs1")
    assert vm.succeed("cat /proc/helloworld") == "HelloWorld!\n"
