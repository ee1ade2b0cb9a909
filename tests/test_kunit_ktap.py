"""The KTAP parser over real KUnit output captured from guests (tests/data/kunit), and over
hand-made documents for what KUnit does not print (TODO, malformed lines)."""

from pathlib import Path

import pytest

from rustkm.kunit.ktap import KtapError, Status, parse_ktap

DATA = Path(__file__).parent / "data" / "kunit"


def read(name: str) -> str:
    return (DATA / name).read_text()


def statuses(document, *suite):
    test = document.find(*suite)
    return [(t.name, t.status) for t in test.subtests]


def test_debugfs_results_of_a_rust_suite():
    document = parse_ktap(read("rustkm_selftest.results.ktap"))
    assert document.plan == 1
    suite = document.find("rustkm_selftest")
    assert suite.status is Status.FAIL and suite.plan == 6
    assert statuses(document, "rustkm_selftest") == [
        ("adds_up", Status.PASS), ("fails_on_purpose", Status.FAIL),
        ("returns_an_error", Status.FAIL), ("disabled_by_cfg", Status.SKIP),
        ("panics_when_asked", Status.PASS), ("runs_after_the_others", Status.PASS)]
    failed = suite.subtests[1]
    # The lines before a result are its log: KUnit's assertion message with the Rust file:line.
    assert any("ASSERTION FAILED at /src/rustkm/tests/kmods/kunit_selftest/"
               "kunit_selftest_main.rs:53" in line for line in failed.log)
    assert any("Expected answer + 1 == 43" in line for line in failed.log)
    assert suite.subtests[3].directive == "SKIP" and suite.subtests[3].reason == ""
    # The suite's own diagnostics (its totals) come after its last case.
    assert "# rustkm_selftest: pass:3 fail:2 skip:1 total:6" in suite.log
    assert document.status is Status.FAIL


def test_parameterised_cases_nest_one_level_deeper():
    document = parse_ktap(read("rustkm_selftest_params.results.ktap"))
    squares = document.find("rustkm_selftest_params", "squares")
    assert squares.status is Status.FAIL and squares.plan is None
    assert [(t.number, t.name, t.status) for t in squares.subtests] == [
        (1, "two", Status.PASS), (2, "three", Status.PASS),
        (3, "four, wrong on purpose", Status.FAIL)]
    assert any("EXPECTATION FAILED at params_glue.c:26" in line
               for line in squares.subtests[2].log)
    skipped = document.find("rustkm_selftest_params", "skipped")
    assert (skipped.status, skipped.directive, skipped.reason) == \
        (Status.SKIP, "SKIP", "nothing to test here")
    paths = [path for path, _ in document.walk()]
    assert ("rustkm_selftest_params", "squares", "four, wrong on purpose") in paths


def test_console_of_suites_run_through_debugfs():
    # On the console each suite starts indented, with no top-level header (debugfs `run`
    # prints none), each numbered 1; printk timestamps and the module's own lines around.
    document = parse_ktap(read("console-pass-fail.log"), "console")
    assert [t.name for t in document.subtests] == ["rustkm_selftest", "rustkm_selftest_params"]
    assert [t.number for t in document.subtests] == [1, 1]
    assert statuses(document, "rustkm_selftest")[1] == ("fails_on_purpose", Status.FAIL)
    assert document.find("rustkm_selftest_params", "squares").subtests[2].status is Status.FAIL


def test_an_oops_caught_by_kunit_fails_that_case_and_the_suite_goes_on():
    document = parse_ktap(read("rustkm_selftest-oops.results.ktap"))
    cases = dict(statuses(document, "rustkm_selftest"))
    assert cases["panics_when_asked"] is Status.FAIL
    assert cases["runs_after_the_others"] is Status.PASS
    faulted = document.find("rustkm_selftest", "panics_when_asked")
    assert any("try faulted" in line for line in faulted.log)


def test_the_console_of_an_oops_keeps_the_kernel_report_in_the_case_log():
    document = parse_ktap(read("console-oops.log"), "console")
    faulted = document.find("rustkm_selftest", "panics_when_asked")
    assert faulted.status is Status.FAIL
    assert any("rust_kernel: panicked at" in line for line in faulted.log)
    assert document.find("rustkm_selftest", "runs_after_the_others").status is Status.PASS


