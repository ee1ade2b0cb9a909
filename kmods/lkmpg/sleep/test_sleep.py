"""LKMPG sleep in Rust: /proc/sleep has one opener at a time; others sleep, or get EAGAIN."""

import pytest

pytestmark = pytest.mark.rustkm(modules=["."], programs=["cat_nonblock.c"])

FILE = "/proc/sleep"
# A process that holds /proc/sleep open until killed; its pid lands in /tmp/holder.
HOLD = (f"sh -c 'exec 3<{FILE}; echo $$ > /tmp/holder; exec sleep 600' "
        "> /dev/null 2>&1 &")


@pytest.fixture
def sleep(vm):
    vm.insmod("sleep")
    vm.wait_for_console_text("/proc/sleep created")
    return vm


def test_messages_are_stored_and_read_back(sleep):
    assert sleep.succeed(f"cat {FILE}") == "Last input:\n"
    sleep.succeed(f"echo -n 'hello sleep' > {FILE}")
    assert sleep.succeed(f"cat {FILE}") == "Last input:hello sleep\n"
    assert sleep.succeed(f"dd if={FILE} bs=1 2>/dev/null") == "Last input:hello sleep\n"
    assert sleep.succeed(f"cat_nonblock {FILE}") == "Last input:hello sleep\n"


def test_long_binary_and_empty_writes(sleep):
    result = sleep.run(f"head -c 100000 /dev/zero | tr '\\0' x | rawio write {FILE} -")
    assert result.status == 0 and result.out.strip() == "79"
    assert sleep.succeed(f"cat {FILE}") == "Last input:" + "x" * 79 + "\n"
    sleep.succeed(f"printf '' | rawio write {FILE} -")
    assert sleep.succeed(f"cat {FILE}") == "Last input:\n"
    assert sleep.succeed(f"rawio read {FILE} 1000 10") == ""


def test_a_nonblocking_opener_gets_eagain_while_it_is_held(sleep):
    sleep.succeed(HOLD)
    sleep.wait_for_file("/tmp/holder")
    result = sleep.run(f"cat_nonblock {FILE}")
    assert result.status == 1 and result.out == "Open would block\n"
    assert "Resource temporarily unavailable" in result.err
    sleep.succeed("kill $(cat /tmp/holder)")
    assert sleep.wait_until_succeeds(f"cat_nonblock {FILE}", timeout=30) == "Last input:\n"


def test_a_blocking_opener_proceeds_only_after_the_holder_closes(sleep):
    sleep.succeed(HOLD)
    sleep.wait_for_file("/tmp/holder")
    sleep.succeed(f"(cat {FILE} > /tmp/waiter.out; echo done > /tmp/waiter.done) "
                  "> /dev/null 2>&1 &")
    # The waiter sleeps in open (state S, in the kernel) while the holder lives.
    sleep.wait_until_succeeds("ps -o stat,args | grep -q '^S.*cat /proc/sleep'", timeout=30)
    sleep.fail("test -e /tmp/waiter.done")
    sleep.succeed("kill $(cat /tmp/holder)")
    sleep.wait_for_file("/tmp/waiter.done", timeout=30)
    assert sleep.succeed("cat /tmp/waiter.out") == "Last input:\n"


def test_a_sleeping_opener_can_be_killed(sleep):
    sleep.succeed(HOLD)
    sleep.wait_for_file("/tmp/holder")
    sleep.succeed(f"sh -c 'echo $$ > /tmp/waiter; exec cat {FILE}' > /dev/null 2>&1 &")
    sleep.wait_until_succeeds("ps -o stat,args | grep -q '^S.*cat /proc/sleep'", timeout=30)
    # (SIGTERM: background jobs of a non-interactive shell ignore SIGINT.)
    sleep.succeed("kill -TERM $(cat /tmp/waiter)")
    # The signal ends the wait: the sleeper is gone, the holder still holds the file.
    sleep.wait_until_succeeds("! ps -o args | grep -q '^cat /proc/sleep'", timeout=30)
    sleep.succeed("kill -0 $(cat /tmp/holder)")
    # The module is still usable: the holder goes, the file opens.
    sleep.succeed("kill $(cat /tmp/holder)")
    assert sleep.wait_until_succeeds(f"cat {FILE}", timeout=30) == "Last input:\n"


def test_many_waiters_all_get_in_one_at_a_time(sleep):
    sleep.succeed(HOLD)
    sleep.wait_for_file("/tmp/holder")
    sleep.succeed(f"for i in 1 2 3 4 5 6; do (exec 3<{FILE}; echo $i >> /tmp/in; sleep 0.2; "
                  "echo $i >> /tmp/in; touch /tmp/w$i) > /dev/null 2>&1 & done")
    sleep.wait_until_succeeds("test $(ps -o stat,args | grep -c '^S.*sh') -ge 6", timeout=30)
    sleep.fail("test -e /tmp/in")
    sleep.succeed("kill $(cat /tmp/holder)")
    for i in range(1, 7):
        sleep.wait_for_file(f"/tmp/w{i}", timeout=60)
    # Each waiter's two lines are adjacent: nobody else had the file meanwhile.
    lines = sleep.succeed("cat /tmp/in").split()
    assert len(lines) == 12 and all(lines[k] == lines[k + 1] for k in range(0, 12, 2))


def test_rmmod_wakes_sleepers_with_enodev_and_reload_works(sleep):
    sleep.succeed(HOLD)
    sleep.wait_for_file("/tmp/holder")
    sleep.succeed(f"(cat {FILE} 2> /tmp/waiter.err; touch /tmp/waiter.done) "
                  "> /dev/null 2>&1 &")
    sleep.wait_until_succeeds("ps -o stat,args | grep -q '^S.*cat /proc/sleep'", timeout=30)
    sleep.rmmod("sleep")
    sleep.wait_for_file("/tmp/waiter.done", timeout=30)
    assert "No such device" in sleep.succeed("cat /tmp/waiter.err")
    sleep.fail(f"test -e {FILE}")
    sleep.succeed("kill $(cat /tmp/holder)")  # the holder's close after removal is harmless
    sleep.insmod("sleep")
    assert sleep.succeed(f"cat {FILE}") == "Last input:\n"
