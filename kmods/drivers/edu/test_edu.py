"""The edu driver against QEMU's edu device: identification and liveness registers, factorials
completed by the device's interrupt (and a timeout when it never comes), DMA through the
kernel's DMA API, unbind and bind, the device removed while a file is open, rmmod while an
operation runs, concurrent users and hostile requests. Expected values follow QEMU's
docs/specs/edu.rst and hw/misc/edu.c (32-bit factorials, a 4 KiB device buffer)."""

import math
import os
import re

import pytest

pytestmark = pytest.mark.rustkm(modules=["."], devices=["edu"], programs=["edu_ctl.c"])

DEV = "/dev/edu0"
BUFFER = 4096
# The device's PCI address: the first free slot after rustkm's two virtio devices.
SYSFS = "/sys/bus/pci/devices/0000:00:04.0"
# _IOR('E', 1, u32) with another type byte: a command the driver does not know.
UNKNOWN_IOCTL = 0x80045801
FACTORIAL_IOCTL = 0xC0044503


def device_factorial(n: int) -> int:
    """What edu computes: n! in 32-bit unsigned arithmetic."""
    return math.factorial(n) % 2**32


@pytest.fixture
def edu(vm):
    vm.insmod("edu")
    vm.wait_for_file(DEV)
    return vm


def ctl(vm, *args: object, dev: str = DEV) -> str:
    """edu_ctl's output: a result, or 'error: ENAME'."""
    return vm.run(f"edu_ctl {dev} " + " ".join(str(a) for a in args)).out.strip()


def test_probe_maps_the_device_and_names_its_node(edu):
    assert re.search(r"edu 0000:00:04.0: edu 1.0 at /dev/edu0, DMA buffer at 0x[0-9a-f]+",
                     edu.console_log)
    assert edu.succeed(f"readlink {SYSFS}/driver").strip().endswith("/edu")
    assert edu.succeed("readlink /sys/class/misc/edu0/device").strip().endswith("0000:00:04.0")
    assert ctl(edu, "id") == "0x010000ed"
    # The interrupt is an MSI (the guest has no route for the INTx pin).
    assert "PCI-MSI" in edu.succeed("grep edu /proc/interrupts")


@pytest.mark.parametrize("value", [0, 1, 0x12345678, 0xDEADBEEF, 0xFFFFFFFF])
def test_the_liveness_register_reads_back_inverted(edu, value):
    assert int(ctl(edu, "live", value), 16) == ~value & 0xFFFFFFFF


def test_factorials_match_the_devices_32_bit_arithmetic(edu):
    for n in (0, 1, 5, 12, 13, 20, 33, 34, 100, 100000):
        assert int(ctl(edu, "fact", n)) == device_factorial(n), n
    # Each came by interrupt: the MSI count went up by (at least) one per factorial.
    count = int(edu.succeed("grep edu /proc/interrupts").split()[1])
    assert count >= 10


def test_dma_moves_data_both_ways_byte_exact(edu, tmp_path):
    data = os.urandom(BUFFER)
    (tmp_path / "data").write_bytes(data)
    edu.copy_to(tmp_path / "data", "/tmp/data")
    assert edu.succeed(f"rawio write {DEV} 0 < /tmp/data").strip() == str(BUFFER)
    edu.succeed(f"cat {DEV} > /tmp/back")
    edu.copy_from("/tmp/back", tmp_path / "back")
    assert (tmp_path / "back").read_bytes() == data
    # Positional: 10 bytes at 1000 change those bytes only; a read at 995 sees the seam.
    assert edu.succeed(f"printf 0123456789 | rawio write {DEV} 1000").strip() == "10"
    seam = edu.run(f"rawio read {DEV} 995 20").stdout
    assert seam == data[995:1000] + b"0123456789" + data[1010:1015]
    # 12 transfers of 100 ms each (the device's DMA timer), each ended by the DMA interrupt.
    assert "no interrupt" not in edu.console_log


def test_transfers_stop_at_the_end_of_the_device_buffer(edu):
    # A write longer than the buffer is cut at its end, and one that starts there is ENOSPC.
    assert edu.succeed(f"head -c 5000 /dev/zero | rawio write {DEV} 0").strip() == str(BUFFER)
    assert edu.succeed(f"head -c 300 /dev/zero | rawio write {DEV} 4000").strip() == "96"
    result = edu.run(f"printf x | rawio write {DEV} 4096")
    assert result.status == 1 and "ENOSPC" in result.err
    # Reads end there too: at the end and past it, nothing.
    assert edu.succeed(f"rawio read {DEV} 4090 100 | wc -c").strip() == "6"
    assert edu.succeed(f"rawio read {DEV} 4096 100 {1 << 40} 10 | wc -c").strip() == "0"
    assert edu.succeed(f"cat {DEV} | wc -c").strip() == str(BUFFER)
    # A negative position is refused, and a huge single write (16 MiB) is cut to the buffer.
    assert "EINVAL" in edu.run(f"rawio read {DEV} -1 10").err
    assert edu.succeed(f"head -c 16777216 /dev/urandom | rawio write {DEV} 0").strip() == "4096"


