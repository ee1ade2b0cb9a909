"""LKMPG blkram in Rust: /dev/blkram0, a blk-mq RAM disk of `blkram_mb` MiB (512-byte sectors)."""

import pytest

from rustkm.modinfo import Parameter, read_module

pytestmark = pytest.mark.rustkm(modules=["."])

DEV = "/dev/blkram0"
SYS = "/sys/block/blkram0"
PARAM = "/sys/module/blkram/parameters/blkram_mb"
MIB = 1 << 20


@pytest.fixture
def blkram(vm):
    vm.insmod("blkram")
    vm.wait_for_console_text(r"blkram: registered /dev/blkram0 \(8 MiB\)")
    vm.wait_for_file(DEV)
    return vm


def zeros(vm, offset: int, length: int) -> bool:
    """Whether `length` bytes at `offset` read with O_DIRECT (from the driver) are all zero."""
    assert offset % 4096 == 0 and length % 4096 == 0
    out = vm.succeed(f"dd if={DEV} bs=4096 skip={offset // 4096} count={length // 4096} "
                     "iflag=direct 2>/dev/null | tr -d '\\000' | wc -c")
    return out.strip() == "0"


def read_back(vm, path: str, offset: int, length: int) -> None:
    """Reads `length` bytes at `offset` with O_DIRECT into `path`."""
    vm.succeed(f"dd if={DEV} of={path} bs=4096 skip={offset // 4096} count={length // 4096} "
               "iflag=direct 2>/dev/null")


def test_the_disk_has_the_default_size_and_512_byte_sectors(blkram):
    assert blkram.succeed(f"stat -c %F {DEV}") == "block special file\n"
    assert blkram.succeed(f"cat {SYS}/size") == f"{8 * 2048}\n"
    assert blkram.succeed(f"blockdev --getsize64 {DEV}") == f"{8 * MIB}\n"
    assert blkram.succeed(f"cat {SYS}/queue/logical_block_size "
                          f"{SYS}/queue/physical_block_size") == "512\n512\n"
    assert blkram.succeed(f"blockdev --getss {DEV}") == "512\n"
    assert blkram.succeed("grep -w blkram0 /proc/partitions").split()[2:] == ["8192", "blkram0"]
    # The original's parameter: 0444, read-only even for root.
    assert blkram.succeed(f"cat {PARAM}; stat -c %a {PARAM}") == "8\n444\n"
    assert blkram.run(f"echo 4 > {PARAM}").status != 0
    [ko] = [m for m in blkram.spec.modules if m.name == "blkram.ko"]
    assert read_module(ko).parameters == {
        "blkram_mb": Parameter("ulong", "Size of the RAM disk in MiB")}


def test_a_size_given_at_insmod_is_used(vm):
    vm.insmod("blkram", blkram_mb=2)
    vm.wait_for_console_text(r"blkram: registered /dev/blkram0 \(2 MiB\)")
    vm.wait_for_file(DEV)
    assert vm.succeed(f"cat {PARAM} {SYS}/size") == f"2\n{2 * 2048}\n"
    assert vm.succeed(f"blockdev --getsize64 {DEV}") == f"{2 * MIB}\n"
    # Read through to the end: exactly 2 MiB, all zero.
    assert vm.succeed(f"wc -c < {DEV}").strip() == str(2 * MIB)
    assert zeros(vm, 0, 2 * MIB)


def test_a_fresh_disk_reads_zeros(blkram):
    assert zeros(blkram, 0, 8 * MIB)
    assert blkram.succeed(f"tr -d '\\000' < {DEV} | wc -c").strip() == "0"  # the page cache


