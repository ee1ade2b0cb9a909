"""The Machine API against a real guest: exit codes, output, timeouts, kernel trouble, reaping."""

import dataclasses
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from rustkm import boot
from rustkm.agent import GuestStuck
from rustkm.errors import RustkmError
from rustkm.kernel.guest import guest_kernel
from rustkm.machine import CommandFailed, KernelTrouble
from rustkm.module import build_module
from rustkm.vm import VmOptions

ROOT = Path(__file__).parents[1]

TROUBLE = pytest.mark.rustkm(modules=["kmods/trouble"])


def test_status_stdout_and_stderr_are_separate(vm):
    result = vm.run("echo out; echo err >&2; exit 3")
    assert (result.status, result.stdout, result.stderr) == (3, b"out\n", b"err\n")
    assert not result.timed_out


def test_execute_never_raises_and_succeed_fail_do(vm):
    assert vm.execute("false") == (1, "")
    assert vm.succeed("echo hi", "echo there") == "hi\nthere\n"
    with pytest.raises(CommandFailed, match="status 7"):
        vm.succeed("exit 7")
    with pytest.raises(CommandFailed, match="should fail"):
        vm.fail("true")
    vm.fail("cat /nonexistent")


def test_binary_output_is_byte_exact(vm):
    out = vm.run(r"printf '\000\001\377\r\n\033[0m\n'").stdout
    assert out == b"\x00\x01\xff\r\n\x1b[0m\n"


def test_five_megabytes_of_output(vm):
    result = vm.run("head -c 5000000 /dev/urandom > /tmp/blob; md5sum /tmp/blob >&2; "
                    "cat /tmp/blob", timeout=120)
    assert len(result.stdout) == 5_000_000
    assert hashlib.md5(result.stdout).hexdigest() == result.err.split()[0]


def test_a_hanging_command_is_killed_and_the_vm_stays_usable(vm):
    start = time.monotonic()
    result = vm.run("echo before; sleep 1000; echo after", timeout=2)
    assert result.timed_out and result.stdout == b"before\n"
    assert time.monotonic() - start < 10
    assert vm.succeed("echo alive") == "alive\n"


def test_background_jobs_survive_their_command_but_not_its_timeout(vm):
    vm.succeed("sleep 1000 > /dev/null 2>&1 & echo started")
    assert "sleep 1000" in vm.succeed("ps -o args")
    assert vm.run("sleep 2000 & sleep 3000", timeout=1).timed_out
    processes = vm.succeed("ps -o args")
    assert "sleep 2000" not in processes and "sleep 3000" not in processes


def test_wait_helpers(vm):
    vm.run("(sleep 1; touch /tmp/flag; echo flag-made > /dev/kmsg) > /dev/null 2>&1 &")
    vm.wait_for_file("/tmp/flag", timeout=20)
    assert "flag-made" in vm.wait_for_console_text("flag-made", timeout=20)
    vm.wait_until_succeeds("test -e /tmp/flag")
    vm.run("(sleep 1; rm /tmp/flag) &")
    vm.wait_until_fails("test -e /tmp/flag", timeout=20)
    with pytest.raises(RustkmError, match="did not appear"):
        vm.wait_for_console_text("never printed", timeout=1)