def test_hostile_ioctls_are_refused(edu):
    assert ctl(edu, "raw", UNKNOWN_IOCTL, 0) == "error: ENOTTY"
    assert ctl(edu, "raw", FACTORIAL_IOCTL, 0) == "error: EFAULT"  # a NULL pointer
    assert ctl(edu, "raw", FACTORIAL_IOCTL, 0xFFFFFFFFFFFF0000) == "error: EFAULT"
    assert ctl(edu, "raw", 0, 0) == "error: ENOTTY"
    # Garbage written to the device is just data for its buffer.
    edu.succeed(f"head -c 4096 /dev/urandom > {DEV}")
    assert ctl(edu, "fact", 10) == str(device_factorial(10))


def msi_control(vm) -> int:
    """The config space offset of edu's MSI control word (the capability with ID 5)."""
    config = bytes(int(b, 16) for b in vm.succeed(f"od -An -v -tx1 {SYSFS}/config").split())
    at = config[0x34]
    while at:
        if config[at] == 0x05:
            return at + 2
        at = config[at + 1]
    raise AssertionError("edu has no MSI capability")


def test_an_interrupt_that_never_comes_times_out_and_the_device_recovers(vm):
    vm.insmod("edu", timeout_ms=300)
    vm.wait_for_file(DEV)
    control = msi_control(vm)
    enabled = vm.succeed(f"od -An -tx1 -j{control} -N1 {SYSFS}/config").strip()
    assert int(enabled, 16) & 1
    # MSI off behind the kernel's back: the device raises INTx, which goes nowhere.
    off = int(enabled, 16) & ~1
    vm.succeed(f"printf '\\{off:03o}' | dd of={SYSFS}/config bs=1 seek={control} conv=notrunc")
    result = vm.run(f"edu_ctl {DEV} fact 6")
    assert result.out.strip() == "error: ETIMEDOUT"
    assert result.duration < 3
    vm.wait_for_console_text(r"edu 0000:00:04.0: no interrupt 0x1 within 300 ms")
    vm.succeed(f"printf '\\{int(enabled, 16):03o}' | dd of={SYSFS}/config bs=1 seek={control} "
               "conv=notrunc")
    assert ctl(vm, "fact", 6) == "720"


def test_a_busy_device_answers_ebusy_until_idle(vm):
    # 2^30 multiplications take the device a second or more: the waiter gives up after 100 ms,
    # and later requests see a busy device, not a hang, until it is done.
    vm.insmod("edu", timeout_ms=100)
    vm.wait_for_file(DEV)
    assert ctl(vm, "fact", 0x40000000) == "error: ETIMEDOUT"
    assert ctl(vm, "fact", 3) == "error: EBUSY"
    vm.wait_until_succeeds(f"edu_ctl {DEV} fact 3 | grep -x 6", timeout=60)


def test_unbind_and_bind_through_sysfs(edu):
    edu.succeed("echo 0000:00:04.0 > /sys/bus/pci/drivers/edu/unbind")
    edu.wait_for_console_text(r"edu 0000:00:04.0: unbound")
    edu.fail(f"test -e {DEV}")
    edu.fail(f"test -e {SYSFS}/driver")
    edu.succeed("echo 0000:00:04.0 > /sys/bus/pci/drivers/edu/bind")
    edu.wait_for_file(DEV)
    assert ctl(edu, "fact", 7) == "5040"
    assert ctl(edu, "live", 5) == "0xfffffffa"


def hold_open(vm, script: str) -> None:
    """Run `script` in the background with fd 3 open on /dev/edu0; it writes /tmp/ready."""
    vm.succeed(f"sh -c 'exec 3<>{DEV}; touch /tmp/ready; {script}' > /tmp/held.out 2>&1 &")
    vm.wait_for_file("/tmp/ready")


