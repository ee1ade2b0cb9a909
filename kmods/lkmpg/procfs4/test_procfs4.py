"""LKMPG procfs4 in Rust: /proc/iter, a seq_file walk over records; each open takes the next
numbers of a counter."""

import pytest

pytestmark = pytest.mark.rustkm(modules=["."])

FILE = "/proc/iter"


def numbers(first: int, count: int) -> str:
    return "".join(f"{n}\n" for n in range(first, first + count))


def load(vm, **params) -> None:
    vm.insmod("procfs4", **params)
    vm.wait_for_console_text("/proc/iter created")


def test_each_read_prints_the_next_number_as_in_lkmpg(vm):
    load(vm)
    assert [vm.succeed(f"cat {FILE}") for _ in range(3)] == ["0\n", "1\n", "2\n"]
    assert vm.succeed(f"dd if={FILE} bs=1 2>/dev/null") == "3\n"
    assert vm.succeed("cat /sys/module/procfs4/parameters/records") == "1\n"
    assert vm.succeed(f"stat -c %A {FILE}") == "-r--r--r--\n"


def test_many_records_span_pages_and_any_read_size_sees_the_same(vm):
    load(vm, records=3000)  # 13890 bytes: four pages of seq_file buffer
    assert vm.succeed(f"cat {FILE}") == numbers(0, 3000)
    for n, bs in enumerate((1, 7, 4096, 65536), start=1):
        out = vm.succeed(f"dd if={FILE} bs={bs} 2>/dev/null", timeout=300)
        assert out == numbers(3000 * n, 3000), bs


def test_seeks_and_rereads_within_one_open(vm):
    load(vm, records=2000)  # 8890 bytes
    whole = numbers(0, 2000)
    # lseek (dd's skip) into the third page, then reads on from there on the same file.
    out = vm.succeed(f"exec 3<{FILE}; dd bs=1 skip=8000 count=20 <&3 2>/dev/null; "
                     "dd bs=100 count=1 <&3 2>/dev/null")
    assert out == whole[8000:8120]
    # Reads back and forth on one open file see one set of numbers.
    out = vm.succeed(f"rawio read {FILE} 8000 20 0 30 4090 12 8000 20")
    second = numbers(2000, 2000)
    assert out == second[8000:8020] + second[:30] + second[4090:4102] + second[8000:8020]


def test_reads_and_seeks_past_the_end(vm):
    load(vm, records=10)
    size = len(numbers(0, 10))  # 20 bytes
    assert vm.succeed(f"rawio read {FILE} {size} 5") == ""
    assert vm.succeed(f"rawio read {FILE} 1000000 5") == ""
    assert vm.succeed(f"rawio read {FILE} 18 100") == numbers(20, 10)[18:]
    # seq_file knows no end: SEEK_END is refused, a negative offset too.
    for whence, offset in (("end", 0), ("set", -1)):
        result = vm.run(f"rawio seek {FILE} {whence} {offset}")
        assert result.status == 1 and "EINVAL" in result.err, result


def test_writes_are_refused_and_change_nothing(vm):
    load(vm)
    for write in ("echo garbage > /proc/iter", "head -c 1048576 /dev/zero > /proc/iter",
                  "printf '\\000\\377' > /proc/iter"):
        result = vm.run(write)
        assert result.status != 0, write
    result = vm.run(f"printf x | rawio write {FILE} 0")
    assert result.status == 1 and "EACCES" in result.err
    assert vm.succeed(f"cat {FILE}") == "0\n"  # refused opens took no number


def test_concurrent_readers_never_share_a_number(vm):
    load(vm, records=50)
    vm.succeed(f"for i in $(seq 8); do (for j in $(seq 10); do cat {FILE}; done > /tmp/r$i) & "
               "done; wait", timeout=300)
    seen = [int(n) for n in vm.succeed("cat /tmp/r*").split()]
    assert sorted(seen) == list(range(8 * 10 * 50))
    for i in range(1, 9):  # each open's numbers came out whole and in order
        lines = [int(n) for n in vm.succeed(f"cat /tmp/r{i}").split()]
        for k in range(0, len(lines), 50):
            assert lines[k:k + 50] == list(range(lines[k], lines[k] + 50))


def test_out_of_range_parameters_are_refused(vm):
    for value in (0, 100001, 4294967295):
        result = vm.run(f"insmod /lib/modules/rustkm/procfs4.ko records={value}")
        assert result.status != 0 and "Invalid argument" in result.err, (value, result)
        vm.wait_for_console_text(f"records={value} is out of range")
    result = vm.run("insmod /lib/modules/rustkm/procfs4.ko records=lots")
    assert result.status != 0
    assert "procfs4" not in vm.succeed("cat /proc/modules")
    vm.fail(f"test -e {FILE}")
    load(vm, records=100000)  # the largest: about 590 KB
    assert vm.succeed(f"wc -lc < {FILE}").split() == ["100000", str(len(numbers(0, 100000)))]


def test_rmmod_while_open_and_reload(vm):
    load(vm, records=1000)
    vm.succeed(f"sh -c 'exec 3<{FILE}; head -c 10 <&3 > /dev/null; echo $$ > /tmp/holder; "
               "exec sleep 600' > /dev/null 2>&1 &")
    vm.wait_for_file("/tmp/holder")
    vm.rmmod("procfs4")
    vm.wait_for_console_text("/proc/iter removed")
    vm.fail(f"test -e {FILE}")
    vm.succeed("kill $(cat /tmp/holder)")  # its close after removal does no harm
    load(vm)
    assert vm.succeed(f"cat {FILE}") == "0\n"  # a new counter
