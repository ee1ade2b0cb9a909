"""LKMPG chardev in Rust: the open count in its message, one opener at a time, writes refused."""

import pytest

pytestmark = pytest.mark.rustkm(modules=["."])


@pytest.fixture
def chardev(vm):
    vm.insmod("chardev")
    vm.wait_for_file("/dev/chardev")
    return vm


def test_each_open_counts(chardev):
    out = chardev.succeed("cat /dev/chardev; cat /dev/chardev; dd if=/dev/chardev bs=4 2>/dev/null")
    assert out.splitlines() == [f"I already told you {n} times Hello world!" for n in range(3)]


def test_a_second_concurrent_opener_gets_ebusy(chardev):
    chardev.succeed("(exec 3</dev/chardev; touch /tmp/holding; sleep 3) > /dev/null 2>&1 &")
    chardev.wait_for_file("/tmp/holding")
    result = chardev.run("cat /dev/chardev")
    assert result.status == 1 and "Device or resource busy" in result.err
    # Once the holder closes, the device opens again.
    out = chardev.wait_until_succeeds("cat /dev/chardev", timeout=20)
    assert out.startswith("I already told you")


def test_writes_are_refused_with_einval(chardev):
    result = chardev.run("printf hi | rawio write /dev/chardev -")
    assert result.status == 1 and "EINVAL" in result.err
    chardev.wait_for_console_text("Sorry, this operation is not supported.")
    # A refused write leaves the device usable.
    assert chardev.succeed("cat /dev/chardev").startswith("I already told you")


def test_many_racing_openers_never_share_it(chardev):
    out = chardev.succeed(
        "for i in 1 2 3 4 5 6 7 8; do (for j in $(seq 30); do cat /dev/chardev 2>/dev/null; "
        "done > /tmp/o$i) & done; wait; cat /tmp/o*", timeout=120)
    counts = [int(line.split()[4]) for line in out.splitlines()]
    assert len(counts) == len(set(counts)) > 0  # every successful open got its own number


def test_no_unload_while_the_device_is_open(chardev):
    chardev.succeed("sh -c 'exec 3</dev/chardev; echo $$ > /tmp/holder; exec sleep 600' "
                    "> /dev/null 2>&1 &")
    chardev.wait_for_file("/tmp/holder")
    result = chardev.run("rmmod chardev")
    assert result.status != 0 and "Resource temporarily unavailable" in result.err  # refcount held
    chardev.succeed("kill $(cat /tmp/holder)")
    chardev.wait_until_succeeds("rmmod chardev", timeout=30)


def test_unload_and_load_again_restarts_the_count(chardev):
    chardev.succeed("cat /dev/chardev")
    chardev.rmmod("chardev")
    chardev.insmod("chardev")
    chardev.wait_for_file("/dev/chardev")
    assert chardev.succeed("cat /dev/chardev").startswith("I already told you 0 times")
