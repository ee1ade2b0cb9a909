"""LKMPG hello-sysfs in Rust: /sys/kernel/mymodule/myvariable, an int read and written in sysfs."""

import pytest

pytestmark = pytest.mark.rustkm(modules=["."], cpus=2)

VAR = "/sys/kernel/mymodule/myvariable"


def write_error(vm, feed: str) -> str:
    """Runs `feed | rawio write VAR -` (one write call), which must fail; its errno name."""
    result = vm.run(f"{feed} | rawio write {VAR} -")
    assert result.status != 0, result.out
    return result.err.split(":")[2].strip()


def test_default_write_read_back_and_mode(vm):
    vm.insmod("hello_sysfs")
    vm.wait_for_console_text("mymodule: initialized")
    assert vm.succeed(f"cat {VAR}") == "0\n"
    assert vm.succeed(f"stat -c %a {VAR}").strip() == "660"
    for value in ("32", "-7", "2147483647", "-2147483648"):
        vm.succeed(f"echo {value} > {VAR}")
        assert vm.succeed(f"cat {VAR}") == f"{value}\n"
    vm.succeed(f"printf 5 > {VAR}")  # no newline
    assert vm.succeed(f"cat {VAR}") == "5\n"


@pytest.mark.parametrize("data", ["abc", "12abc", "1 2", "2147483648", "-2147483649",
                                  "99999999999999999999", "\\n", " 7", "0x10", "\\377\\000"])
def test_bad_writes_are_refused_and_keep_the_value(vm, data):
    vm.insmod("hello_sysfs")
    vm.succeed(f"echo 41 > {VAR}")
    assert write_error(vm, f"printf '{data}'") == "EINVAL"
    assert vm.succeed(f"cat {VAR}") == "41\n"


def test_a_1mib_write_is_cut_to_a_page_and_refused(vm):
    vm.insmod("hello_sysfs")
    vm.succeed(f"echo 8 > {VAR}")
    # sysfs hands store() at most PAGE_SIZE bytes: 4096 digits, far too many for an int.
    assert write_error(vm, "head -c 1048576 /dev/zero | tr '\\0' 7") == "EINVAL"
    # A valid number padded with spaces to 1 MiB is refused as well.
    assert write_error(vm, "(echo 9; head -c 1048570 /dev/zero | tr '\\0' ' ')") == "EINVAL"
    assert vm.succeed(f"cat {VAR}") == "8\n"


def test_concurrent_writers_and_readers(vm):
    vm.insmod("hello_sysfs")
    loops = " ".join(
        f"(i=0; while [ $i -lt 300 ]; do echo {v} > {VAR} || exit 1; i=$((i+1)); done) &"
        for v in (111, -222))
    readers = (f"(i=0; while [ $i -lt 300 ]; do grep -qxE '0|111|-222' {VAR} || exit 1; "
               "i=$((i+1)); done) &")
    vm.succeed(f"{loops} {readers} for j in 1 2 3; do wait -n || exit 1; done; wait",
               timeout=600)
    assert vm.succeed(f"cat {VAR}") in ("111\n", "-222\n")


def test_gone_after_rmmod_and_back_at_reload(vm):
    vm.insmod("hello_sysfs")
    vm.succeed(f"echo 1234 > {VAR}")
    # A reader holding the file open across rmmod: the module still unloads cleanly.
    vm.succeed(f"sleep 3 < {VAR} &")
    vm.rmmod("hello_sysfs")
    vm.wait_for_console_text("mymodule: Exit success")
    vm.fail("ls /sys/kernel/mymodule")
    vm.insmod("hello_sysfs")
    assert vm.succeed(f"cat {VAR}") == "0\n"
    vm.rmmod("hello_sysfs")
    vm.succeed("sleep 4")
    vm.fail(f"test -e {VAR}")
