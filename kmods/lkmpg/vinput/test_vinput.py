"""LKMPG vinput + vkbd in Rust: a virtual input device framework and a virtual keyboard.

Key events written to /dev/vinputN come out of the input device's evdev node (read by
evread.c) with the right codes and press/release values; bad writes get an errno."""

import shlex

import pytest

from rustkm.machine import CommandFailed

pytestmark = pytest.mark.rustkm(modules=["."], cpus=2, programs=["evread.c"])

CLASS = "/sys/class/vinput"


@pytest.fixture
def vkbd(vm):
    vm.insmod("vinput")
    vm.wait_for_console_text("vinput: Loading virtual input driver")
    vm.insmod("vkbd")
    vm.wait_for_console_text("vinput: registered new virtual input device 'vkbd'")
    return vm


def export(vm, expect: str = "/dev/vinput0") -> str:
    vm.succeed(f"echo vkbd > {CLASS}/export")
    vm.wait_for_file(expect)
    return expect


def event_node(vm, number: int = 0) -> str:
    """The /dev/input/eventN of virtual device `number`'s input device."""
    path = vm.succeed(f"ls -d {CLASS}/vinput{number}/input*/event*").strip()
    node = "/dev/input/" + path.rsplit("/", 1)[1]
    vm.wait_for_file(node)
    return node


def keys_seen(vm, node: str, writes: list[str], count: int, dev: str = "/dev/vinput0"
              ) -> list[tuple[int, int]]:
    """Writes each of `writes` to `dev` (errors ignored) while evread collects `count` key
    events from `node`; returns them as (code, value)."""
    vm.succeed(f"rm -f /tmp/ev; evread {node} {count} > /tmp/ev 2>&1 &")
    vm.wait_until_succeeds("grep -q name= /tmp/ev", timeout=60)
    for text in writes:
        vm.run(f"printf '%s' {shlex.quote(text)} | rawio write {dev} -")
    vm.wait_until_succeeds("grep -q repeats= /tmp/ev", timeout=150)
    lines = vm.succeed("cat /tmp/ev").splitlines()
    assert lines[0] == "name=vkbd"
    return [(int(c), int(v)) for c, v in (line.split() for line in lines[1:-1])]


def test_key_events_reach_evdev(vkbd):
    export(vkbd)
    vkbd.wait_for_console_text("Registered virtual input vkbd 0")
    node = event_node(vkbd)
    assert vkbd.succeed(f"cat {CLASS}/vinput0/input*/name").strip() == "vkbd"
    # "+N" and "N" press key N, "-N" releases it (KEY_A = 30, KEY_B = 48, KEY_ENTER = 28).
    events = keys_seen(vkbd, node, ["+30\n", "-30\n", "48", "-48", "+28", "-28\n"], 6)
    assert events == [(30, 1), (30, 0), (48, 1), (48, 0), (28, 1), (28, 0)]
    vkbd.wait_for_console_text("vinput0: Event VINPUT_RELEASE code 28")
    # A read gives the last event back, as "%+ld".
    assert vkbd.succeed("cat /dev/vinput0") == "-28\n"
    assert vkbd.succeed("rawio read /dev/vinput0 1 10") == "28\n"


def test_garbage_writes_get_einval_and_report_nothing(vkbd):
    export(vkbd)
    node = event_node(vkbd)
    garbage = ["abc", "+", "-", "0", "-0", "767", "99999999999999999999999", "+-5", "1 2",
               "30abc", "\n", "x" * 100]
    for text in garbage:
        result = vkbd.run(f"printf '%s' {shlex.quote(text)} | rawio write /dev/vinput0 -")
        assert result.status != 0 and "EINVAL" in result.err, text
    for size in [129, 4096, 1 << 20]:  # longer than 128 bytes: refused before parsing
        result = vkbd.run(f"head -c {size} /dev/zero | tr '\\0' 1 | rawio write /dev/vinput0 -")
        assert result.status != 0 and "EINVAL" in result.err, size
    vkbd.wait_for_console_text("Too long. 128 bytes allowed")
    # The last good entry is kept; garbage between good writes reports nothing.
    assert vkbd.succeed("cat /dev/vinput0") == "+0\n"
    events = keys_seen(vkbd, node, ["+2", "junk", "766", "-766", "-2"], 4)
    assert events == [(2, 1), (766, 1), (766, 0), (2, 0)]


