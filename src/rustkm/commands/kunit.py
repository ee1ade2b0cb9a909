"""`rustkm kunit [DIR...] [--filter GLOB] [--json FILE] [--raw]`: build the modules, run their
KUnit suites in a guest each, print a summary like kunit.py's; exit 1 when a case failed.
`rustkm kunit --kernel-tests` runs the kernel's own Rust suites and doctests instead."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape

from rustkm.errors import RustkmError
from rustkm.log import console, say

if TYPE_CHECKING:
    from rustkm.kernel.build import KernelBuild
    from rustkm.kunit.run import ModuleRun


def register(verbs: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from rustkm.commands.options import kernel_options

    p = verbs.add_parser("kunit", help="run the KUnit suites of modules in VMs, kunit.py-style")
    p.add_argument("dirs", nargs="*", type=Path,
                   help="module folders (default: the project's folders that declare suites)")
    p.add_argument("--filter", metavar="GLOB", dest="pattern",
                   help="SUITE or SUITE.CASE globs, as kunit.py's filter_glob")
    p.add_argument("--json", type=Path, metavar="FILE",
                   help="write the results in kunit.py's JSON format")
    p.add_argument("--raw", action="store_true", help="print the KTAP the kernel printed")
    p.add_argument("--kernel-tests", action="store_true",
                   help="run the kernel's own Rust KUnit suites and doctests instead (the "
                        "kernel-tests lane, built on first use; or --kernel LANE)")
    kernel_options(p)
    p.set_defaults(func=_cmd)


def _folders(dirs: list[Path]) -> list[Path]:
    from rustkm.commands.options import check_module_folders, module_dirs
    from rustkm.kunit.pytest_items import declares_suites

    if dirs:
        check_module_folders(dirs)
        return dirs
    found = [d for d in module_dirs([]) if declares_suites(d)]
    if not found:
        raise RustkmError("no module folder in the project declares a KUnit suite",
                          hint="add `#[kunit_tests(NAME)] mod tests { #[test] fn ... }` to a "
                               "module, or name folders: rustkm kunit DIR")
    return found


def _kernel_tests(args: argparse.Namespace) -> tuple[KernelBuild, list[ModuleRun], list[str]]:
    from rustkm.commands.options import prepared_kernel
    from rustkm.kunit.kernel_tests import check_filter, run_kernel_tests
    from rustkm.kunit.run import kernel_has_kunit

    if args.dirs:
        raise RustkmError("--kernel-tests runs the kernel's own suites: give no module folders",
                          hint="rustkm kunit --kernel-tests, or rustkm kunit DIR...")
    check_filter(args.pattern)  # before a kernel build of minutes
    args.stock = args.stock or "kernel-tests"
    tc, kernel = prepared_kernel(args)
    if not kernel_has_kunit(kernel.config):
        raise RustkmError(f"kernel {kernel.release} has no CONFIG_KUNIT: it has no KUnit suites",
                          hint="use the kernel-tests lane (the default of --kernel-tests)")
    return kernel, [run_kernel_tests(tc, kernel, args.pattern)], []


def _cmd(args: argparse.Namespace) -> int:
    from rustkm.kunit.report import json_results, summary
    from rustkm.project import find_project

    if args.kernel_tests:
        kernel, runs, broken = _kernel_tests(args)
    else:
        kernel, runs, broken = _module_tests(args)
    root = find_project().root

    def shorten(text: str) -> str:
        return text.replace(f"{root}/", "")

    if args.raw:
        for run in runs:
            for suite in run.suites:
                sys.stdout.write(suite.ktap if suite.ktap.endswith("\n") or not suite.ktap
                                 else suite.ktap + "\n")
    for line in summary(runs, shorten):
        print(line)
    if args.json:
        args.json.write_text(json_results(runs, build_dir=str(kernel.build_dir)) + "\n")
        say(f"wrote {args.json}")
    for name in broken:
        print(f"ERROR {name}: its suites could not run (see above)")
    return 1 if broken or any(run.failed for run in runs) else 0


def _module_tests(args: argparse.Namespace) -> tuple[KernelBuild, list[ModuleRun], list[str]]:
    from rustkm.commands.options import build_modules
    from rustkm.kunit.collect import read_suites
    from rustkm.kunit.run import kernel_has_kunit, run_module, selected

    folders = _folders(args.dirs)
    tc, kernel, builds = build_modules(args, folders)
    if not kernel_has_kunit(kernel.config):
        raise RustkmError(f"kernel {kernel.release} has no CONFIG_KUNIT, so modules built for "
                          "it have no KUnit suites (#[kunit_tests] compiles away)",
                          hint="use rustkm's own kernel (the default; it has CONFIG_KUNIT=y "
                               "and CONFIG_KUNIT_DEBUGFS=y)")
    kos = [ko for build in builds for ko in build.modules]
    wanted = [ko for ko in kos if selected(read_suites(ko), args.pattern)]
    if not wanted:
        what = f" matching {args.pattern!r}" if args.pattern else ""
        raise RustkmError(f"no KUnit suites{what} in {', '.join(str(f) for f in folders)}")
    runs = []
    broken = []
    for ko in wanted:
        try:
            runs.append(run_module(tc, kernel, ko, args.pattern, siblings=kos))
        except RustkmError as e:  # this module's guest; the others still run
            broken.append(ko.stem)
            console.print(f"[bold red]error:[/] {escape(e.message)}", highlight=False)
            if e.details:
                console.print(e.details.rstrip(), markup=False, highlight=False)
    return kernel, runs, broken
