"""LKMPG sched in Rust: work queued on the module's own workqueue runs; rmmod waits for it."""

import pytest

pytestmark = pytest.mark.rustkm(modules=["."], cpus=2)

COUNT = "/proc/sys/lkmpg/sched"
HANDLER = "sched: work handler function."


def handler_lines(vm) -> int:
    """From dmesg: the serial console can lose a line of a burst when the host is loaded."""
    return sum(1 for line in vm.dmesg().splitlines() if HANDLER in line)


def test_the_work_queued_at_load_runs_once(vm):
    vm.insmod("sched")
    vm.wait_for_console_text(HANDLER)
    vm.wait_until_succeeds(f"test $(cat {COUNT}) = 1")
    vm.rmmod("sched")
    vm.wait_for_console_text("sched: sched exit: 1 work items ran")
    assert handler_lines(vm) == 1


def test_n_works_queued_from_user_space_run_n_times(vm):
    vm.insmod("sched")
    vm.wait_until_succeeds(f"test $(cat {COUNT}) = 1")
    vm.succeed(f"echo 20 > {COUNT}")
    vm.succeed(f"echo 5 > {COUNT}")
    vm.wait_until_succeeds(f"test $(cat {COUNT}) = 26", timeout=120)
    vm.rmmod("sched")
    vm.wait_for_console_text("sched exit: 26 work items ran")
    assert handler_lines(vm) == 26


def test_rmmod_waits_for_pending_work(vm):
    # One item at a time, each sleeping 300 ms: rmmod comes while most are still queued.
    vm.insmod("sched", works=8, delay_ms=300)
    vm.rmmod("sched", timeout=120)
    assert "sched exit: 8 work items ran" in vm.wait_for_console_text("sched exit:")
    assert handler_lines(vm) == 8
    assert "sched" not in vm.succeed("cut -d' ' -f1 /proc/modules").split()


def test_concurrent_writers_queue_everything(vm):
    vm.insmod("sched", works=0)
    vm.succeed(" ".join(f"(echo 50 > {COUNT}) &" for _ in range(4)) + " wait", timeout=120)
    vm.wait_until_succeeds(f"test $(cat {COUNT}) = 200", timeout=180)
    vm.rmmod("sched")
    vm.wait_for_console_text("sched exit: 200 work items ran")


@pytest.mark.parametrize("text", ["abc", "-1", "", "10001", "99999999999", "1 2"])
def test_bad_writes_are_refused_and_queue_nothing(vm, text):
    vm.insmod("sched", works=0)
    result = vm.run(f"printf '%s' '{text}' | rawio write {COUNT} 0")
    assert result.status != 0 and "EINVAL" in result.out + result.err
    assert vm.succeed(f"cat {COUNT}") == "0\n"


def test_a_huge_write_is_refused(vm):
    vm.insmod("sched", works=0)
    result = vm.run(f"head -c 100000 /dev/zero | tr '\\0' 1 | rawio write {COUNT} 0")
    assert result.status != 0
    assert vm.succeed(f"cat {COUNT}") == "0\n"


@pytest.mark.parametrize("param", ["works=10001", "delay_ms=1001", "works=-1", "works=x"])
def test_bad_parameters_keep_the_module_out(vm, param):
    result = vm.run(f"insmod /lib/modules/rustkm/sched.ko {param}")
    assert result.status != 0
    assert "sched" not in vm.succeed("cut -d' ' -f1 /proc/modules").split()


def test_parameters_are_shown_read_only(vm):
    vm.insmod("sched", works=3, delay_ms=1)
    params = "/sys/module/sched/parameters"
    assert vm.succeed(f"cat {params}/works {params}/delay_ms") == "3\n1\n"
    assert vm.succeed(f"stat -c %a {params}/works") == "444\n"


def test_unload_and_load_again(vm):
    for _ in range(3):
        vm.insmod("sched", works=3)
        vm.rmmod("sched")
        vm.wait_for_console_text("sched exit: 3 work items ran")
    assert handler_lines(vm) == 9