def test_copy_to_and_from_round_trip(vm, tmp_path):
    data = os.urandom(200_000)
    (tmp_path / "in").write_bytes(data)
    vm.copy_to(tmp_path / "in", "/tmp/copied")
    assert vm.succeed("wc -c < /tmp/copied").strip() == str(len(data))
    vm.copy_from("/tmp/copied", tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == data


@pytest.mark.rustkm(cpus=2, memory=192)
def test_vm_options_cpus_and_memory(vm):
    assert vm.succeed("nproc").strip() == "2"
    total_kib = int(vm.succeed("awk '/MemTotal/ {print $2}' /proc/meminfo"))
    assert 100_000 < total_kib < 192 * 1024


@TROUBLE
def test_insmod_failure_says_why_with_the_kernel_log(vm):
    with pytest.raises(CommandFailed) as failure:
        vm.insmod("trouble", action=99)
    assert "Invalid argument" in str(failure.value) or "Invalid param" in str(failure.value)
    assert "trouble: action 99" in str(failure.value)
    with pytest.raises(RustkmError, match="no module 'nope'"):
        vm.insmod("nope")


@TROUBLE
def test_a_warn_fails_the_call_with_its_report(vm):
    with pytest.raises(KernelTrouble) as trouble:
        vm.insmod("trouble", action=1)
    assert trouble.value.troubles[0].kind == "warn"
    assert "trouble.rs" in str(trouble.value)


@TROUBLE
def test_an_expected_warn_is_collected_not_raised(vm):
    with vm.expect_trouble("warn") as seen:
        vm.insmod("trouble", action=1)
    assert seen and seen[0].kind == "warn"
    assert vm.succeed("echo fine") == "fine\n"


@TROUBLE
def test_a_rust_panic_is_reported_with_its_message(vm):
    with pytest.raises(KernelTrouble) as trouble:
        vm.insmod("trouble", action=2)
    assert trouble.value.troubles[0].kind == "rust-panic"
    assert "a Rust panic on purpose" in str(trouble.value)


@TROUBLE
def test_an_oops_is_one_report_with_its_registers_and_call_trace(vm):
    with pytest.raises(KernelTrouble) as trouble:
        vm.insmod("trouble", action=4)
    assert [t.kind for t in trouble.value.troubles] == ["bug"]
    text = trouble.value.troubles[0].report()
    assert "BUG: kernel NULL pointer dereference" in text
    assert "Oops: " in text and "Call Trace:" in text and "end trace" in text
    assert "trouble" in text  # the module's frame, demangled


def test_a_guest_panic_ends_the_call_not_hangs(vm):
    start = time.monotonic()
    with pytest.raises((KernelTrouble, GuestStuck)) as trouble:
        vm.run("echo c > /proc/sysrq-trigger", timeout=60)
    assert time.monotonic() - start < 30
    assert "sysrq triggered crash" in str(trouble.value)


@pytest.mark.rustkm(modules=["kmods/trouble"], hung_task_seconds=2)
def test_a_task_stuck_in_d_state_is_reported_as_a_hung_task(vm):
    with pytest.raises(KernelTrouble) as trouble:
        vm.insmod("trouble", action=3, seconds=60, timeout=2)
    assert trouble.value.troubles[0].kind == "hung-task"
    assert "msleep" in str(trouble.value)
    with pytest.raises(RustkmError, match="not running"):
        vm.succeed("true")


def test_two_vms_at_once_from_one_process(kernel):
    with boot(kernel, name="first") as a, boot(kernel, name="second") as b:
        a.succeed("echo a > /tmp/who")
        b.succeed("echo b > /tmp/who")
        assert (a.succeed("cat /tmp/who"), b.succeed("cat /tmp/who")) == ("a\n", "b\n")


def test_clean_shutdown(kernel):
    with boot(kernel) as machine:
        qemu = machine._qemu
        machine.shutdown()
        assert qemu is not None and qemu.proc.returncode == 0


def qemu_pids(marker: str) -> list[str]:
    ps = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True, check=False)
    return ps.stdout.split()


@pytest.mark.parametrize("how", ["sigkill", "exception"])
def test_no_qemu_outlives_its_owner(kernel, tmp_path, how):
    marker = f"rustkm-orphan-{how}-{os.getpid()}"
    script = tmp_path / "owner.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from rustkm.machine import GuestKernel
        from rustkm import boot
        from rustkm.vm import VmOptions
        with boot(GuestKernel(Path({str(kernel.vmlinux)!r})),
                  options=VmOptions(append=({marker!r},))) as vm:
            print("booted", flush=True)
            if {how!r} == "exception":
                sys.stdin.readline()  # once the test has seen QEMU running
                raise SystemExit("leaving with an exception")
            time.sleep(600)
    """))
    owner = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    assert owner.stdout is not None and owner.stdout.readline().strip() == "booted"
    assert qemu_pids(marker), "QEMU should be running while its owner lives"
    if how == "sigkill":
        owner.send_signal(signal.SIGKILL)
    else:
        assert owner.stdin is not None
        owner.stdin.write("go\n")
        owner.stdin.close()
    owner.wait(timeout=60)
    deadline = time.monotonic() + 10
    while qemu_pids(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert qemu_pids(marker) == []


def test_a_boot_that_hangs_times_out(kernel):
    # cat as init waits on the console for ever: the agent never starts.
    options = VmOptions(append=("rdinit=/bin/busybox", "--", "cat"), boot_timeout=3)
    with pytest.raises(GuestStuck, match="did not boot"), boot(kernel, options=options):
        pass


def test_a_guest_that_locks_up_while_booting_boots_once_more_and_says_so(rustkm_kernel, capfd):
    # tests/kmods/lockup spins with preemption off as it loads, before the agent starts:
    # watchdog_thresh=1 has the kernel report a soft lockup within seconds. It locks up at
    # every boot, so the second boot fails too, and the error says both did.
    tc, kernel = rustkm_kernel
    lockup = build_module(tc, kernel, ROOT / "tests/kmods/lockup").ko("lockup")
    image = dataclasses.replace(guest_kernel(kernel), early_modules=(lockup,))
    options = VmOptions(append=("watchdog_thresh=1",), snapshot=False)
    start = time.monotonic()
    with pytest.raises(RustkmError) as failed, boot(image, options=options, toolchain=tc):
        pytest.fail("booted")
    assert time.monotonic() - start < 90  # not the 120 s boot timeout, twice
    assert "soft lockup" in str(failed.value)
    assert "the boot before locked up too: watchdog: BUG: soft lockup" in str(failed.value)
    said = " ".join(capfd.readouterr().err.split())  # as said, whatever the line width
    assert "the guest locked up while booting (watchdog: BUG: soft lockup" in said
    assert "it boots once more" in said
    assert "Its vCPUs: CPU#0 RIP=" in said  # where QEMU says the vCPU was
    assert "do_init_module" in said  # the console's tail: the report's trace


def test_a_panic_at_boot_is_reported(kernel):
    options = VmOptions(append=("rdinit=/nonexistent",))
    with pytest.raises(KernelTrouble, match="panic"), boot(kernel, options=options):
        pass