def test_a_pattern_reads_back_byte_for_byte(blkram):
    blkram.succeed("head -c 1048576 /dev/urandom > /tmp/pattern")
    # Through the page cache, flushed to the driver; then the cache is dropped, so the read
    # below and the O_DIRECT ones come from the driver.
    blkram.succeed(f"dd if=/tmp/pattern of={DEV} bs=64k seek=48 conv=fsync 2>/dev/null")
    blkram.succeed(f"blockdev --flushbufs {DEV}")
    read_back(blkram, "/tmp/back", 3 * MIB, MIB)
    blkram.succeed("cmp /tmp/pattern /tmp/back")
    assert blkram.succeed(f"dd if={DEV} bs=64k skip=48 count=16 2>/dev/null | md5sum") == (
        blkram.succeed("md5sum < /tmp/pattern"))
    # What is around it stays zero.
    assert zeros(blkram, 0, 3 * MIB) and zeros(blkram, 4 * MIB, 4 * MIB)

    # An O_DIRECT write of three sectors at an odd sector number goes straight to the driver
    # (dd's 256 KiB buffer is page-aligned, as O_DIRECT needs; only 1536 bytes are used).
    blkram.succeed("head -c 1536 /dev/urandom > /tmp/sectors")
    blkram.succeed(f"dd if=/tmp/sectors of={DEV} bs=256k seek={12001 * 512} "
                   "oflag=direct,seek_bytes 2>/dev/null")
    # Sectors 12000 to 12004: the three between zeros.
    assert blkram.succeed(f"dd if={DEV} bs=256k skip={12000 * 512} count=2560 "
                          "iflag=direct,skip_bytes,count_bytes 2>/dev/null | md5sum") == (
        blkram.succeed("(head -c 512 /dev/zero; cat /tmp/sectors; head -c 512 /dev/zero) "
                       "| md5sum"))

    # A write of a few bytes within a sector: the page cache reads the block, patches it,
    # writes it back; the rest of the sector stays as it was.
    blkram.succeed(f"printf 'hello, blkram' | rawio write {DEV} 12345")
    blkram.succeed(f"sync; blockdev --flushbufs {DEV}")
    assert blkram.succeed(f"rawio read {DEV} 12340 20") == "\0" * 5 + "hello, blkram" + "\0" * 2


def test_writes_past_the_end_fail_and_reads_there_get_nothing(blkram):
    end = 8 * MIB
    result = blkram.run(f"dd if=/dev/zero of={DEV} bs=1M seek=8 count=1")
    assert result.status != 0 and "No space left on device" in result.err, result.err
    result = blkram.run(f"dd if=/dev/zero of={DEV} bs=4096 seek=2048 count=1 oflag=direct")
    assert result.status != 0 and "No space left on device" in result.err, result.err
    # Seeking past the end is refused (block devices have a fixed size).
    result = blkram.run(f"dd if=/dev/zero of={DEV} bs=1M seek=9 count=1")
    assert result.status != 0 and "Invalid argument" in result.err, result.err
    result = blkram.run(f"printf x | rawio write {DEV} {end}")
    assert result.status == 1 and "ENOSPC" in result.err, result.err
    # A write across the end is cut there.
    assert blkram.succeed(f"printf 0123456789abcdef | rawio write {DEV} {end - 6}").strip() == "6"
    # A dd of 2 MiB from 7 MiB writes the first and fails on the second.
    blkram.succeed("head -c 2097152 /dev/zero | tr '\\000' Z > /tmp/zz")
    result = blkram.run(f"dd if=/tmp/zz of={DEV} bs=1M seek=7 conv=fsync")
    assert result.status != 0 and "No space left on device" in result.err, result.err
    blkram.succeed(f"blockdev --flushbufs {DEV}")
    assert blkram.succeed(f"dd if={DEV} bs=4096 skip={7 * 256} iflag=direct 2>/dev/null "
                          "| tr -d Z | wc -c").strip() == "0"

    # Reads at or past the end give nothing; across it, what is there.
    assert blkram.succeed(f"rawio read {DEV} {end} 16") == ""
    assert blkram.succeed(f"rawio read {DEV} {end + 12345678} 16") == ""
    assert blkram.succeed(f"rawio read {DEV} {end - 4} 16") == "ZZZZ"
    result = blkram.run(f"dd if={DEV} of=/tmp/out bs=1M skip=8 count=1")
    assert result.status == 0 and "0+0 records in" in result.err, result.err
    result = blkram.run(f"dd if={DEV} of=/tmp/out bs=4096 skip=2048 count=1 iflag=direct")
    assert result.status == 0 and "0+0 records in" in result.err, result.err
    assert blkram.succeed("wc -c < /tmp/out").strip() == "0"
    # The disk still works.
    assert zeros(blkram, 0, 4096)


