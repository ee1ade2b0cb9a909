"""Run a module's KUnit suites in a guest and turn the KTAP they print into results per case.

The guest boots with `kunit.enable=1` (rustkm's kernels have CONFIG_KUNIT=y, but allnoconfig
leaves KUNIT_DEFAULT_ENABLED and KUNIT_AUTORUN_ENABLED off): loading the module registers its
suites in debugfs without running them, then each suite runs through
/sys/kernel/debug/kunit/SUITE/run and its KTAP is read back from .../results. A case that
oopses is caught by KUnit (the suite goes on; the kernel's report is kept); when the kernel
dies instead, the KTAP is read from the console up to the crash: the case in flight is
CRASHED, the cases and suites after it NOT_RUN.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rustkm.agent import AgentError, GuestStuck
from rustkm.errors import RustkmError
from rustkm.kernel.build import KernelBuild
from rustkm.kernel.guest import guest_kernel
from rustkm.kunit.collect import KunitSuite, read_suites
from rustkm.kunit.ktap import KtapError, KtapTest, Status, parse_ktap
from rustkm.machine import CommandFailed, KernelTrouble, Machine, boot
from rustkm.modinfo import read_module
from rustkm.toolchain import Toolchain
from rustkm.vm import VmOptions

KUNIT_APPEND = ("kunit.enable=1",)
DEBUGFS = "/sys/kernel/debug/kunit"
SUITE_TIMEOUT = 300.0  # loading a module
# KUnit's timeout per case (kunit.timeout, seconds; 300 by default): a case still running then
# fails as "try timed out" and the suite goes on.
CASE_TIMEOUT = 120
# KUnit's attribute lines ("# NAME.speed: normal", "# module: NAME"): noise in a message.
_ATTRIBUTE = re.compile(r"^\s*# (\S+\.)?(speed|module|is_init): ")
# "# case: ASSERTION FAILED at FILE:LINE" (KUnit's failed assertion or expectation).
_FAILED_AT = re.compile(r"# \S+: (?:ASSERTION|EXPECTATION) FAILED at (\S+?):(\d+)")


@dataclass
class CaseResult:
    suite: str
    name: str
    status: Status
    log: list[str] = field(default_factory=list)  # KUnit's lines for it: messages, KTAP
    reason: str = ""  # a SKIP's reason, or what follows '#' on its result line
    trouble: str = ""  # the kernel's report when the case crashed the kernel or oopsed
    params: list[tuple[str, Status]] = field(default_factory=list)  # a parameterised case's

    @property
    def location(self) -> str:
        """FILE:LINE of the first failed assertion, or ""."""
        for line in self.log:
            if match := _FAILED_AT.search(line):
                return f"{match.group(1)}:{match.group(2)}"
        return ""

    @property
    def message(self) -> str:
        """What a developer reads about a failure: where, KUnit's lines, the kernel's report."""
        lines = [line.strip() for line in self.log
                 if line.strip() and not _ATTRIBUTE.match(line)]
        timed_out = any("try timed out" in line for line in self.log)
        what = {Status.CRASHED: "crashed or hung the kernel (no result came)",
                Status.FAIL: "timed out (KUnit's timeout) and failed" if timed_out
                else "fail",
                Status.NOT_RUN: "never ran: the kernel died before it",
                Status.TIMEOUT: "timed out"}.get(self.status, self.status.value.lower())
        head = f"{self.suite}.{self.name}: {what}"
        if self.location:
            head += f" at {self.location}"
        parts = [head, *lines]
        if self.trouble:
            parts += ["", "kernel report:", self.trouble]
        return "\n".join(parts)


@dataclass
class SuiteResult:
    name: str
    status: Status
    cases: list[CaseResult]
    seconds: float = 0.0
    ktap: str = ""  # the KTAP this result was parsed from


@dataclass
class ModuleRun:
    module: str
    suites: list[SuiteResult]
    seconds: float = 0.0
    console: str = ""  # the guest console during the runs (for --raw)

    def cases(self) -> list[CaseResult]:
        return [case for suite in self.suites for case in suite.cases]

    @property
    def failed(self) -> list[CaseResult]:
        return [case for case in self.cases() if case.status.failed]


def selected(suites: list[KunitSuite], pattern: str | None) -> list[KunitSuite]:
    """The suites, and their cases, that a kunit.py-style glob (SUITE or SUITE.CASE) picks."""
    if not pattern:
        return suites
    suite_glob, _, case_glob = pattern.partition(".")
    picked = []
    for suite in suites:
        if not fnmatch.fnmatchcase(suite.name, suite_glob):
            continue
        cases = tuple(c for c in suite.cases
                      if not case_glob or fnmatch.fnmatchcase(c.name, case_glob))
        if cases:
            picked.append(KunitSuite(suite.name, cases))
    return picked


def run_suites(vm: Machine, module: str, suites: list[KunitSuite],
               params: dict[str, object] | None = None,
               case_timeout: int = CASE_TIMEOUT, pattern: str | None = None) -> ModuleRun:
    """Load `module` in `vm` (booted with KUNIT_APPEND) and run `suites` one after another;
    with `pattern` (what `selected` took them by), the kernel keeps only those cases."""
    started = time.monotonic()
    console_mark = len(vm.console_log)
    if pattern:
        # kunit.filter_glob applies when a module is loaded: the suites it registers then
        # hold only the matching cases, numbered from 1.
        vm.succeed(f"printf %s {shlex.quote(pattern)} > /sys/module/kunit/parameters/filter_glob")
    vm.insmod(module, SUITE_TIMEOUT, **(params or {}))
    _check_registered(vm, suites)
    vm.execute(f"echo {int(case_timeout)} > /sys/module/kunit/parameters/timeout")
    results: list[SuiteResult] = []
    dead = False
    for suite in suites:
        if dead:
            results.append(_not_run(suite, "never ran: the kernel died in an earlier suite"))
            continue
        result, dead = _run_one(vm, suite, case_timeout)
        results.append(result)
    return ModuleRun(module, results, time.monotonic() - started, vm.console_log[console_mark:])


def _check_registered(vm: Machine, suites: list[KunitSuite]) -> None:
    if not suites:
        return
    status, _ = vm.execute(f"test -e {DEBUGFS}/{shlex.quote(suites[0].name)}/run")
    if status == 0:
        return
    _, enabled = vm.execute("cat /sys/module/kunit/parameters/enable 2>/dev/null || echo none")
    raise RustkmError(f"{vm.name}: suite {suites[0].name!r} is not in {DEBUGFS} after insmod",
                      details=f"kunit.enable is {enabled.strip() or 'unknown'}",
                      hint="KUnit needs CONFIG_KUNIT=y and CONFIG_KUNIT_DEBUGFS=y in the kernel "
                           "and kunit.enable=1 on its command line (rustkm passes it)")


def _run_one(vm: Machine, suite: KunitSuite, case_timeout: int) -> tuple[SuiteResult, bool]:
    """Run one suite; returns its result and whether the guest is lost (dead or hung)."""
    name = shlex.quote(suite.name)
    mark = len(vm.console_log)
    started = time.monotonic()
    trouble = ""
    timeout = case_timeout * max(len(suite.cases), 1) + 30.0
    try:
        vm.succeed(f"echo 1 > {DEBUGFS}/{name}/run", timeout=timeout)
    except CommandFailed:
        # Not even KUnit's timeout ended it (a case that ignores kthread_stop).
        return _from_console(suite, vm.console_log[mark:], time.monotonic() - started,
                             f"no result within {timeout:.0f} s: the suite hung in this "
                             f"case (KUnit's own timeout is {case_timeout} s a case)"), True
    except KernelTrouble as e:
        trouble = e.details or e.message
        if any(t.fatal for t in e.troubles):  # the kernel died: what it printed is all
            return _from_console(suite, vm.console_log[mark:], time.monotonic() - started,
                                 trouble), True
        # An oops in a case's thread: KUnit caught it and the suite went on.
    except (GuestStuck, AgentError) as e:
        return _from_console(suite, vm.console_log[mark:], time.monotonic() - started,
                             str(e)), True
    seconds = time.monotonic() - started
    try:
        ktap = vm.succeed(f"cat {DEBUGFS}/{name}/results")
    except RustkmError as e:
        return _from_console(suite, vm.console_log[mark:], seconds, trouble or str(e)), True
    return _result(suite, parse_ktap(ktap, f"{DEBUGFS}/{suite.name}/results"), seconds, ktap,
                   trouble), False


def _from_console(suite: KunitSuite, console: str, seconds: float, why: str) -> SuiteResult:
    try:
        document = parse_ktap(console, f"the console while {suite.name} ran")
    except KtapError:
        document = KtapTest("", 0)
    result = _result(suite, document, seconds, console, why)
    if all(case.status is Status.NOT_RUN for case in result.cases) and result.cases:
        result.cases[0].status = Status.CRASHED
        result.cases[0].trouble = why
    return result


def _not_run(suite: KunitSuite, why: str) -> SuiteResult:
    return SuiteResult(suite.name, Status.NOT_RUN,
                       [CaseResult(suite.name, c.name, Status.NOT_RUN, reason=why)
                        for c in suite.cases])


def _result(suite: KunitSuite, document: KtapTest, seconds: float, ktap: str,
            trouble: str) -> SuiteResult:
    """Results for the cases of `suite` (those the kernel ran: all, or those its filter_glob
    kept), matched by their KTAP number: a case the output never reached is NOT_RUN, the one
    in flight at a crash CRASHED."""
    ran = document.find(suite.name)
    by_number = {t.number: t for t in ran.subtests} if ran else {}
    cases = []
    for number, case in enumerate(suite.cases, 1):
        test = by_number.get(number)
        if test is None:
            cases.append(CaseResult(suite.name, case.name, Status.NOT_RUN))
            continue
        log = []
        for path, inner in test.walk():  # a parameterised case: its parameters' lines
            log += [*inner.log, f"parameter {' / '.join(path)!r}: {inner.status.value}"]
        log += test.log
        result = CaseResult(suite.name, case.name, test.status, log, test.reason,
                            params=[(p.name, p.status) for p in test.subtests])
        if test.status is Status.CRASHED or (trouble and test.status.failed
                                             and any("faulted" in line for line in log)):
            result.trouble = trouble
        cases.append(result)
    if trouble and not any(c.trouble for c in cases):
        failed = [c for c in cases if c.status.failed]
        if failed:
            failed[0].trouble = trouble
    status = ran.status if ran else Status.CRASHED
    return SuiteResult(suite.name, status, cases, seconds, ktap)


def kernel_has_kunit(config: Path) -> bool:
    """CONFIG_KUNIT=y in the kernel's .config (Debian's stock kernels leave it unset)."""
    try:
        return "\nCONFIG_KUNIT=y\n" in "\n" + config.read_text()
    except OSError:
        return False


def dependencies(ko: Path, siblings: Sequence[Path]) -> list[Path]:
    """The modules built beside `ko` that it depends on (modinfo `depends`), to load first,
    each after its own."""
    by_name = {s.stem.replace("-", "_"): s for s in siblings if s != ko}
    order: list[Path] = []

    def visit(module: Path, seen: tuple[Path, ...]) -> None:
        for name in read_module(module).depends:
            dep = by_name.get(name.replace("-", "_"))
            if dep is not None and dep not in order and dep not in seen:
                visit(dep, (*seen, dep))
                order.append(dep)

    visit(ko, (ko,))
    return order


def run_module(tc: Toolchain, kernel: KernelBuild, ko: Path, pattern: str | None = None,
               keep_logs: Path | None = None, params: dict[str, object] | None = None,
               append: tuple[str, ...] = (), siblings: Sequence[Path] = (),
               case_timeout: int = CASE_TIMEOUT) -> ModuleRun:
    """Boot a guest for one built module and run its KUnit suites (those `pattern` picks);
    no guest when the module has none. Modules it depends on among `siblings` (built in the
    same folder) are loaded first."""
    suites = selected(read_suites(ko), pattern)
    if not suites:
        return ModuleRun(ko.stem, [])
    options = VmOptions(memory_mb=max(VmOptions.memory_mb, kernel.memory_mb),
                        append=(*KUNIT_APPEND, *append))
    first = dependencies(ko, siblings)
    started = time.monotonic()
    with boot(guest_kernel(kernel), [*first, ko], options=options, toolchain=tc, name=f"kunit-{ko.stem}",
              keep_logs=keep_logs) as vm:
        for dep in first:
            vm.insmod(dep.stem)
        run = run_suites(vm, ko.stem, suites, params, case_timeout, pattern)
    run.seconds = time.monotonic() - started  # the guest's start and end included
    return run
