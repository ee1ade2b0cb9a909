"""/proc/sys/example/atom in a VM: strict parsing, the old value kept on bad input, safe under
concurrent writers, gone after rmmod."""

import pytest

pytestmark = pytest.mark.rustkm(modules=["."], cpus=2)

ATOM = "/proc/sys/example/atom"


def write(vm, data: str) -> tuple[int, str]:
    """One write(2) of exactly `data` (printf escapes allowed); (status, stderr)."""
    result = vm.run(f"printf '{data}' | rawio write {ATOM} -")
    return result.status, result.err


def value(vm) -> str:
    return vm.succeed(f"cat {ATOM}")


@pytest.fixture
def atom(vm):
    vm.insmod("sysctl_atom")
    return vm


def test_starts_at_zero_and_reads_with_a_newline(atom):
    assert value(atom) == "0\n"


@pytest.mark.parametrize("data,expected", [("1", "1\n"), ("1\\n", "1\n"), ("0", "0\n"),
                                           ("0\\n", "0\n")])
def test_accepts_zero_and_one_with_or_without_newline(atom, data, expected):
    atom.succeed(f"echo 1 > {ATOM}")  # start from 1 so that writing 0 shows
    assert write(atom, data)[0] == 0
    assert value(atom) == expected


@pytest.mark.parametrize("data", ["2", "-1", "01", " 1", "1 0", "", "true", "1\\n\\n",
                                  "\\001\\377", "1\\000"])
def test_anything_else_is_einval_and_keeps_the_old_value(atom, data):
    atom.succeed(f"echo 1 > {ATOM}")
    status, err = write(atom, data)
    assert status == 1 and "EINVAL" in err
    assert value(atom) == "1\n"


def test_a_huge_write_is_refused(atom):
    result = atom.run(f"head -c 1048576 /dev/zero | tr '\\0' 1 | rawio write {ATOM} -")
    assert result.status == 1 and "EINVAL" in result.err
    assert value(atom) == "0\n"


def test_a_write_continuing_at_an_offset_is_refused(atom):
    result = atom.run(f"printf 1 | rawio write {ATOM} 1")
    assert result.status == 1 and "EINVAL" in result.err
    assert value(atom) == "0\n"


def test_partial_reads_follow_the_position(atom):
    atom.succeed(f"echo 1 > {ATOM}")
    assert atom.succeed(f"dd if={ATOM} bs=1 2>/dev/null") == "1\n"
    assert atom.succeed(f"rawio read {ATOM} 1 10") == "\n"
    assert atom.succeed(f"rawio read {ATOM} 5 10") == ""


def test_concurrent_writers_and_readers(atom):
    out = atom.succeed(
        "for w in 1 2 3 4; do (for i in $(seq 200); do echo $((i % 2)) > " + ATOM + "; "
        "done) & done; "
        "for r in 1 2; do (for i in $(seq 200); do cat " + ATOM + "; done > /tmp/r$r) & done; "
        "wait; cat /tmp/r1 /tmp/r2 | sort | uniq -c", timeout=120)
    seen = {line.split()[1] for line in out.splitlines()}
    assert seen <= {"0", "1"}
    assert value(atom) in ("0\n", "1\n")


def test_gone_after_rmmod_and_back_after_insmod(atom):
    atom.succeed(f"echo 1 > {ATOM}")
    atom.rmmod("sysctl_atom")
    atom.fail(f"test -e {ATOM}")
    atom.insmod("sysctl_atom")
    assert value(atom) == "0\n"  # a new load starts from a fresh value

