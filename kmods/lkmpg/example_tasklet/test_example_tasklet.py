"""LKMPG example_tasklet in Rust: a tasklet scheduled at load runs in softirq context."""

import pytest

pytestmark = pytest.mark.rustkm(modules=["."], cpus=2)

RUNS = "/proc/sys/lkmpg/example_tasklet"
P = "example_tasklet: "


def lines(vm) -> list[str]:
    return vm.console_log.splitlines()


def index(log: list[str], text: str, nth: int = 1) -> int:
    """The line number of the nth line ending with `text`."""
    hits = [i for i, line in enumerate(log) if line.endswith(P + text)]
    assert len(hits) >= nth, (text, hits)
    return hits[nth - 1]


def test_the_originals_log_sequence(vm):
    # The original's 5 s busy wait in the tasklet.
    vm.insmod("example_tasklet", timeout=120)
    vm.wait_for_console_text("Example tasklet ends", timeout=120)
    vm.wait_until_succeeds(f"test $(cat {RUNS}) = 1")
    vm.rmmod("example_tasklet")
    vm.wait_for_console_text("tasklet killed after 1 runs")
    log = lines(vm)
    init = index(log, "tasklet example init")
    starts, ends = index(log, "Example tasklet starts"), index(log, "Example tasklet ends")
    continues = index(log, "Example tasklet init continues...")
    exit_ = index(log, "tasklet example exit")
    assert init < starts < ends < exit_
    assert init < continues < exit_


def test_rmmod_waits_for_a_scheduled_or_running_tasklet(vm):
    vm.insmod("example_tasklet", delay_ms=2000, timeout=120)
    vm.wait_until_succeeds(f"test $(cat {RUNS}) = 1", timeout=60)
    # Scheduled again and unloaded at once: the kill waits for that run to end.
    vm.succeed(f"echo 1 > {RUNS}; rmmod example_tasklet", timeout=120)
    vm.wait_for_console_text("tasklet killed after 2 runs")
    log = lines(vm)
    assert index(log, "Example tasklet ends", 2) < index(log, "tasklet killed after 2 runs")


def test_each_write_of_1_runs_it_again(vm):
    vm.insmod("example_tasklet", delay_ms=10)
    vm.wait_until_succeeds(f"test $(cat {RUNS}) = 1")
    for runs in (2, 3, 4):
        vm.succeed(f"echo 1 > {RUNS}")
        vm.wait_until_succeeds(f"test $(cat {RUNS}) = {runs}")
    vm.rmmod("example_tasklet")
    vm.wait_for_console_text("tasklet killed after 4 runs")


def test_concurrent_schedules_do_no_harm(vm):
    vm.insmod("example_tasklet", delay_ms=50)
    vm.wait_until_succeeds(f"test $(cat {RUNS}) = 1")
    vm.succeed(" ".join(f"(echo 1 > {RUNS}) &" for _ in range(8)) + " wait", timeout=120)
    vm.rmmod("example_tasklet", timeout=120)
    killed = vm.wait_for_console_text("tasklet killed after")
    # Schedules of a tasklet that is still pending merge into one run.
    runs = int(killed.split("after ")[1].split()[0])
    assert 2 <= runs <= 9


@pytest.mark.parametrize("text", ["0", "2", "abc", "", "11", "1 1"])
def test_other_writes_are_refused(vm, text):
    vm.insmod("example_tasklet", delay_ms=0)
    vm.wait_until_succeeds(f"test $(cat {RUNS}) = 1")
    result = vm.run(f"printf '%s' '{text}' | rawio write {RUNS} 0")
    assert result.status != 0 and "EINVAL" in result.out + result.err
    result = vm.run(f"head -c 100000 /dev/zero | tr '\\0' 1 | rawio write {RUNS} 0")
    assert result.status != 0
    assert vm.succeed(f"cat {RUNS}") == "1\n"


@pytest.mark.parametrize("param", ["delay_ms=10001", "delay_ms=-1", "delay_ms=x"])
def test_bad_parameters_keep_the_module_out(vm, param):
    result = vm.run(f"insmod /lib/modules/rustkm/example_tasklet.ko {param}")
    assert result.status != 0
    assert "example_tasklet" not in vm.succeed("cut -d' ' -f1 /proc/modules").split()
    assert "tasklet example init" not in vm.console_log


def test_unload_and_load_again(vm):
    for n in range(1, 4):
        vm.insmod("example_tasklet", delay_ms=20)
        vm.rmmod("example_tasklet")
        vm.wait_until_succeeds(f"test $(dmesg | grep -c 'tasklet killed after 1 runs') -ge {n}")
        assert vm.dmesg().count(P + "Example tasklet ends") == n  # the console can lose lines
