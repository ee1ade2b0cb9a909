"""LKMPG completions in Rust: the flywheel thread always waits for the crank thread."""

import pytest

pytestmark = pytest.mark.rustkm(modules=["."], cpus=2)

STAGE = "/proc/sys/lkmpg/completions"
ORDER = ["completions: completions example", "completions: Turn the crank",
         "completions: Flywheel spins up", "completions: completions exit"]


def kernel_log(vm) -> list[str]:
    """The kernel's log from its ring buffer: the serial console may show a line late (an
    arm64 guest under TCG on a loaded host did, right after rmmod) or cut it."""
    return vm.succeed("dmesg").splitlines()


def positions(vm, since: int) -> list[int]:
    """Line numbers of the ORDER lines after line `since` of the kernel's log, each found
    exactly once."""
    lines = kernel_log(vm)[since:]
    found = []
    for text in ORDER:
        hits = [i for i, line in enumerate(lines) if line.endswith(text)]
        assert len(hits) == 1, (text, hits)
        found.append(hits[0])
    return found


def test_the_crank_turns_before_the_flywheel_on_every_load(vm):
    for _ in range(5):
        mark = len(kernel_log(vm))
        vm.insmod("completions")
        vm.wait_until_succeeds(f"test $(cat {STAGE}) = 2")
        vm.rmmod("completions")
        vm.wait_for_console_text("completions exit")
        found = positions(vm, mark)
        assert found == sorted(found)


def test_the_flywheel_waits_until_the_crank_is_turned(vm):
    vm.insmod("completions", manual_crank=1)
    # Both threads exist and wait: the crank for user space, the flywheel for the crank
    # (ps shows 15 bytes of a name).
    vm.wait_until_succeeds("ps | grep -q '\\[[K]Thread Crank\\]'")
    vm.wait_until_succeeds("ps | grep -q '\\[[K]Thread Flywhee\\]'")
    assert vm.succeed(f"cat {STAGE}") == "0\n"
    log = "\n".join(kernel_log(vm))
    assert "Turn the crank" not in log and "Flywheel spins up" not in log
    vm.succeed(f"echo 1 > {STAGE}")
    vm.wait_until_succeeds(f"test $(cat {STAGE}) = 2")
    # The threads are done and gone.
    vm.wait_until_fails("ps | grep -q '[K]Thread'")
    vm.rmmod("completions")
    found = positions(vm, 0)
    assert found == sorted(found)


def test_rmmod_turns_the_crank_nobody_turned(vm):
    vm.insmod("completions", manual_crank=1)
    vm.wait_until_succeeds("ps | grep -q '\\[[K]Thread Flywhee\\]'")
    vm.rmmod("completions")
    found = positions(vm, 0)
    assert found == sorted(found)
    assert "KThread" not in vm.succeed("ps")


@pytest.mark.parametrize("text", ["0", "2", "abc", "", "11"])
def test_other_writes_are_refused(vm, text):
    vm.insmod("completions", manual_crank=1)
    result = vm.run(f"printf '%s' '{text}' | rawio write {STAGE} 0")
    assert result.status != 0 and "EINVAL" in result.out + result.err
    assert vm.succeed(f"cat {STAGE}") == "0\n"
    vm.rmmod("completions")


def test_a_huge_write_is_refused_and_turning_twice_is_harmless(vm):
    vm.insmod("completions", manual_crank=1)
    result = vm.run(f"head -c 100000 /dev/zero | tr '\\0' 1 | rawio write {STAGE} 0")
    assert result.status != 0
    assert vm.succeed(f"cat {STAGE}") == "0\n"
    vm.succeed(f"echo 1 > {STAGE}", f"echo 1 > {STAGE}")
    vm.wait_until_succeeds(f"test $(cat {STAGE}) = 2")
    vm.rmmod("completions")
    vm.insmod("completions")
    vm.wait_until_succeeds(f"test $(cat {STAGE}) = 2")
    vm.rmmod("completions")
    assert vm.dmesg().count("completions exit") == 2  # the kernel log: the console can lose lines


def test_a_bad_parameter_keeps_the_module_out(vm):
    result = vm.run("insmod /lib/modules/rustkm/completions.ko manual_crank=maybe")
    assert result.status != 0
    assert "completions" not in vm.succeed("cut -d' ' -f1 /proc/modules").split()
    assert "KThread" not in vm.succeed("ps")
