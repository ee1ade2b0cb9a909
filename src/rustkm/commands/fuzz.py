"""`rustkm fuzz DIR... [--seconds N] [--seed S] [--threads N] [--kernel LANE]` and
`rustkm fuzz --replay FINDING`: see rustkm.fuzz.session for a run, minimize for the cut."""

from __future__ import annotations

import argparse
import json
import random
import shlex
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from rustkm.errors import RustkmError
from rustkm.log import console, say

if TYPE_CHECKING:
    from rustkm.fuzz.session import FuzzRun
    from rustkm.kernel.build import KernelBuild
    from rustkm.toolchain import Toolchain

FINDINGS = "fuzz-findings"


def register(verbs: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from rustkm.commands.options import kernel_options

    p = verbs.add_parser("fuzz", help="hammer every file the modules create (debug kernel); "
                                      "keep what breaks as a minimized test")
    p.add_argument("dirs", nargs="*", type=Path, help="module folders (the first one's module "
                                                      "is cycled with insmod/rmmod)")
    p.add_argument("--seconds", type=int, default=60, help="how long (default 60)")
    p.add_argument("--seed", type=int, help="the generators' seed (default: random, printed)")
    p.add_argument("--threads", type=int, default=4, help="fuzzing threads (default 4)")
    p.add_argument("--cpus", type=int, default=2, help="guest CPUs (default 2)")
    p.add_argument("--no-cycle", action="store_true", help="no insmod/rmmod cycles")
    p.add_argument("--probes", type=int, default=40,
                   help="guests the minimizer may start (default 40); 0: no minimizing")
    p.add_argument("--findings", type=Path, default=Path(FINDINGS),
                   help=f"where findings are kept (default ./{FINDINGS})")
    p.add_argument("--replay", type=Path, metavar="FINDING",
                   help="run a finding's operations again (its folder or finding.json)")
    kernel_options(p)
    p.set_defaults(func=_cmd)


def _cmd(args: argparse.Namespace) -> int:
    from rustkm.commands.options import check_module_folders, lane_modules

    if args.replay:
        return _replay(args)
    if not args.dirs:
        raise RustkmError("rustkm fuzz needs module folders", hint="rustkm fuzz kmods/printerfact")
    if not 1 <= args.threads <= 16:
        raise RustkmError(f"--threads {args.threads}: from 1 to 16")
    if not 1 <= args.seconds <= 86400:
        raise RustkmError(f"--seconds {args.seconds}: from 1 to 86400")
    check_module_folders(args.dirs)
    # Unless a lane is named, the debug lane: KASAN, lockdep, kmemleak see what goes wrong;
    # the modules are instrumented for coverage where the kernel has KCOV (the debug lane).
    lane, tc, kernel, kos = lane_modules(args, args.dirs, coverage=True, fallback="debug")
    seed = args.seed if args.seed is not None else random.randrange(1, 2**31)
    return _fuzz(args, lane, tc, kernel, kos, seed)


def _fuzz(args: argparse.Namespace, lane: str, tc: Toolchain, kernel: KernelBuild,
          kos: list[Path], seed: int) -> int:
    from rustkm.fuzz.minimize import ALL_THREADS, minimize
    from rustkm.fuzz.session import (
        GUEST_MODULES,
        FuzzRun,
        check_leaks,
        fuzz_once,
        load_and_discover,
        start_guest,
    )

    cycle = "-" if args.no_cycle else f"{GUEST_MODULES}/{kos[0].name}"
    from rustkm.module_file import read_module_file

    devices = _devices(args.dirs)
    params = read_module_file(args.dirs[0]).fuzz_params
    with start_guest(tc, kernel, kos, args.cpus, devices=devices) as vm:
        setup = _setup(args.dirs)
        files = load_and_discover(vm, kos, setup, params)
        if files:
            say(f"fuzz: {len(files)} file(s) the module(s) created: {', '.join(files)}")
        else:
            say("fuzz: the module(s) created no files: only insmod/rmmod cycles run"
                if cycle != "-" else "fuzz: the module(s) created no files and --no-cycle "
                "leaves nothing to do")
            if cycle == "-":
                return 0
        run = FuzzRun([ko.stem for ko in kos], files, seed, args.seconds, args.threads, cycle,
                      ioctls=_ioctls(args.dirs), setup=setup, devices=devices,
                      params=params)
        if run.ioctls:
            say(f"fuzz: {len(run.ioctls)} ioctl command(s) of the module(s) tried beside "
                f"random ones: {', '.join(hex(c) for c in run.ioctls[:8])}"
                f"{' ...' if len(run.ioctls) > 8 else ''}")
        say(f"fuzz: seed {seed}, {args.threads} threads, {args.seconds} s on "
            f"{kernel.release} ({', '.join(kernel.fragments[-2:])})")
        fuzz_once(vm, run)
        if run.finding is None:
            run.finding = check_leaks(vm, run.modules, kos)
    _summary(run)
    if run.finding is None:
        return 0
    folder = _keep(args, lane, run, kernel)
    if args.probes > 0:
        found = minimize(run, run.finding, _probe(tc, kernel, kos, run), args.probes)
        if found is None:
            say("fuzz: no thread's operations trigger it alone (a race between threads): "
                f"`rustkm fuzz --replay {folder}` runs the same seed and threads again")
        else:
            ops, thread = found
            (folder / "ops.txt").write_text("\n".join(ops) + "\n")
            test = _write_test(args.dirs[0], run, ops, kos[0].stem)
            whose = "the threads interleaved" if thread == ALL_THREADS else f"thread {thread}"
            say(f"fuzz: {len(ops)} operation(s) of {whose} trigger it; regression "
                f"test: {test}; replay: rustkm fuzz --replay {folder}")
    return 1


def _devices(dirs: list[Path]) -> list[str]:
    """The QEMU devices the modules drive ([fuzz] devices of rustkm-module.toml), each once."""
    from rustkm.module_file import read_module_file

    return list(dict.fromkeys(d for folder in dirs for d in read_module_file(folder).fuzz_devices))


def _setup(dirs: list[Path]) -> str:
    """The modules' [fuzz] setup commands (rustkm-module.toml), in order."""
    from rustkm.module_file import read_module_file

    return "\n".join(s for d in dirs if (s := read_module_file(d).fuzz_setup.strip()))


def _ioctls(dirs: list[Path]) -> list[int]:
    """The modules' own ioctl commands: declared in rustkm-module.toml and found in their
    source (rustkm.fuzz.ioctls)."""
    from rustkm.fuzz.ioctls import MAX_COMMANDS, module_ioctls
    from rustkm.module_file import read_module_file

    found: set[int] = set()
    for folder in dirs:
        found.update(module_ioctls(folder, read_module_file(folder).ioctls))
    return sorted(found)[:MAX_COMMANDS]


def _summary(run: FuzzRun) -> None:
    total = sum(run.counts)
    rate = total / run.wall if run.wall else 0.0
    console.print(f"fuzz: {total} operations in {run.wall:.1f} s ({rate:.0f}/s) on "
                  f"{len(run.files)} file(s), seed {run.seed}", highlight=False)
    if run.per_op:
        console.print("  " + ", ".join(f"{name} {count}" for name, count in run.per_op.items()),
                      highlight=False)
    console.print(f"  coverage: {run.coverage} distinct program counters in the modules (KCOV), "
                  f"{run.kept} input(s) kept for reaching new code"
                  if run.coverage is not None else
                  "  coverage: not measured (this kernel has no KCOV; the debug lane has it)",
                  highlight=False)
    if run.blocked:
        console.print(f"  {run.blocked} thread(s) were still in a call when the time was up "
                      "(a read or poll that waits: not a finding)", highlight=False)
    if run.finding is None:
        console.print("[green]no finding[/]: no oops, BUG, KASAN, lockdep, WARN, Rust panic, "
                      "hung task or leak", highlight=False)
    else:
        console.print(f"[bold red]finding[/] ({run.finding.kind}): {run.finding.title}",
                      highlight=False)
        console.print(run.finding.report, markup=False, highlight=False)


def _keep(args: argparse.Namespace, lane: str, run: FuzzRun, kernel: KernelBuild) -> Path:
    assert run.finding is not None
    folder: Path = args.findings / f"{run.modules[0]}-{run.seed}"
    folder.mkdir(parents=True, exist_ok=True)
    record = {"modules": [str(d.resolve()) for d in args.dirs], "lane": lane,
              "kernel": kernel.release, "run": asdict(run)}
    (folder / "finding.json").write_text(json.dumps(record, indent=2) + "\n")
    (folder / "report.txt").write_text(run.finding.report + "\n")
    say(f"fuzz: the finding is kept in {folder}")
    return folder


def _probe(tc: Toolchain, kernel: KernelBuild, kos: list[Path],
           run: FuzzRun) -> Callable[[list[str]], bool]:
    from rustkm.fuzz.replay import replay_ops
    from rustkm.fuzz.session import load, start_guest
    from rustkm.log import quietly
    from rustkm.machine import KernelTrouble

    assert run.finding is not None
    kind = run.finding.kind
    wanted = set(kind.split(", "))

    def attempt(ops: list[str]) -> bool | None:
        """True: the finding's troubles came back (others may come with them: a panic's
        aftermath, a hung task on a loaded host); False: not them; None: the guest failed
        in some other way, which says nothing about these operations."""
        with quietly(), start_guest(tc, kernel, kos, 1, name="fuzz-probe",
                                       devices=run.devices) as vm:
            load(vm, kos, run.setup, run.params)
            try:
                replay_ops(vm, run.files, ops, run.cycle, params=run.params)
            except KernelTrouble as e:
                return wanted <= {t.kind for t in e.troubles}
            except RustkmError:
                return None
            if kind == "kmemleak":
                from rustkm.fuzz.session import check_leaks

                return check_leaks(vm, run.modules, kos) is not None
            return False

    def probe(ops: list[str]) -> bool:
        # A guest that failed otherwise (a timeout on a loaded host, say) is asked once more.
        for _ in range(2):
            answer = attempt(ops)
            if answer is not None:
                return answer
        return False

    return probe


_TEST = '''"""A finding of `rustkm fuzz` (seed {seed}, {lane} lane): {title}

Its minimized operations, replayed in one thread: they must run without the kernel reporting
anything (an oops, KASAN, a leak ... fails the test with the kernel's report).
"""

import pytest

from rustkm.fuzz.replay import replay_ops

pytestmark = pytest.mark.rustkm(modules=["."]{devices})

FILES = {files!r}
OPS = """\\
{ops}
"""


def test_fuzz_finding_{seed}(vm):
{setup}{loads}    replay_ops(vm, FILES, OPS, cycle={cycle!r}{replay_params})
{leaks}'''


def _write_test(folder: Path, run: FuzzRun, ops: list[str], module: str) -> Path:
    assert run.finding is not None
    path = folder / f"test_fuzz_{run.seed}.py"
    title = run.finding.title.replace('"""', "'''")
    from rustkm.fuzz.session import parameters

    devices = f", devices={run.devices!r}" if run.devices else ""
    params = "".join(f", {k}={v!r}" for k, v in parameters(run.params).items())
    # Every module the run loaded, in order, the first (the cycled one) with its parameters;
    # a leak is only seen once they are unloaded and kmemleak has scanned.
    names = run.modules or [module]
    loads = "".join(f"    vm.insmod({name!r}{params if i == 0 else ''})\n"
                    for i, name in enumerate(names))
    leaks = (f"    vm.assert_no_leaks({', '.join(repr(n) for n in names)})  # kmemleak\n"
             if run.finding.kind == "kmemleak" else "")
    path.write_text(_TEST.format(seed=run.seed, lane="debug", title=title, files=run.files,
                                 devices=devices, loads=loads, leaks=leaks,
                                 replay_params=f", params={run.params!r}" if run.params else "",
                                 ops="\n".join(ops), module=module, cycle=run.cycle,
                                 setup=f"    vm.succeed({run.setup!r}, timeout=120)  # [fuzz] "
                                       "setup\n" if run.setup else ""))
    return path


def _replay(args: argparse.Namespace) -> int:
    from rustkm.commands.options import build_modules
    from rustkm.fuzz.replay import replay_ops
    from rustkm.fuzz.session import Finding, FuzzRun, fuzz_once, load, start_guest

    path = args.replay / "finding.json" if args.replay.is_dir() else args.replay
    try:
        record = json.loads(path.read_text())
        saved = record["run"]
        finding = saved.pop("finding")
        run = FuzzRun(**saved)
        if finding:
            # JSON keys are text: the threads' numbers come back as numbers.
            finding["kept"] = {int(t): [int(i) for i in indices]
                               for t, indices in finding.get("kept", {}).items()}
        run.finding = Finding(**finding) if finding else None
        dirs = [Path(d) for d in record["modules"]]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise RustkmError(f"{path} is not a rustkm fuzz finding: {e}") from None
    args.dirs = dirs
    if args.stock is None and args.debug is None:
        args.stock = record.get("lane", "debug")  # the lane the finding was made on
    tc, kernel, builds = build_modules(args, dirs, coverage=True)
    kos = [ko for build in builds for ko in build.modules]
    ops_file = path.parent / "ops.txt"
    with start_guest(tc, kernel, kos, args.cpus, name="fuzz-replay",
                                        devices=run.devices) as vm:
        load(vm, kos, run.setup, run.params)
        try:
            if ops_file.is_file():
                say(f"fuzz: replaying the minimized operations of {ops_file}")
                replay_ops(vm, run.files, ops_file.read_text(), run.cycle, params=run.params)
            else:
                say(f"fuzz: no minimized operations: the seed {run.seed} again, "
                    f"{run.threads} threads, {run.seconds} s")
                fuzz_once(vm, run)
                if run.finding is not None:
                    raise RustkmError(f"reproduced: {run.finding.title}",
                                      details=run.finding.report)
                run.finding = None
        except RustkmError as e:
            console.print(f"[bold red]reproduced[/]: {e.message}", highlight=False)
            if e.details:
                console.print(e.details, markup=False, highlight=False)
            return 1
    say(f"fuzz: ran clean: the finding in {path.parent} did not reproduce "
        f"({shlex.quote(str(path))})")
    return 0
