"""KUnit suites of tests/kmods/kunit_selftest run in real guests: through `rustkm kunit`,
through pytest (one item per case, one guest per module under xdist), and when a case
oopses or kills the kernel."""

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from rustkm.kunit.ktap import Status
from rustkm.kunit.run import run_module
from rustkm.module import build_module

ROOT = Path(__file__).parents[1]
SELFTEST = ROOT / "tests/kmods/kunit_selftest"


def source_line(text: str) -> int:
    lines = (SELFTEST / "kunit_selftest_main.rs").read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def rustkm(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rustkm.cli", *args], cwd=ROOT, text=True,
                          capture_output=True, timeout=600, check=False,
                          env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def selftest_ko(rustkm_kernel):
    tc, kernel = rustkm_kernel
    return build_module(tc, kernel, SELFTEST).ko("kunit_selftest")


def test_rustkm_kunit_exits_1_naming_the_failing_case_with_file_and_line(tmp_path,
                                                                          rustkm_kernel):
    out = tmp_path / "results.json"
    result = rustkm("kunit", "tests/kmods/kunit_selftest", "--json", str(out))
    assert result.returncode == 1, result.stdout + result.stderr
    line = source_line("assert_eq!(answer + 1, 43)")
    where = f"tests/kmods/kunit_selftest/kunit_selftest_main.rs:{line}"
    assert f"FAILED rustkm_selftest.fails_on_purpose at {where}" in result.stdout
    assert "Expected answer + 1 == 43 to be true, but is false" in result.stdout
    assert "FAILED rustkm_selftest_params.squares at params_glue.c:26" in result.stdout
    assert ("Testing complete. Ran 9 tests: passed: 4, failed: 3, crashed: 0, skipped: 2, "
            "errors: 0") in result.stdout
    assert str(ROOT) not in result.stdout  # paths are shown relative to the project
    # kunit.py's JSON: the main group, a group per suite, its cases with PASS/FAIL/SKIP.
    data = json.loads(out.read_text())
    assert data["name"] == "KUnit Test Group" and data["git_branch"] == "kselftest"
    suites = {group["name"]: group for group in data["sub_groups"]}
    cases = {c["name"]: c["status"] for c in suites["rustkm_selftest"]["test_cases"]}
    assert cases == {"adds_up": "PASS", "fails_on_purpose": "FAIL", "returns_an_error": "FAIL",
                     "disabled_by_cfg": "SKIP", "panics_when_asked": "PASS",
                     "runs_after_the_others": "PASS", "hangs_when_asked": "PASS"}
    assert suites["rustkm_selftest"]["misc"] == {"tests": 7, "passed": 4, "failed": 2,
                                                 "crashed": 0, "skipped": 1, "errors": 0}
    assert data["misc"]["tests"] == 9
    # As kunit.py's: a parameterised case is a group of its parameters.
    [squares] = suites["rustkm_selftest_params"]["sub_groups"]
    assert squares["name"] == "squares"
    assert [(c["name"], c["status"]) for c in squares["test_cases"]] == [
        ("two", "PASS"), ("three", "PASS"), ("four, wrong on purpose", "FAIL")]
    assert suites["rustkm_selftest_params"]["test_cases"] == [
        {"name": "skipped", "status": "SKIP"}]


def test_rustkm_kunit_filter_and_raw(rustkm_kernel):
    result = rustkm("kunit", "tests/kmods/kunit_selftest", "--filter",
                    "rustkm_selftest.adds_*", "--raw")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Ran 1 tests: passed: 1" in result.stdout
    assert "KTAP version 1" in result.stdout and "ok 1 adds_up" in result.stdout
    # The kernel ran only that case (kunit.filter_glob at load): its KTAP has no other.
    assert "fails_on_purpose" not in result.stdout and "    1..1" in result.stdout
    nothing = rustkm("kunit", "tests/kmods/kunit_selftest", "--filter", "nothing*")
    assert nothing.returncode == 1
    assert "no KUnit suites matching 'nothing*'" in nothing.stdout + nothing.stderr
    none = rustkm("kunit", "tests/kmods/trouble")
    assert none.returncode == 1 and "no KUnit suites in" in none.stdout + none.stderr


def test_rustkm_kunit_without_folders_runs_the_projects_suites(rustkm_kernel):
    result = rustkm("kunit", "--filter", "rustkm_lib.race_*")
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"=+ rustkm_lib \(3 subtests\) =+", result.stdout)
    assert "Ran 3 tests: passed: 3" in result.stdout