def test_the_device_removed_while_a_file_is_open(edu):
    hold_open(edu, "while [ ! -e /tmp/go ]; do sleep 0.05; done; "
                   "edu_ctl fd:3 id; edu_ctl fd:3 fact 4; head -c 10 <&3 | wc -c; "
                   "echo x >&3 || echo write failed; echo done")
    edu.succeed(f"echo 1 > {SYSFS}/remove")
    edu.fail(f"test -e {SYSFS}")
    edu.fail(f"test -e {DEV}")
    edu.succeed("touch /tmp/go")
    edu.wait_until_succeeds("grep -x done /tmp/held.out")
    out = edu.succeed("cat /tmp/held.out")
    assert out.count("error: ENODEV") == 2 and "write failed" in out
    assert "No such device" in out
    # Rescanned, the device is probed again; new opens work, the module unloads once free.
    edu.succeed("echo 1 > /sys/bus/pci/rescan")
    edu.wait_for_file(DEV)
    assert ctl(edu, "fact", 8) == "40320"
    edu.assert_no_leaks("edu")  # kmemleak on the debug lane; elsewhere only the unload
    edu.fail(f"test -e {DEV}")


def test_unbind_while_operations_run_ends_them_with_enodev(edu):
    hold_open(edu, "while edu_ctl fd:3 fact 12 >> /tmp/results; do :; done; echo stopped")
    edu.wait_until_succeeds("test $(wc -l < /tmp/results) -ge 3")
    edu.succeed("echo 0000:00:04.0 > /sys/bus/pci/drivers/edu/unbind")
    edu.wait_until_succeeds("grep -x stopped /tmp/held.out")
    results = edu.succeed("cat /tmp/results").split("\n")
    assert set(results[:-2]) == {str(device_factorial(12))}
    assert results[-2] == "error: ENODEV"
    edu.succeed("echo 0000:00:04.0 > /sys/bus/pci/drivers/edu/bind")
    edu.wait_for_file(DEV)
    assert ctl(edu, "fact", 12) == str(device_factorial(12))


def test_rmmod_while_an_operation_runs_waits_for_the_file(edu):
    hold_open(edu, "edu_ctl fd:3 fact 9 1000000 > /tmp/results")
    edu.wait_until_succeeds("test $(wc -l < /tmp/results) -ge 3")
    result = edu.run("rmmod edu")
    assert result.status != 0 and "Resource temporarily unavailable" in result.err
    assert ctl(edu, "fact", 3) == "6"  # the device still serves others meanwhile
    edu.succeed("kill $(pidof edu_ctl)")
    edu.wait_until_succeeds("rmmod edu", timeout=30)
    edu.fail(f"test -e {DEV}")
    assert set(edu.succeed("cat /tmp/results").split()) == {str(device_factorial(9))}
    # Loaded again, it binds the device again.
    edu.insmod("edu")
    edu.wait_for_file(DEV)
    assert ctl(edu, "id") == "0x010000ed"


@pytest.mark.rustkm(modules=["."], devices=["edu"], programs=["edu_ctl.c"], cpus=2)
def test_concurrent_users_get_their_own_results(edu):
    # Four factorial users and two DMA users, each on its own region of the buffer.
    script = []
    for n in (5, 10, 13, 20):
        script.append(f"edu_ctl {DEV} fact {n} 40 > /tmp/fact{n} 2>&1 &")
    for region in (0, 1):
        offset = region * 2048
        script.append(
            f"(for i in $(seq 8); do head -c 2048 /dev/urandom > /tmp/in{region}; "
            f"rawio write {DEV} {offset} < /tmp/in{region} > /dev/null && "
            f"rawio read {DEV} {offset} 2048 > /tmp/out{region} && "
            f"cmp /tmp/in{region} /tmp/out{region} && echo same; done) > /tmp/dma{region} 2>&1 &")
    edu.succeed(" ".join(script) + " wait", timeout=120)
    for n in (5, 10, 13, 20):
        lines = edu.succeed(f"cat /tmp/fact{n}").split()
        assert lines == [str(device_factorial(n))] * 40, n
    for region in (0, 1):
        assert edu.succeed(f"cat /tmp/dma{region}").split() == ["same"] * 8


def test_a_signal_ends_the_wait_and_the_device_stays_usable(vm):
    # A long factorial (2^32 multiplications: seconds of work) with a long timeout: a signal ends the
    # wait at once with EINTR; the device answers EBUSY until it is done, then works.
    vm.insmod("edu", timeout_ms=30000)
    vm.wait_for_file(DEV)
    vm.succeed(f"edu_ctl {DEV} fact 0xFFFFFFFF > /tmp/long 2>&1 & echo $! > /tmp/pid")
    vm.wait_until_succeeds("grep -q edu /proc/$(cat /tmp/pid)/cmdline")
    vm.wait_until_succeeds("grep -q '^State:.S' /proc/$(cat /tmp/pid)/status")  # waiting
    vm.succeed("kill -USR1 $(cat /tmp/pid)")
    vm.wait_until_succeeds("! kill -0 $(cat /tmp/pid) 2>/dev/null", timeout=5)
    assert vm.succeed("cat /tmp/long").strip() == "error: EINTR"
    vm.wait_until_succeeds(f"edu_ctl {DEV} fact 3 | grep -x 6", timeout=60)


