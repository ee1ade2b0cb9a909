"""LKMPG procfs3 in Rust: /proc/buffer2k keeps the last write (cut at 2 KiB) and reads it back."""

import pytest

pytestmark = pytest.mark.rustkm(modules=["."])

FILE = "/proc/buffer2k"


@pytest.fixture
def procfs3(vm):
    vm.insmod("procfs3")
    vm.wait_for_console_text("/proc/buffer2k created")
    return vm


def test_a_write_reads_back_whole_and_in_pieces(procfs3):
    assert procfs3.succeed(f"cat {FILE}") == ""
    procfs3.succeed(f"printf 'hello procfs3\\n' > {FILE}")
    assert procfs3.succeed(f"cat {FILE}; cat {FILE}") == "hello procfs3\n" * 2
    assert procfs3.succeed(f"dd if={FILE} bs=1 2>/dev/null") == "hello procfs3\n"
    assert procfs3.succeed(f"stat -c %s {FILE}") == "14\n"
    # The next write replaces the contents.
    procfs3.succeed(f"printf 'bye' > {FILE}")
    assert procfs3.succeed(f"cat {FILE}") == "bye"


def test_a_long_write_is_cut_to_2048_bytes(procfs3):
    result = procfs3.run(f"head -c 5000 /dev/zero | tr '\\0' a | rawio write {FILE} -")
    assert result.status == 0 and result.out.strip() == "2048"
    assert procfs3.succeed(f"cat {FILE}") == "a" * 2048
    assert procfs3.succeed(f"head -c 1048576 /dev/zero | tr '\\0' b > {FILE}; wc -c < {FILE}"
                           ).strip() == "2048"


def test_reads_past_the_end_and_seeks(procfs3):
    procfs3.succeed(f"printf 0123456789 > {FILE}")
    assert procfs3.succeed(f"rawio read {FILE} 4 3") == "456"
    assert procfs3.succeed(f"rawio read {FILE} 10 5") == ""
    assert procfs3.succeed(f"rawio read {FILE} 100000 5") == ""
    assert procfs3.succeed(f"rawio seek {FILE} end 0").strip() == "10"
    result = procfs3.run(f"rawio seek {FILE} set 4096")
    assert result.status == 1 and "EINVAL" in result.err


def test_binary_and_empty_writes(procfs3):
    procfs3.succeed(f"printf '\\000\\377\\001' | rawio write {FILE} -")
    assert procfs3.succeed(f"od -An -tx1 {FILE}").split() == ["00", "ff", "01"]
    procfs3.succeed(f"printf '' | rawio write {FILE} -")
    assert procfs3.succeed(f"cat {FILE}") == ""


def test_concurrent_writers_keep_one_whole_write(procfs3):
    procfs3.succeed(
        "for c in a b c d; do (for i in $(seq 50); do head -c 2000 /dev/zero | tr '\\0' $c "
        f"| rawio write {FILE} - > /dev/null; done) & done; wait", timeout=300)
    out = procfs3.succeed(f"cat {FILE}")
    assert len(out) == 2000 and len(set(out)) == 1


def test_rmmod_while_open_and_reload(procfs3):
    procfs3.succeed(f"printf keep > {FILE}")
    procfs3.succeed(f"sh -c 'exec 3<{FILE}; echo $$ > /tmp/holder; exec sleep 600' "
                    "> /dev/null 2>&1 &")
    procfs3.wait_for_file("/tmp/holder")
    procfs3.rmmod("procfs3")
    procfs3.wait_for_console_text("/proc/buffer2k removed")
    procfs3.fail(f"test -e {FILE}")
    procfs3.succeed("kill $(cat /tmp/holder)")  # its close after removal does no harm
    procfs3.insmod("procfs3")
    assert procfs3.succeed(f"cat {FILE}") == ""
