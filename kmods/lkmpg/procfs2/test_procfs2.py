"""LKMPG procfs2 in Rust: /proc/buffer1k logs what is written, cut to 1023 bytes."""

import pytest

pytestmark = pytest.mark.rustkm(modules=["."])


def test_a_write_is_logged_and_reads_say_hello(vm):
    vm.insmod("procfs2")
    vm.succeed("printf 'hello procfs' > /proc/buffer1k")
    vm.wait_for_console_text("procfile write hello procfs")
    assert vm.succeed("cat /proc/buffer1k") == "HelloWorld!\n"


def test_a_long_write_is_cut_to_1023_bytes(vm):
    vm.insmod("procfs2")
    result = vm.run("head -c 5000 /dev/zero | tr '\\0' a | rawio write /proc/buffer1k -")
    assert result.status == 0 and result.out.strip() == "1023"
    # The log shows the first 200 bytes.
    vm.wait_for_console_text("procfile write " + "a" * 200 + "$")


def test_binary_and_empty_writes_do_no_harm(vm):
    vm.insmod("procfs2")
    vm.succeed("printf '\\000\\377\\001' | rawio write /proc/buffer1k -",
               "printf '' | rawio write /proc/buffer1k -")
    vm.rmmod("procfs2")
    vm.insmod("procfs2")
