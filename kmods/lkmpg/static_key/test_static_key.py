"""LKMPG static_key in Rust: /dev/key_state flips a static key; each open takes the unlikely
branch only while the key is enabled; bad commands get EINVAL."""

import pytest

pytestmark = pytest.mark.rustkm(modules=["."], cpus=2)

DEV = "/dev/key_state"


@pytest.fixture
def key(vm):
    vm.insmod("static_key")
    vm.wait_for_file(DEV)
    return vm


def opened(vm) -> tuple[str, bool]:
    """Opens and reads the device: what it says, and whether the open ran the unlikely branch."""
    vm.succeed("dmesg -c > /dev/null")
    state = vm.succeed(f"cat {DEV}")
    log = vm.succeed("dmesg")
    assert "fastpath 1" in log and "fastpath 2" in log
    return state, "do unlikely thing" in log


def command(vm, text: str):
    return vm.run(f"printf '{text}' | rawio write {DEV} -")


def test_writes_flip_the_key_and_the_branch(key):
    key.wait_for_console_text("static_key: Device created on /dev/key_state")
    assert opened(key) == ("disabled\n", False)
    for _ in range(2):
        key.succeed(f"echo enable > {DEV}")
        assert opened(key) == ("enabled\n", True)
        assert opened(key) == ("enabled\n", True)  # it stays so
        key.succeed(f"echo disable > {DEV}")
        assert opened(key) == ("disabled\n", False)


def test_repeated_commands_are_idempotent(key):
    for _ in range(3):
        key.succeed(f"echo enable > {DEV}")
    key.succeed(f"echo disable > {DEV}")
    assert opened(key) == ("disabled\n", False)
    for _ in range(3):
        key.succeed(f"echo disable > {DEV}")
    key.succeed(f"echo enable > {DEV}")
    assert opened(key) == ("enabled\n", True)


def test_bad_commands_get_einval_and_change_nothing(key):
    key.succeed(f"echo enable > {DEV}")
    for bad, logged in [("bogus", "Invalid command: bogus"), ("", "Invalid command: "),
                        ("\\377\\000\\001", "Invalid command: "),
                        ("enable-it-now", "command exceeded 10 char"),
                        ("x" * 5000, "command exceeded 10 char")]:
        key.succeed("dmesg -c > /dev/null")
        result = command(key, bad)
        assert result.status == 1 and "EINVAL" in result.err, bad
        assert logged in key.succeed("dmesg"), bad
    assert opened(key) == ("enabled\n", True)
    # As in the original, a command is matched by its start: "enabled" enables.
    result = command(key, "disabled!")
    assert result.status == 0 and result.out.strip() == "9"
    assert opened(key) == ("disabled\n", False)


def test_reads_at_any_offset(key):
    assert key.succeed(f"rawio read {DEV} 3 100") == "abled\n"
    assert key.succeed(f"rawio read {DEV} 9 100") == ""
    assert key.succeed(f"rawio read {DEV} 1000 100") == ""


def test_a_second_concurrent_opener_gets_ebusy(key):
    key.succeed(f"(exec 3<{DEV}; touch /tmp/holding; sleep 3) > /dev/null 2>&1 &")
    key.wait_for_file("/tmp/holding")
    result = key.run(f"cat {DEV}")
    assert result.status == 1 and "Device or resource busy" in result.err
    assert key.wait_until_succeeds(f"cat {DEV}", timeout=20) == "disabled\n"


def test_concurrent_writers(key):
    # Four writers flip the key 40 times each; opens may collide (EBUSY), the rest succeed.
    key.succeed(
        "for w in 1 2 3 4; do (for i in $(seq 20); do "
        f"echo enable > {DEV} && echo ok; echo disable > {DEV} && echo ok; "
        "done > /tmp/w$w 2>/dev/null) & done; wait", timeout=300)
    assert int(key.succeed("cat /tmp/w* | grep -c ok")) > 0
    # The key still follows the last write.
    key.wait_until_succeeds(f"echo enable > {DEV}", timeout=20)
    assert opened(key) == ("enabled\n", True)
    key.succeed(f"echo disable > {DEV}")
    assert opened(key) == ("disabled\n", False)


def test_reload_starts_disabled(key):
    key.succeed(f"echo enable > {DEV}")
    key.rmmod("static_key")
    assert key.run(f"test -e {DEV}").status == 1
    key.insmod("static_key")
    key.wait_for_file(DEV)
    assert opened(key) == ("disabled\n", False)
