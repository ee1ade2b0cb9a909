"""KUnit results as people and tools read them: a summary like kunit.py's, and kunit.py's
JSON results format (tools/testing/kunit/kunit_json.py: KernelCI's test API)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from rustkm.kunit.ktap import Status
from rustkm.kunit.run import CaseResult, ModuleRun

_WORD = {Status.PASS: "PASSED", Status.FAIL: "FAILED", Status.SKIP: "SKIPPED",
         Status.TODO: "TODO", Status.TIMEOUT: "TIMED OUT", Status.ERROR: "ERROR",
         Status.CRASHED: "CRASHED", Status.NOT_RUN: "NOT RUN"}
# kunit_json.py: SUCCESS PASS, SKIPPED SKIP, TEST_CRASHED ERROR, anything else FAIL. A test the
# kernel never reached counts as crashed there too.
_JSON_STATUS = {Status.PASS: "PASS", Status.SKIP: "SKIP", Status.TODO: "SKIP",
                Status.CRASHED: "ERROR", Status.NOT_RUN: "ERROR"}
WIDTH = 60


def counts(cases: list[CaseResult]) -> dict[str, int]:
    by = Counter(case.status for case in cases)
    crashed = by[Status.CRASHED] + by[Status.NOT_RUN]
    return {"tests": len(cases), "passed": by[Status.PASS],
            "failed": by[Status.FAIL] + by[Status.TIMEOUT], "crashed": crashed,
            "skipped": by[Status.SKIP] + by[Status.TODO], "errors": by[Status.ERROR]}


def _divider(text: str) -> str:
    pad = max(WIDTH - len(text) - 2, 4)
    return f"{'=' * (pad // 2)} {text} {'=' * (pad - pad // 2)}"


def summary(runs: list[ModuleRun], shorten: Any = str) -> list[str]:
    """kunit.py's report: each suite with its cases, failures with their messages, then the
    totals; `shorten` rewrites paths in messages (e.g. relative to the project)."""
    lines: list[str] = []
    for run in runs:
        for suite in run.suites:
            lines.append(_divider(f"{suite.name} ({len(suite.cases)} subtests)"))
            for case in suite.cases:
                if case.status.failed:
                    lines += ["    " + line for line in shorten(case.message).splitlines()]
                reason = f" ({case.reason})" if case.status is Status.SKIP and case.reason \
                    else ""
                lines.append(f"[{_WORD[case.status]}] {case.name}{reason}")
            lines.append(_divider(f"[{_WORD.get(suite.status, suite.status.value)}] "
                                  f"{suite.name}") + f" {suite.seconds:.2f}s")
    every = [case for run in runs for case in run.cases()]
    total = counts(every)
    lines.append(_divider("Summary"))
    lines.append(f"Testing complete. Ran {total['tests']} tests: passed: {total['passed']}, "
                 f"failed: {total['failed']}, crashed: {total['crashed']}, "
                 f"skipped: {total['skipped']}, errors: {total['errors']}")
    seconds = sum(run.seconds for run in runs)
    lines.append(f"Elapsed time: {seconds:.2f}s in {len(runs)} guest(s)")
    for case in every:
        if case.status.failed:
            where = f" at {shorten(case.location)}" if case.location else ""
            lines.append(f"{_WORD[case.status]} {case.suite}.{case.name}{where}")
    return lines


def json_results(runs: list[ModuleRun], arch: str = "x86_64", defconfig: str = "",
                 build_dir: str = "") -> str:
    """kunit.py's --json output: the main group, a sub-group per suite, its cases."""
    common: dict[str, Any] = {"arch": arch, "defconfig": defconfig,
                              "build_environment": build_dir, "lab_name": None,
                              "kernel": None, "job": None, "git_branch": "kselftest"}
    groups = []
    for run in runs:
        for suite in run.suites:
            # As kunit.py: a parameterised case is a group of its parameters.
            plain = [c for c in suite.cases if not c.params]
            groups.append({
                "name": suite.name,
                "sub_groups": [_params_group(c, common) for c in suite.cases if c.params],
                "test_cases": [{"name": c.name, "status": _JSON_STATUS.get(c.status, "FAIL")}
                               for c in plain],
                "misc": counts(suite.cases), **common})
    every = [case for run in runs for case in run.cases()]
    main = {"name": "KUnit Test Group", "sub_groups": groups, "test_cases": [],
            "misc": counts(every), **common}
    return json.dumps(main, indent=4)


def _params_group(case: CaseResult, common: dict[str, Any]) -> dict[str, Any]:
    params = [CaseResult(case.suite, name, status) for name, status in case.params]
    return {"name": case.name, "sub_groups": [],
            "test_cases": [{"name": p.name, "status": _JSON_STATUS.get(p.status, "FAIL")}
                           for p in params],
            "misc": counts(params), **common}