def test_output_that_stops_mid_suite_because_the_kernel_died():
    # Booted with oops=panic: the panic in case 5 killed the kernel; its console stops there.
    document = parse_ktap(read("console-panic.log"), "console")
    suite = document.find("rustkm_selftest")
    assert suite.status is Status.CRASHED and suite.line == 0
    assert [(t.number, t.status) for t in suite.subtests] == [
        (1, Status.PASS), (2, Status.FAIL), (3, Status.FAIL), (4, Status.SKIP),
        (5, Status.CRASHED), (6, Status.NOT_RUN)]
    crashed = suite.subtests[4]
    assert any("Kernel panic - not syncing" in line for line in crashed.log)
    assert any("kunit_rust_wrapper_panics_when_asked" in line for line in crashed.log)
    assert document.status is Status.CRASHED


def test_output_cut_after_the_top_level_plan():
    text = "KTAP version 1\n1..3\nok 1 first\n# the kernel died here\n"
    document = parse_ktap(text)
    assert [(t.number, t.status) for t in document.subtests] == [
        (1, Status.PASS), (2, Status.CRASHED), (3, Status.NOT_RUN)]
    assert document.subtests[1].log == ["# the kernel died here"]
    assert document.status is Status.CRASHED


def test_directives_and_spec_style_nesting():
    # The specification's own example shape: two-space indentation, no "# Subtest" lines.
    text = """KTAP version 1
1..3
  KTAP version 1
  1..2
  ok 1 test_1 # SKIP test_1 skipped
  not ok 2 test_2 # TODO not fixed yet
# example diagnostics
ok 1 example_test_1
not ok 2 - slow # TIMEOUT 30 seconds
ok 3 with data # rcode=0
"""
    document = parse_ktap(text)
    first, timeout, data = document.subtests
    assert first.name == "example_test_1" and first.status is Status.PASS
    assert [(t.status, t.reason) for t in first.subtests] == [
        (Status.SKIP, "test_1 skipped"), (Status.TODO, "not fixed yet")]
    assert first.log == ["# example diagnostics"]
    assert (timeout.name, timeout.status, timeout.reason) == ("slow", Status.TIMEOUT,
                                                              "30 seconds")
    assert (data.status, data.directive, data.reason) == (Status.PASS, "", "rcode=0")
    assert not Status.TODO.failed and Status.TIMEOUT.failed


def test_a_nested_test_without_name_or_plan_ends_where_the_indentation_does():
    text = "KTAP version 1\n1..2\n  KTAP version 1\n  ok 1 a\n  ok 2 b\nok 1 parent\nok 2 c\n"
    document = parse_ktap(text)
    parent, c = document.subtests
    assert (parent.name, parent.status, [t.name for t in parent.subtests]) == \
        ("parent", Status.PASS, ["a", "b"])
    assert c.name == "c"


@pytest.mark.parametrize("text, message", [
    ("KTAP version 1\n1..2\nok 1 a\nok two b\n",
     ("line 4: a result line must read 'ok|not ok NUMBER [NAME] [# DIRECTIVE REASON]': "
      "'ok two b'")),
    ("KTAP version 1\n1..2\nok 1 a\nok 3 c\n",
     "line 4: test number 3 where 2 was expected: 'ok 3 c'"),
    ("KTAP version 1\n1..1\nok 1 a\nok 2 b\n",
     "line 4: more results than the plan 1..1: 'ok 2 b'"),
    ("KTAP version 1\nok 1 a\n1..1\n",
     ("line 3: a plan line must follow a version line (or a subtest header), before any "
      "result: '1..1'")),
    ("KTAP version 2\n1..1\nok 1 a\n",
     "line 1: unsupported KTAP version 2"),
    (("KTAP version 1\n1..1\n    KTAP version 1\n    # Subtest: s\n    1..1\n    ok 1 a\n"
      "ok 1 t\n"), "line 7: the result line names 't', but the subtest is 's': 'ok 1 t'"),
    (("KTAP version 1\n1..1\n    KTAP version 1\n    # Subtest: s\n    1..2\n    ok 1 a\n"
      "ok 1 s\n"), "line 7: the result of 's' came after 1 of its 2 planned tests: 'ok 1 s'"),
])
def test_malformed_ktap_is_an_error_quoting_the_line(text, message):
    with pytest.raises(KtapError) as error:
        parse_ktap(text, "results")
    assert str(error.value).startswith("results, " + message)


def test_no_ktap_at_all():
    with pytest.raises(KtapError, match="no KTAP version line") as error:
        parse_ktap("[    0.1] Linux version 7.2\n[    0.2] Run /init\n", "the console")
    assert "kunit.enable=1" in str(error.value)