def test_pytest_items_per_case_on_one_worker(tmp_path, rustkm_kernel):
    junit = tmp_path / "junit.xml"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "-v", "-p", "no:cacheprovider",
         f"--junitxml={junit}", "tests/kmods/kunit_selftest"],
        cwd=ROOT, text=True, capture_output=True, timeout=600, check=False)
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    outcomes = {nodeid: outcome for outcome, nodeid
                in re.findall(r"\[gw\d\] \[\s*\d+%\] (\w+) (\S+)", out)}
    base = "tests/kmods/kunit_selftest/Kbuild::kunit::"
    assert outcomes == {
        f"{base}rustkm_selftest::adds_up": "PASSED",
        f"{base}rustkm_selftest::fails_on_purpose": "FAILED",
        f"{base}rustkm_selftest::returns_an_error": "FAILED",
        f"{base}rustkm_selftest::disabled_by_cfg": "SKIPPED",
        f"{base}rustkm_selftest::panics_when_asked": "PASSED",
        f"{base}rustkm_selftest::runs_after_the_others": "PASSED",
        f"{base}rustkm_selftest::hangs_when_asked": "PASSED",
        f"{base}rustkm_selftest_params::squares": "FAILED",
        f"{base}rustkm_selftest_params::skipped": "SKIPPED"}
    # One worker, so one guest, ran every case of the module.
    assert len(set(re.findall(r"\[(gw\d)\] \[", out))) == 1
    failures = {case.get("name"): case.find("failure")
                for case in ET.parse(junit).getroot().iter("testcase")}
    line = source_line("assert_eq!(answer + 1, 43)")
    message = failures["fails_on_purpose"].text
    assert f"kunit_selftest_main.rs:{line}" in message
    assert "Expected answer + 1 == 43" in message
    # -k picks cases by name.
    picked = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "0", "-q", "-p", "no:cacheprovider",
         "-k", "adds_up or skipped", "tests/kmods/kunit_selftest"],
        cwd=ROOT, text=True, capture_output=True, timeout=600, check=False)
    assert picked.returncode == 0 and "1 passed, 1 skipped, 7 deselected" in picked.stdout
    # A case's id selects it, as pytest prints it.
    one = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "0", "-q", "-p", "no:cacheprovider",
         f"{base}rustkm_selftest::adds_up"],
        cwd=ROOT, text=True, capture_output=True, timeout=600, check=False)
    assert one.returncode == 0 and "1 passed in" in one.stdout, one.stdout


def test_an_oopsing_case_fails_with_the_kernel_report_and_the_suite_goes_on(rustkm_kernel,
                                                                             selftest_ko):
    tc, kernel = rustkm_kernel
    run = run_module(tc, kernel, selftest_ko, "rustkm_selftest", params={"crash": 1})
    cases = {c.name: c for c in run.cases()}
    crashed = cases["panics_when_asked"]
    assert crashed.status is Status.FAIL
    assert "try faulted" in crashed.message
    assert "kunit_selftest: a panic on purpose" in crashed.trouble
    assert cases["runs_after_the_others"].status is Status.PASS


def test_a_case_that_kills_the_kernel(rustkm_kernel, selftest_ko):
    tc, kernel = rustkm_kernel
    run = run_module(tc, kernel, selftest_ko, params={"crash": 1}, append=("oops=panic",))
    first, second = run.suites
    assert [(c.name, c.status) for c in first.cases][3:] == [
        ("disabled_by_cfg", Status.SKIP), ("panics_when_asked", Status.CRASHED),
        ("runs_after_the_others", Status.NOT_RUN), ("hangs_when_asked", Status.NOT_RUN)]
    crashed = first.cases[4]
    assert "Kernel panic - not syncing" in crashed.message
    assert "crashed or hung the kernel" in crashed.message
    assert {c.status for c in second.cases} == {Status.NOT_RUN}
    assert "never ran" in second.cases[0].message


def test_a_hanging_case_is_named_by_kunits_timeout(rustkm_kernel, selftest_ko):
    tc, kernel = rustkm_kernel
    run = run_module(tc, kernel, selftest_ko, "rustkm_selftest.hangs_when_asked",
                     params={"crash": 2}, case_timeout=3)
    [case] = run.cases()
    assert case.status is Status.FAIL
    assert "rustkm_selftest.hangs_when_asked: timed out (KUnit's timeout)" in case.message
    assert "try timed out" in case.message