AUX = "/sys/bus/auxiliary"


def test_the_selftest_function_binds_on_the_auxiliary_bus(edu):
    assert edu.succeed(f"readlink {AUX}/devices/edu.selftest.0/driver").strip() \
        .endswith("/edu.edu")
    assert "edu.edu edu.selftest.0: self-test of the parent passed" in edu.console_log
    # The auxiliary device lives below the PCI device and goes with its binding.
    assert edu.succeed(f"readlink -f {AUX}/devices/edu.selftest.0").strip() == \
        "/sys/devices/pci0000:00/0000:00:04.0/edu.selftest.0"
    edu.succeed("echo 0000:00:04.0 > /sys/bus/pci/drivers/edu/unbind")
    edu.fail(f"test -e {AUX}/devices/edu.selftest.0")
    edu.succeed("echo 0000:00:04.0 > /sys/bus/pci/drivers/edu/bind")
    edu.wait_for_file(f"{AUX}/devices/edu.selftest.0/driver")


def test_the_selftest_refuses_a_parent_whose_interrupt_never_comes(vm):
    vm.insmod("edu", timeout_ms=300)
    vm.wait_for_file(f"{AUX}/devices/edu.selftest.0/driver")
    vm.succeed(f"echo edu.selftest.0 > {AUX}/drivers/edu.edu/unbind")
    control = msi_control(vm)
    enabled = int(vm.succeed(f"od -An -tx1 -j{control} -N1 {SYSFS}/config").strip(), 16)
    vm.succeed(f"printf '\\{enabled & ~1:03o}' | dd of={SYSFS}/config bs=1 seek={control} "
               "conv=notrunc")
    result = vm.run(f"echo edu.selftest.0 > {AUX}/drivers/edu.edu/bind")
    assert result.status != 0
    # ETIMEDOUT (110) from the factorial, which waited for its interrupt in vain.
    vm.wait_for_console_text(r"edu.selftest.0: self-test of the parent failed: error -110")
    vm.fail(f"test -e {AUX}/devices/edu.selftest.0/driver")
    vm.succeed(f"printf '\\{enabled:03o}' | dd of={SYSFS}/config bs=1 seek={control} "
               "conv=notrunc")
    vm.succeed(f"echo edu.selftest.0 > {AUX}/drivers/edu.edu/bind")
    vm.succeed(f"test -e {AUX}/devices/edu.selftest.0/driver")


def test_a_device_added_through_qmp_is_found_by_a_rescan_and_bound(edu):
    # The hardware changes under the running guest, as a test drives it: QEMU adds a second
    # edu; the guest has no ACPI to hear of it, so a PCI rescan stands in for the hotplug event.
    edu.qmp("device_add", driver="edu", id="edu-hot", addr="0x8")
    assert "edu-hot" in [p["name"] for p in edu.qmp("qom-list", path="/machine/peripheral")]
    edu.succeed("echo 1 > /sys/bus/pci/rescan")
    edu.wait_for_file("/dev/edu1")
    assert edu.succeed("readlink /sys/class/misc/edu1/device").strip().endswith("0000:00:08.0")
    # Two devices, each with its own registers and interrupt.
    assert ctl(edu, "fact", 9, dev="/dev/edu1") == str(device_factorial(9))
    assert ctl(edu, "live", 1, dev="/dev/edu1") == "0xfffffffe"
    assert ctl(edu, "fact", 6) == "720"
    edu.succeed("echo 1 > /sys/bus/pci/devices/0000:00:08.0/remove")
    edu.fail("test -e /dev/edu1")
    assert ctl(edu, "fact", 5) == "120"


@pytest.mark.rustkm(modules=["."], devices=["edu", "pci-testdev"], programs=["edu_ctl.c"])
def test_a_device_that_answers_like_no_edu_is_refused_at_probe(edu):
    # Another device forced onto the driver (new_id): its identification register holds what
    # no edu holds, and probe refuses it; the real edu goes on working.
    testdev = "/sys/bus/pci/devices/0000:00:05.0"
    assert edu.succeed(f"cat {testdev}/vendor {testdev}/device").split() == ["0x1b36", "0x0005"]
    edu.succeed("echo '1b36 0005' > /sys/bus/pci/drivers/edu/new_id")
    line = edu.wait_for_console_text(r"0000:00:05.0: not an edu device: identification 0x")
    assert not line.endswith("0x010000ed")
    edu.fail(f"test -e {testdev}/driver")
    edu.fail("test -e /dev/edu1")
    assert ctl(edu, "fact", 10) == str(device_factorial(10))
    edu.assert_no_leaks("edu")
