"""LKMPG hello-debugfs-file in Rust: a message file and a read-only blob in debugfs."""

import pytest

pytestmark = pytest.mark.rustkm(modules=["."], cpus=2)

DIR = "/sys/kernel/debug/lkmpg_debugfs_file"
MSG = f"{DIR}/message"
BLOB_TEXT = "This blob is read-only and exported with debugfs_create_blob().\n"
# The guest may have debugfs mounted already.
MOUNT = "grep -q ' /sys/kernel/debug ' /proc/mounts || mount -t debugfs none /sys/kernel/debug"


@pytest.fixture
def loaded(vm):
    vm.succeed(MOUNT)
    vm.insmod("hello_debugfs_file")
    vm.wait_for_console_text("hello_debugfs_file: debugfs file example registered under "
                             "/sys/kernel/debug/lkmpg_debugfs_file")
    return vm


def error_of(vm, command: str) -> str:
    """The errno name of a rawio command that must fail."""
    result = vm.run(command)
    assert result.status != 0, result.out
    return result.err.split(":")[2].strip()


def test_message_and_blob_show_the_originals_text(loaded):
    vm = loaded
    assert vm.succeed(f"cat {MSG}") == "debugfs says hello\n"
    assert vm.succeed(f"cat {DIR}/blob") == BLOB_TEXT
    assert vm.succeed(f"stat -c '%n %a' {DIR}/*").split("\n")[:2] == [
        f"{DIR}/blob 400", f"{DIR}/message 600"]
    # Reads at an offset, and past the end.
    assert vm.succeed(f"rawio read {MSG} 8 4") == "says"
    assert vm.succeed(f"rawio read {MSG} 19 10") == ""
    assert vm.succeed(f"rawio read {DIR}/blob 1000 10") == ""
    assert vm.succeed(f"rawio read {DIR}/blob 5 4") == "blob"


def test_a_write_replaces_the_message(loaded):
    vm = loaded
    vm.succeed(f"echo 'a new message' > {MSG}")
    assert vm.succeed(f"cat {MSG}") == "a new message\n"
    vm.succeed(f"printf short > {MSG}")
    assert vm.succeed(f"cat {MSG}") == "short"


def test_long_writes_are_cut_to_127_bytes_and_offset_writes_refused(loaded):
    vm = loaded
    assert vm.succeed(f"head -c 200 /dev/zero | tr '\\0' x | rawio write {MSG} -") == "127\n"
    assert vm.succeed(f"cat {MSG}") == "x" * 127
    # A shell redirection writes the rest at offset 127: refused, as in the original.
    result = vm.run(f"head -c 200 /dev/zero | tr '\\0' y > {MSG}")
    assert result.status != 0
    assert vm.succeed(f"cat {MSG}") == "y" * 127
    assert error_of(vm, f"printf abc | rawio write {MSG} 3") == "EINVAL"
    assert error_of(vm, f"head -c 1048576 /dev/zero | rawio write {MSG} 1") == "EINVAL"
    assert vm.succeed(f"head -c 1048576 /dev/zero | tr '\\0' z | rawio write {MSG} -") == "127\n"
    assert vm.succeed(f"cat {MSG}") == "z" * 127
    # Binary data is kept as is.
    vm.succeed(f"printf '\\000\\377\\001' | rawio write {MSG} -")
    assert vm.succeed(f"od -An -tx1 {MSG}").split() == ["00", "ff", "01"]


def test_the_blob_refuses_writes(loaded):
    vm = loaded
    assert error_of(vm, f"printf x | rawio write {DIR}/blob -") == "EINVAL"
    assert vm.succeed(f"cat {DIR}/blob") == BLOB_TEXT


def test_concurrent_writers_never_mix_messages(loaded):
    vm = loaded
    writers = " ".join(
        f"(i=0; while [ $i -lt 200 ]; do printf {text} > {MSG} || exit 1; i=$((i+1)); done) &"
        for text in ("aaaaaaaaaaaaaaaa", "bbbb"))
    reader = (f"(i=0; while [ $i -lt 200 ]; do grep -qxE 'aaaaaaaaaaaaaaaa|bbbb|debugfs says hello' "
              f"{MSG} || exit 1; i=$((i+1)); done) &")
    vm.succeed(f"{writers} {reader} for j in 1 2 3; do wait -n || exit 1; done; wait",
               timeout=600)


def test_an_open_file_holds_the_module_and_reload_resets(loaded):
    vm = loaded
    vm.succeed(f"echo changed > {MSG}")
    vm.succeed(f"sleep 8 < {MSG} & sleep 1")
    assert vm.run("rmmod hello_debugfs_file").status != 0
    vm.wait_until_succeeds("rmmod hello_debugfs_file", timeout=60)
    vm.wait_for_console_text("hello_debugfs_file: debugfs file example removed")
    vm.fail(f"ls {DIR}")
    vm.insmod("hello_debugfs_file")
    assert vm.succeed(f"cat {MSG}") == "debugfs says hello\n"
