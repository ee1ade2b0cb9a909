"""/dev/printerfact in a VM: random facts per open, reads follow the position, writes refused."""

import re

import pytest

pytestmark = pytest.mark.rustkm(modules=["."])

FACT_COUNT = 12  # len(FACTS) in printerfact.rs


def facts_from_module_source() -> list[str]:
    from pathlib import Path

    text = (Path(__file__).parent / "printerfact.rs").read_text()
    return [f + "\n" for f in re.findall(r'^    "(.*)\\n",$', text, re.MULTILINE)]


def test_load_logs_ready_and_creates_device(vm):
    vm.insmod("printerfact")
    vm.wait_for_console_text(r"printerfact: ready, \d+ facts")
    assert vm.succeed("stat -c %F /dev/printerfact").strip() == "character special file"


def test_every_fact_appears_over_many_opens(vm):
    facts = facts_from_module_source()
    assert len(facts) == FACT_COUNT
    vm.insmod("printerfact")
    # 400 opens: the chance that one of 12 uniform facts never shows is about 12*(11/12)^400.
    out = vm.succeed("for i in $(seq 400); do cat /dev/printerfact; done")
    seen = out.splitlines(keepends=True)
    assert len(seen) == 400
    assert set(seen) == set(facts)


def test_small_reads_follow_the_file_position(vm):
    vm.insmod("printerfact")
    pieces = vm.succeed("dd if=/dev/printerfact bs=5 2>/tmp/dd.err; cat /tmp/dd.err")
    fact, stats = pieces.split("\n", 1)
    assert fact + "\n" in facts_from_module_source()
    records = len(fact) + 1
    assert f"{records // 5}+{1 if records % 5 else 0} records in" in stats


def test_read_at_the_end_returns_nothing(vm):
    vm.insmod("printerfact")
    # Skip far past the end of any fact: the read returns 0 bytes, not an error.
    assert vm.succeed("dd if=/dev/printerfact bs=1 skip=100000 2>/dev/null | wc -c").strip() == "0"


def test_write_is_refused_with_eperm(vm):
    vm.insmod("printerfact")
    err = vm.fail("echo hello > /dev/printerfact")
    result = vm.run("echo hello > /dev/printerfact")
    assert result.status != 0
    assert "Operation not permitted" in result.err
    assert err == ""


def test_unload_and_load_again(vm):
    vm.insmod("printerfact")
    vm.rmmod("printerfact")
    vm.fail("test -e /dev/printerfact")
    vm.insmod("printerfact")
    assert vm.succeed("cat /dev/printerfact").endswith("\n")
    assert "printerfact: unloaded" in vm.console_log


def test_no_unload_while_a_file_is_open(vm):
    vm.insmod("printerfact")
    vm.succeed("sh -c 'exec 3</dev/printerfact; echo $$ > /tmp/holder; exec sleep 600' "
               "> /dev/null 2>&1 &")
    vm.wait_for_file("/tmp/holder")
    result = vm.run("rmmod printerfact")
    assert result.status != 0 and "Resource temporarily unavailable" in result.err  # refcount held
    assert vm.succeed("cat /dev/printerfact").endswith("\n")
    # Closed, the module unloads; the held file's release ran while it was still loaded.
    vm.succeed("kill $(cat /tmp/holder)")
    vm.wait_until_succeeds("rmmod printerfact", timeout=30)
    vm.fail("test -e /dev/printerfact")


def test_concurrent_readers(vm):
    vm.insmod("printerfact")
    out = vm.succeed("for i in 1 2 3 4 5 6 7 8; do "
                     "(for j in $(seq 50); do cat /dev/printerfact; done > /tmp/r$i) & done; wait; "
                     "cat /tmp/r*")
    facts = set(facts_from_module_source())
    assert len(out.splitlines()) == 400
    assert set(out.splitlines(keepends=True)) <= facts
