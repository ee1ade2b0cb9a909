"""LKMPG hello-debugfs in Rust: a u32 and a bool in debugfs, shared with module parameters."""

import pytest

pytestmark = pytest.mark.rustkm(modules=["."], cpus=2)

DIR = "/sys/kernel/debug/lkmpg_debugfs"
PARAMS = "/sys/module/hello_debugfs/parameters"
# The guest may have debugfs mounted already.
MOUNT = "grep -q ' /sys/kernel/debug ' /proc/mounts || mount -t debugfs none /sys/kernel/debug"


@pytest.fixture
def loaded(vm):
    vm.succeed(MOUNT)
    vm.insmod("hello_debugfs")
    vm.wait_for_console_text(
        "hello_debugfs: debugfs interface registered under /sys/kernel/debug/lkmpg_debugfs")
    return vm


def write_error(vm, path: str, feed: str) -> str:
    """`feed | rawio write PATH -` (one write call) must fail: its errno name."""
    result = vm.run(f"{feed} | rawio write {path} -")
    assert result.status != 0, result.out
    return result.err.split(":")[2].strip()


def test_the_files_show_the_defaults_with_the_originals_modes(loaded):
    vm = loaded
    assert vm.succeed(f"cat {DIR}/debug_value {DIR}/debug_enabled") == "42\nY\n"
    assert vm.succeed(f"stat -c '%n %a' {DIR}/* {PARAMS}/*").split("\n")[:4] == [
        f"{DIR}/debug_enabled 600", f"{DIR}/debug_value 600",
        f"{PARAMS}/debug_enabled 600", f"{PARAMS}/debug_value 600"]
    assert vm.succeed(f"cat {PARAMS}/debug_value {PARAMS}/debug_enabled") == "42\nY\n"


def test_writes_on_either_side_show_on_the_other(loaded):
    vm = loaded
    vm.succeed(f"echo 4294967295 > {DIR}/debug_value", f"echo n > {DIR}/debug_enabled")
    assert vm.succeed(f"cat {PARAMS}/debug_value {PARAMS}/debug_enabled") == "4294967295\nN\n"
    assert vm.succeed(f"cat {DIR}/debug_value {DIR}/debug_enabled") == "4294967295\nN\n"
    vm.succeed(f"echo 7 > {PARAMS}/debug_value", f"echo 1 > {PARAMS}/debug_enabled")
    assert vm.succeed(f"cat {DIR}/debug_value {DIR}/debug_enabled") == "7\nY\n"
    for text, shown in (("off", "N"), ("on", "Y"), ("F", "N"), ("yes", "Y"), ("0", "N")):
        vm.succeed(f"echo {text} > {DIR}/debug_enabled")
        assert vm.succeed(f"cat {DIR}/debug_enabled") == f"{shown}\n"


def test_values_given_at_insmod_show_in_debugfs(vm):
    vm.succeed(MOUNT)
    vm.insmod("hello_debugfs", debug_value=3, debug_enabled="N")
    assert vm.succeed(f"cat {DIR}/debug_value {DIR}/debug_enabled") == "3\nN\n"


@pytest.mark.parametrize(("name", "feed"), [
    ("debug_value", "printf abc"), ("debug_value", "printf -- -1"),
    ("debug_value", "printf 4294967296"), ("debug_value", "printf 12x"),
    ("debug_value", "echo"), ("debug_value", "head -c 1048576 /dev/zero | tr '\\0' 1"),
    ("debug_enabled", "printf maybe"), ("debug_enabled", "printf o"),
    ("debug_enabled", "echo"), ("debug_enabled", "head -c 100000 /dev/zero | tr '\\0' y"),
])
def test_bad_writes_are_refused_and_change_nothing(loaded, name, feed):
    vm = loaded
    assert write_error(vm, f"{DIR}/{name}", feed) == "EINVAL"
    assert vm.succeed(f"cat {DIR}/debug_value {DIR}/debug_enabled") == "42\nY\n"


def test_concurrent_writers_an_open_file_holds_the_module_and_reload(loaded):
    vm = loaded
    loops = " ".join(
        f"(i=0; while [ $i -lt 200 ]; do echo {v} > {path} || exit 1; i=$((i+1)); done) &"
        for v, path in ((11, f"{DIR}/debug_value"), (22, f"{PARAMS}/debug_value"),
                        ("N", f"{DIR}/debug_enabled")))
    vm.succeed(f"{loops} for j in 1 2 3; do wait -n || exit 1; done; wait", timeout=600)
    assert vm.succeed(f"cat {DIR}/debug_value") in ("11\n", "22\n")
    # An open file holds the module, as in C: rmmod is refused until it is closed.
    vm.succeed(f"sleep 8 < {DIR}/debug_value & sleep 1")
    result = vm.run("rmmod hello_debugfs")
    assert result.status != 0, result.out
    assert "hello_debugfs" in vm.succeed("cat /proc/modules")
    vm.wait_until_succeeds("rmmod hello_debugfs", timeout=60)
    vm.wait_for_console_text("hello_debugfs: debugfs example removed")
    vm.fail(f"ls {DIR}")
    vm.insmod("hello_debugfs")
    assert vm.succeed(f"cat {DIR}/debug_value") == "42\n"
