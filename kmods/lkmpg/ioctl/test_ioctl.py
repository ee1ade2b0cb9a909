"""LKMPG ioctl in Rust: /dev/ioctltest's per-file byte and shared int through the original's
ioctls (a struct argument, an int pointer, a plain value), driven by ioctl_user.c."""

import pytest

pytestmark = pytest.mark.rustkm(modules=["."], cpus=2, programs=["ioctl_user.c"])


@pytest.fixture
def ioctltest(vm):
    vm.insmod("ioctl")
    vm.wait_for_file("/dev/ioctltest")
    vm.wait_for_console_text(r"ioctl: ioctltest driver installed on /dev/ioctltest\.")
    return vm


def steps(vm, script: str) -> list[str]:
    return vm.succeed(f"ioctl_user {script}").splitlines()


def test_set_and_get_through_the_struct(ioctltest):
    out = steps(ioctltest, "open 0 get 0 set 0 0x42 get 0 read 0 5 close 0")
    assert out == ["ok", "val=0xff", "ok", "val=0x42", "read 5 all 0x42", "ok"]
    ioctltest.wait_for_console_text(r"IOCTL set val:42 \.")
    ioctltest.wait_for_console_text("test_ioctl_open call.")
    ioctltest.wait_for_console_text("test_ioctl_close call.")
    # Only the low byte is kept, as in the original's unsigned char.
    assert steps(ioctltest, "open 0 set 0 0x12345 get 0") == ["ok", "ok", "val=0x45"]


def test_each_open_file_has_its_own_byte(ioctltest):
    out = steps(ioctltest, "open 1 open 2 set 1 7 get 1 get 2 read 2 3 close 1 open 1 get 1")
    assert out == ["ok", "ok", "ok", "val=0x7", "val=0xff", "read 3 all 0xff", "ok", "ok",
                   "val=0xff"]
    # A new process's open starts at 0xff as well.
    assert steps(ioctltest, "open 0 get 0") == ["ok", "val=0xff"]


def test_the_number_is_shared_by_all_files(ioctltest):
    out = steps(ioctltest, "open 1 open 2 getnum 1 setnum 1 1234 getnum 2")
    assert out == ["ok", "ok", "num=0", "ok", "num=1234"]
    # It outlives the files, and is cut to an int as in the original.
    assert steps(ioctltest, "open 0 getnum 0") == ["ok", "num=1234"]
    assert steps(ioctltest, "open 0 setnum 0 0x1ffffffff getnum 0") == ["ok", "ok", "num=-1"]


def test_reads_fill_the_whole_buffer(ioctltest):
    out = steps(ioctltest, "open 0 set 0 0xab read 0 1048576 read 0 0 read 0 1")
    assert out == ["ok", "ok", "read 1048576 all 0xab", "read 0 all 0x00", "read 1 all 0xab"]
    assert ioctltest.succeed("head -c 100000 /dev/ioctltest | tr -d '\\377' | wc -c").strip() \
        == "0"


def test_bad_pointers_get_efault_and_unknown_ioctls_enotty(ioctltest):
    out = steps(ioctltest, "open 0 bad 0 set bad 0 get bad 0 getnum bad 0 read get 0")
    assert out == ["ok", "EFAULT", "EFAULT", "EFAULT", "EFAULT", "val=0xff"]
    numbers = [0x6604, 0x5401, 0x40086600, 0]  # the next _IO, TCGETS, VALSET sized 8, 0
    script = "open 0 " + " ".join(f"raw 0 {n:#x}" for n in numbers) + " get 0"
    assert steps(ioctltest, script) == ["ok", "ENOTTY", "ENOTTY", "ENOTTY", "ENOTTY",
                                        "val=0xff"]


def test_many_files_open_at_once_and_racing(ioctltest):
    # Ten files in one process, each its own byte.
    script = " ".join(f"open {i} set {i} {i + 1}" for i in range(10))
    script += " " + " ".join(f"get {i}" for i in range(10))
    out = steps(ioctltest, script)
    assert out[20:] == [f"val={i + 1:#x}" for i in range(10)]
    # Processes on two vCPUs setting and reading their own files never see another's byte.
    racers = " ".join(
        f"(for j in $(seq 50); do ioctl_user open 0 set 0 {v} get 0 read 0 4096; done > /tmp/r{v}) &"
        for v in (1, 2, 3, 4))
    ioctltest.succeed(f"{racers} wait", timeout=300)
    for v in (1, 2, 3, 4):
        lines = ioctltest.succeed(f"cat /tmp/r{v}").splitlines()
        assert lines == ["ok", "ok", f"val={v:#x}", f"read 4096 all {v:#04x}"] * 50


def test_no_unload_while_a_file_is_open(ioctltest):
    # A process holding the device open (the shell execs sleep, keeping its pid and fd 3).
    ioctltest.succeed("sh -c 'exec 3</dev/ioctltest; echo $$ > /tmp/holder; exec sleep 600' "
                      "> /dev/null 2>&1 &")
    ioctltest.wait_for_file("/tmp/holder")
    result = ioctltest.run("rmmod ioctl")
    assert result.status != 0 and "ioctl" in ioctltest.succeed("cat /proc/modules")
    # Once the file is closed, the module unloads.
    ioctltest.succeed("kill $(cat /tmp/holder)")
    ioctltest.wait_until_succeeds("rmmod ioctl", timeout=30)
    ioctltest.wait_for_console_text("ioctltest driver removed.")


def test_unload_and_load_again(ioctltest):
    steps(ioctltest, "open 0 setnum 0 99")
    ioctltest.rmmod("ioctl")
    ioctltest.wait_for_console_text("ioctltest driver removed.")
    assert ioctltest.run("test -e /dev/ioctltest").status != 0
    ioctltest.insmod("ioctl")
    ioctltest.wait_for_file("/dev/ioctltest")
    assert steps(ioctltest, "open 0 getnum 0 get 0") == ["ok", "num=0", "val=0xff"]
