"""LKMPG print_string in Rust: the module's greeting and farewell arrive on the controlling tty
of the process that loads and unloads it, a pseudo-terminal opened by ttyrun.c."""

import pytest

pytestmark = pytest.mark.rustkm(modules=["."], programs=["ttyrun.c"])

KO = "/lib/modules/rustkm/print_string.ko"  # where the vm fixture puts the modules
HELLO = "The module has been inserted.  Hello world!\r\n"
FAREWELL = "The module has been removed.  Farewell world!\r\n"


@pytest.fixture
def ptys(vm):
    vm.succeed("mkdir -p /dev/pts && mount -t devpts devpts /dev/pts")
    return vm


def test_insmod_and_rmmod_print_on_their_tty(ptys):
    for _ in range(2):  # unload, then load again, must work
        assert ptys.succeed(f"ttyrun insmod {KO}") == HELLO
        assert "print_string" in ptys.succeed("cat /proc/modules")
        assert ptys.succeed("ttyrun rmmod print_string") == FAREWELL
    # The text went to the tty only, not to the kernel log.
    assert "Hello world" not in ptys.dmesg() and "Hello world" not in ptys.console_log


def test_the_tty_not_standard_output(ptys):
    # insmod's output and errors go elsewhere; its shell's controlling tty still gets the text.
    # (`; true`: the shell stays, holding the tty open, rather than exec the last command.)
    out = ptys.succeed(f"ttyrun sh -c 'insmod {KO} > /tmp/out 2>&1 < /dev/null; "
                       "rmmod print_string > /tmp/out 2>&1 < /dev/null; true'")
    assert out == HELLO + FAREWELL
    assert ptys.succeed("cat /tmp/out") == ""


def test_a_controlling_tty_nobody_has_open_gets_eio(ptys):
    # exec: the shell's stdin, the last open file on the tty, becomes /dev/null; the session
    # keeps the tty as its controlling tty, but it is not open, and the write fails.
    result = ptys.run(f"ttyrun sh -c 'exec insmod {KO} < /dev/null'")
    assert result.status == 0 and result.out == "", result.err
    ptys.wait_for_console_text("print_string: could not print to the tty: error -5")
    ptys.rmmod("print_string")


def test_no_controlling_tty_prints_nothing(vm):
    # The agent's commands run in a session without a controlling tty.
    assert vm.run("cat /dev/tty").status != 0
    vm.insmod("print_string")
    assert "print_string" in vm.succeed("cat /proc/modules")
    vm.rmmod("print_string")
    vm.insmod("print_string")
    vm.rmmod("print_string")
    assert "Hello world" not in vm.dmesg() and "could not print" not in vm.dmesg()


def test_a_hung_up_tty_prints_nothing(ptys):
    # The master is closed before insmod runs: the hangup takes the tty away from the session.
    result = ptys.run(f"ttyrun --hangup insmod {KO}")
    assert result.status == 0 and result.out == "", result.err
    assert "print_string" in ptys.succeed("cat /proc/modules")
    ptys.rmmod("print_string")
    # Loading again on a live tty prints again.
    assert ptys.succeed(f"ttyrun insmod {KO}") == HELLO
