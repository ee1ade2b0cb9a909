"""`rustkm kunit --kernel-tests`: the kernel's own Rust KUnit suites and the `kernel` crate's
doctests, run in a guest of the kernel-tests lane.

Those suites are built into the kernel (src/rustkm/configs/kernel-tests.config), so they run at
boot, before init, as under kunit.py: the guest boots cold with `kunit.enable=1
kunit.autorun=1` (and `kunit.filter_glob`), never from a snapshot. Once the agent is up, each
suite's KTAP is read from debugfs (/sys/kernel/debug/kunit/SUITE/results). A kernel that dies
during the run fails the boot, and the error carries its console's last lines.
"""

from __future__ import annotations

import re
import shlex
import time

from rustkm.errors import RustkmError
from rustkm.kernel.build import KernelBuild
from rustkm.kernel.guest import guest_kernel
from rustkm.kunit.collect import KunitCase, KunitSuite
from rustkm.kunit.ktap import KtapTest, parse_ktap
from rustkm.kunit.run import DEBUGFS, KUNIT_APPEND, ModuleRun, SuiteResult, _result
from rustkm.machine import boot
from rustkm.toolchain import Toolchain
from rustkm.vm import VmOptions

# Doctests and Rust suites of the `kernel` crate take minutes under TCG: the boot waits.
BOOT_TIMEOUT = 1800.0
_GLOB = re.compile(r"^[A-Za-z0-9_*?.\[\]-]+$")


def suite_of(name: str, document: KtapTest) -> KunitSuite:
    """A built-in suite as KTAP reported it (no .ko to read its case table from)."""
    ran = document.find(name)
    cases = tuple(KunitCase(t.name, t.number, bool(t.subtests))
                  for t in (ran.subtests if ran else []))
    return KunitSuite(name, cases)


def results_from(name: str, ktap: str, source: str) -> SuiteResult:
    document = parse_ktap(ktap, source)
    return _result(suite_of(name, document), document, 0.0, ktap, "")


def check_filter(pattern: str | None) -> None:
    """A filter goes on the kernel's command line: a glob, nothing else."""
    if pattern and not _GLOB.match(pattern):
        raise RustkmError(f"--filter {pattern!r} is not a SUITE or SUITE.CASE glob",
                          hint="letters, digits, _ - . and the glob characters * ? [ ]")


def run_kernel_tests(tc: Toolchain, kernel: KernelBuild, pattern: str | None = None) -> ModuleRun:
    """Boot the kernel-tests lane's kernel and collect what its built-in suites reported."""
    append = [*KUNIT_APPEND, "kunit.autorun=1"]
    check_filter(pattern)
    if pattern:
        append.append(f"kunit.filter_glob={pattern}")
    options = VmOptions(memory_mb=max(512, kernel.memory_mb), append=tuple(append),
                        boot_timeout=BOOT_TIMEOUT, snapshot=False)
    started = time.monotonic()
    suites: list[SuiteResult] = []
    with boot(guest_kernel(kernel), [], options=options, toolchain=tc, name="kunit-kernel-tests") as vm:
        listing = vm.succeed(f"ls -1 {DEBUGFS} 2>/dev/null || true").split()
        for name in listing:
            path = f"{DEBUGFS}/{name}/results"
            ktap = vm.succeed(f"cat {shlex.quote(path)}")
            if not ktap.strip():  # registered, but the filter left it nothing to run
                continue
            suites.append(results_from(name, ktap, path))
        console = vm.console_log
    if not suites:
        what = f" matching {pattern!r}" if pattern else ""
        raise RustkmError(f"kernel {kernel.release} ran no built-in KUnit suites{what}",
                          hint="the kernel-tests lane builds them in: rustkm kunit "
                               "--kernel-tests (its kernel is built on first use)")
    return ModuleRun("kernel", suites, time.monotonic() - started, console)