@pytest.mark.rustkm(modules=["."], cpus=2)
def test_concurrent_readers_and_writers_on_different_regions(blkram):
    # Four writers, each 1 MiB of its own random bytes into its own MiB (O_DIRECT, 16 KiB
    # requests); four readers going over the other MiBs meanwhile.
    blkram.succeed("for i in 0 1 2 3; do head -c 1048576 /dev/urandom > /tmp/p$i; done")
    blkram.succeed(
        "for i in 0 1 2 3; do "
        f"  (for n in 1 2 3; do dd if=/tmp/p$i of={DEV} bs=16k seek=$((i * 64)) oflag=direct "
        "      2>/dev/null || exit 1; done) & "
        "done; "
        "for i in 4 5 6 7; do "
        f"  (for n in 1 2 3; do dd if={DEV} bs=16k skip=$((i * 64)) count=64 iflag=direct "
        "      2>/dev/null | tr -d '\\000' | wc -c | grep -qx 0 || exit 1; done) & "
        "done; "
        "fail=0; for job in $(jobs -p); do wait $job || fail=1; done; exit $fail",
        timeout=300)
    for i in range(4):
        read_back(blkram, f"/tmp/b{i}", i * MIB, MIB)
        blkram.succeed(f"cmp /tmp/p{i} /tmp/b{i}")
    assert zeros(blkram, 4 * MIB, 4 * MIB)


def test_rmmod_and_insmod_give_a_fresh_zeroed_disk(blkram):
    for _ in range(2):
        blkram.succeed(f"head -c 65536 /dev/urandom | dd of={DEV} bs=4096 seek=100 conv=fsync "
                       "2>/dev/null")
        assert not zeros(blkram, 100 * 4096, 65536)
        blkram.rmmod("blkram")
        blkram.wait_for_console_text("blkram: removed /dev/blkram0")
        blkram.fail(f"test -e {DEV}", f"test -e {SYS}", "grep -w blkram0 /proc/partitions")
        blkram.insmod("blkram")
        blkram.wait_for_file(DEV)
        assert zeros(blkram, 0, 8 * MIB)


def test_rmmod_is_refused_while_the_disk_is_open(blkram):
    blkram.succeed(f"printf keep | rawio write {DEV} 0; sync")
    blkram.succeed(f"sh -c 'exec 3<>{DEV}; echo $$ > /tmp/holder; exec sleep 600' "
                   "> /dev/null 2>&1 &")
    blkram.wait_for_file("/tmp/holder")
    # The block layer holds a reference to the module for each opener (`fops.owner`).
    assert blkram.succeed("grep -w blkram /proc/modules").split()[2] == "1"
    result = blkram.run("rmmod blkram")
    assert result.status != 0 and "Resource temporarily unavailable" in result.err, result.err
    # The disk is intact and still serves other openers.
    assert blkram.succeed(f"rawio read {DEV} 0 4") == "keep"
    blkram.succeed("kill -TERM $(cat /tmp/holder)")
    blkram.wait_until_succeeds("rmmod blkram", timeout=30)
    blkram.fail(f"test -e {DEV}")
    blkram.insmod("blkram")
    blkram.wait_for_file(DEV)
    assert blkram.succeed(f"rawio read {DEV} 0 4") == "\0" * 4


@pytest.mark.parametrize("value, error", [
    ("0", "Invalid argument"),
    ("1025", "Invalid argument"),
    ("18446744073709551615", "Invalid argument"),  # ULONG_MAX: no overflow in MiB to bytes
    ("-1", "Invalid argument"),  # the kernel's ulong parser
    ("99999999999999999999999", "Numerical result out of range"),
    ("8MiB", "Invalid argument"),
])
def test_bad_sizes_are_refused_and_the_guest_stays_healthy(vm, value, error):
    result = vm.run(f"insmod /lib/modules/rustkm/blkram.ko blkram_mb={value}")
    assert result.status != 0 and error in result.err, result.err
    if value.isdigit() and int(value) < 1 << 64:
        vm.wait_for_console_text(rf"blkram: blkram_mb={value} is out of range")
    else:
        vm.wait_for_console_text(rf"`{value}' invalid for parameter `blkram_mb'")
    assert "blkram" not in vm.succeed("cat /proc/modules")
    vm.fail(f"test -e {DEV}")
    vm.insmod("blkram", blkram_mb=1)
    assert vm.succeed(f"cat {SYS}/size") == "2048\n"


def test_a_disk_larger_than_the_guest_memory_is_refused(vm):
    # 1 GiB is in range, but this guest has 256 MiB: vmalloc fails, and quietly.
    result = vm.run("insmod /lib/modules/rustkm/blkram.ko blkram_mb=1024")
    assert result.status != 0 and "Cannot allocate memory" in result.err, result.err
    vm.wait_for_console_text(r"blkram: cannot allocate 1024 MiB for the disk")
    assert "vmalloc error" not in vm.console_log
    assert "blkram" not in vm.succeed("cat /proc/modules")
    vm.insmod("blkram")
    assert zeros(vm, 0, 8 * MIB)