def test_bad_export_and_unexport_requests(vkbd):
    for name in ["nosuch", "vkb", "vkbdx", ""]:
        result = vkbd.run(f"echo {shlex.quote(name)} > {CLASS}/export")
        assert result.status != 0 and "No such device" in result.err, name
    for text in ["abc", "-1", "99999999999999999999999", ""]:
        result = vkbd.run(f"echo {shlex.quote(text)} > {CLASS}/unexport")
        assert result.status != 0 and "Invalid argument" in result.err, text
    for number in ["0", "5", "31", "32"]:
        result = vkbd.run(f"echo {number} > {CLASS}/unexport")
        assert result.status != 0 and "No such device" in result.err, number
    # Numbers are handed out lowest first, and reused once freed.
    export(vkbd, "/dev/vinput0")
    export(vkbd, "/dev/vinput1")
    vkbd.succeed(f"echo 0 > {CLASS}/unexport")
    vkbd.wait_until_succeeds("test ! -e /dev/vinput0", timeout=30)
    assert vkbd.run(f"test -e {CLASS}/vinput0").status != 0
    assert vkbd.succeed("cat /dev/vinput1") == "+0\n"
    export(vkbd, "/dev/vinput0")
    events = keys_seen(vkbd, event_node(vkbd, 1), ["+5", "-5"], 2, dev="/dev/vinput1")
    assert events == [(5, 1), (5, 0)]


def test_all_32_numbers_then_enobufs(vkbd):
    vkbd.succeed(f"for i in $(seq 32); do echo vkbd > {CLASS}/export || exit 1; done", timeout=300)
    vkbd.wait_for_file("/dev/vinput31")
    result = vkbd.run(f"echo vkbd > {CLASS}/export")
    assert result.status != 0 and "No buffer space" in result.err
    vkbd.rmmod("vkbd")  # takes all 32 down
    vkbd.wait_for_console_text("vinput: unregistered virtual input device 'vkbd'")
    assert vkbd.succeed(f"ls {CLASS}").split() == ["export", "unexport"]


def test_an_open_file_outlives_unexport(vkbd):
    export(vkbd)
    out = vkbd.run(
        "exec 3<>/dev/vinput0; echo +7 >&3; "
        f"echo 0 > {CLASS}/unexport; "
        "echo +8 >&3; echo write=$?; cat <&3; echo read=$?; "
        "rmmod vkbd; echo vkbd=$?; rmmod vinput; echo vinput=$?")
    # The file's device is gone: ENODEV. The open file keeps vinput loaded.
    assert "write=1" in out.out and "read=1" in out.out, out
    assert out.err.count("No such device") == 2, out
    assert "vkbd=0" in out.out and "vinput=1" in out.out, out
    vkbd.wait_until_succeeds("test ! -e /dev/vinput0", timeout=30)
    vkbd.rmmod("vinput")  # closed now
    vkbd.wait_for_console_text("vinput: Unloading virtual input driver")


def test_concurrent_writers_and_exports(vkbd):
    export(vkbd)
    vkbd.succeed(
        "for w in 1 2 3; do (for i in $(seq 100); do echo +$w > /dev/vinput0; "
        "echo -$w > /dev/vinput0; done) & done; "
        f"(for i in $(seq 20); do echo vkbd > {CLASS}/export; echo 1 > {CLASS}/unexport; "
        "done) & wait", timeout=300)
    assert vkbd.succeed("cat /dev/vinput0") in {"-1\n", "-2\n", "-3\n"}
    assert vkbd.run("test -e /dev/vinput1").status != 0


def test_vkbd_needs_vinput(vm):
    with pytest.raises(CommandFailed, match="Unknown symbol|unknown symbol"):
        vm.insmod("vkbd")


def test_unload_and_load_again(vkbd):
    export(vkbd)
    assert vkbd.run("rmmod vinput").status != 0  # vkbd uses it
    vkbd.rmmod("vkbd")
    vkbd.wait_for_console_text("vinput: unregistered virtual input device 'vkbd'")
    vkbd.wait_until_succeeds("test ! -e /dev/vinput0", timeout=30)
    assert "vkbd" not in vkbd.succeed("cat /sys/class/input/input*/name 2>/dev/null; true")
    result = vkbd.run(f"echo vkbd > {CLASS}/export")
    assert result.status != 0 and "No such device" in result.err
    vkbd.rmmod("vinput")
    vkbd.wait_for_console_text("vinput: Unloading virtual input driver")
    assert vkbd.run(f"test -e {CLASS}").status != 0
    vkbd.insmod("vinput")
    vkbd.insmod("vkbd")
    export(vkbd)
    assert keys_seen(vkbd, event_node(vkbd), ["+1", "-1"], 2) == [(1, 1), (1, 0)]


def test_unloading_leaves_nothing_behind(vkbd):
    # On the debug lane kmemleak checks that unloading after real use leaves nothing behind.
    # `rustkm fuzz kmods/lkmpg/vinput --seconds 20 --seed 42` found vinput's global state
    # keeping its types' buffer after the unload (8 bytes from krealloc in vinput_register,
    # called from vkbd's init), three runs out of three before the fix and none after; a run
    # this short does not always let kmemleak see it (a stale reference hides it).
    export(vkbd)
    assert keys_seen(vkbd, event_node(vkbd), ["+30", "-30"], 2) == [(30, 1), (30, 0)]
    vkbd.assert_no_leaks("vinput", "vkbd")  # kmemleak on the debug lane
    assert vkbd.run(f"test -e {CLASS}").status != 0
