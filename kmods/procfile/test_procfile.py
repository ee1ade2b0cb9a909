"""/proc/rustkm_file in a VM: a /proc file that behaves like a regular file, under hostile
and concurrent use."""

import pytest

pytestmark = pytest.mark.rustkm(modules=["."], cpus=2)

F = "/proc/rustkm_file"
CAPACITY = 64 * 1024


@pytest.fixture
def vm_file(vm):
    vm.insmod("procfile")
    return vm


def size(vm) -> int:
    return int(vm.succeed(f"stat -c %s {F}"))


def test_starts_empty(vm_file):
    assert vm_file.succeed(f"cat {F}") == "" and size(vm_file) == 0


def test_truncate_append_and_size(vm_file):
    vm_file.succeed(f"echo hello > {F}", f"echo world >> {F}")
    assert vm_file.succeed(f"cat {F}") == "hello\nworld\n"
    assert size(vm_file) == 12
    vm_file.succeed(f"echo x > {F}")
    assert vm_file.succeed(f"cat {F}") == "x\n" and size(vm_file) == 2


def test_contents_last_across_opens(vm_file):
    vm_file.succeed(f"printf kept > {F}")
    assert vm_file.succeed(f"cat {F}; cat {F}") == "keptkept"


def test_writing_past_the_end_leaves_zeros(vm_file):
    vm_file.succeed(f"printf ab > {F}", f"printf X | rawio write {F} 10")
    data = vm_file.run(f"cat {F}").stdout
    assert data == b"ab" + b"\0" * 8 + b"X" and size(vm_file) == 11


def test_overwrite_in_the_middle_with_notrunc(vm_file):
    vm_file.succeed(f"printf 0123456789 > {F}",
                    f"printf AB | dd of={F} bs=1 seek=4 conv=notrunc 2>/dev/null")
    assert vm_file.succeed(f"cat {F}") == "0123AB6789"


def test_reads_in_pieces_follow_the_position(vm_file):
    vm_file.succeed(f"printf 'abcdefghijklm' > {F}")
    assert vm_file.succeed(f"dd if={F} bs=5 2>/dev/null") == "abcdefghijklm"
    assert vm_file.succeed(f"rawio read {F} 10 100") == "klm"
    assert vm_file.succeed(f"rawio read {F} 13 100") == ""
    assert vm_file.succeed(f"rawio read {F} 5000 100") == ""


@pytest.mark.parametrize("whence,offset,expected", [
    ("set", 3, "3"), ("cur", 4, "4"), ("end", 0, "10"), ("end", -2, "8"),
    ("data", 0, "0"), ("data", 9, "9"), ("hole", 0, "10"), ("set", CAPACITY, str(CAPACITY))])
def test_lseek(vm_file, whence, offset, expected):
    vm_file.succeed(f"printf 0123456789 > {F}")
    assert vm_file.succeed(f"rawio seek {F} {whence} {offset}").strip() == expected


@pytest.mark.parametrize("whence,offset,error", [
    ("set", -1, "EINVAL"), ("set", CAPACITY + 1, "EINVAL"), ("end", -11, "EINVAL"),
    ("data", 10, "ENXIO"), ("hole", 11, "ENXIO")])
def test_bad_lseeks_are_refused(vm_file, whence, offset, error):
    vm_file.succeed(f"printf 0123456789 > {F}")
    result = vm_file.run(f"rawio seek {F} {whence} {offset}")
    assert result.status == 1 and error in result.err


def test_exactly_the_capacity_fits(vm_file):
    vm_file.succeed(f"head -c {CAPACITY} /dev/zero | tr '\\0' a | rawio write {F} -")
    assert size(vm_file) == CAPACITY


@pytest.mark.parametrize("command", [
    f"head -c {CAPACITY + 1} /dev/zero | rawio write {F} -",
    f"printf yz | rawio write {F} {CAPACITY - 1}",
    f"printf y | rawio write {F} {CAPACITY}",
    f"head -c 1048576 /dev/zero | rawio write {F} -",
])
def test_writes_past_the_capacity_fail_with_efbig_and_change_nothing(vm_file, command):
    vm_file.succeed(f"printf before > {F}")
    result = vm_file.run(command)
    assert result.status == 1 and "EFBIG" in result.err
    assert vm_file.succeed(f"cat {F}") == "before" and size(vm_file) == 6


def test_append_mode_writes_at_the_end_whatever_the_offset(vm_file):
    vm_file.succeed(f"printf 12345 > {F}", f"printf ab | rawio write {F} 0 append")
    assert vm_file.succeed(f"cat {F}") == "12345ab"


def test_binary_data_round_trips(vm_file, tmp_path):
    data = bytes(range(256)) * 40
    (tmp_path / "blob").write_bytes(data)
    vm_file.copy_to(tmp_path / "blob", "/tmp/blob")
    vm_file.succeed(f"cat /tmp/blob > {F}")
    assert vm_file.run(f"cat {F}").stdout == data


def test_concurrent_writers_and_readers_keep_records_whole(vm_file):
    # Eight writers rewrite their own 64-byte record 100 times while two readers read.
    script = (
        f"for w in 0 1 2 3 4 5 6 7; do (rec=$(head -c 64 /dev/zero | tr '\\0' $w); "
        f"for i in $(seq 100); do printf $rec | rawio write {F} $((w * 64)) >/dev/null; done) & "
        f"done; for r in 1 2; do (for i in $(seq 100); do cat {F} > /dev/null; done) & done; "
        "wait")
    vm_file.succeed(script, timeout=180)
    data = vm_file.succeed(f"cat {F}")
    assert len(data) == 8 * 64
    for w in range(8):
        assert data[w * 64:(w + 1) * 64] == str(w) * 64


def test_gone_after_rmmod_and_empty_after_insmod(vm_file):
    vm_file.succeed(f"echo data > {F}")
    vm_file.rmmod("procfile")
    vm_file.fail(f"test -e {F}")
    vm_file.insmod("procfile")
    assert vm_file.succeed(f"cat {F}") == ""


def test_rmmod_while_the_file_is_open(vm_file):
    vm_file.succeed(f"echo data > {F}")
    vm_file.succeed(f"(exec 3<{F}; sleep 2; cat <&3 > /tmp/late; echo $? > /tmp/status) "
                    "> /dev/null 2>&1 &")
    vm_file.rmmod("procfile")
    vm_file.wait_for_file("/tmp/status", timeout=20)
    # The open file outlived its entry: reading it fails cleanly (EIO), no oops.
    assert vm_file.succeed("cat /tmp/late") == ""
