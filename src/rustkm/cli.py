"""The `rustkm` command: verbs that wire the stages together."""

from __future__ import annotations

import argparse
import functools
import math
import os
import shlex
import sys
from pathlib import Path

from rich.markup import escape

from rustkm.errors import RustkmError
from rustkm.log import console, say


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["test"]:
        # Everything after `test` is pytest's, options included (-k EXPR, -x); a "--" right
        # after `test` is dropped, as people write it to say "the rest is pytest's".
        rest = argv[1:]
        args = argparse.Namespace(func=cmd_test, pytest_args=rest[1:] if rest[:1] == ["--"]
                                  else rest)
    else:
        parser = _parser()
        # Everything after "--" is the guest command of `run`, whatever options come before.
        command: list[str] = []
        if "--" in argv:
            cut = argv.index("--")
            argv, command = argv[:cut], argv[cut + 1:]
        args = parser.parse_args(argv)
        # Several words are a command and its arguments, each kept whole; one word is a shell
        # command line, as `sh -c` (and virtme-ng's --exec) take it: -- 'dmesg | tail -3'.
        args.command = command[0] if len(command) == 1 else shlex.join(command)
        if not hasattr(args, "func"):
            parser.print_help()
            return 2
    try:
        check_environment()
        return int(args.func(args) or 0)
    except RustkmError as e:
        # A message may quote the guest or a file: its brackets are text, not markup.
        console.print(f"[bold red]error:[/] {escape(e.message)}", highlight=False)
        if e.details:
            console.print(e.details.rstrip(), markup=False, highlight=False)
        if e.hint:
            console.print(f"[bold]hint:[/] {escape(e.hint)}", highlight=False)
        return 1
    except KeyboardInterrupt:
        say("interrupted; the cache is left consistent, run the command again to resume")
        return 130
    except BrokenPipeError:
        if not _stdout_gone():
            raise  # another pipe or socket broke (a guest's shell): not the reader
        # The reader went away (`rustkm kernel info | head -3`): no traceback, and none at
        # exit either, when Python flushes what is left to the closed pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def _stdout_gone() -> bool:
    """Whether standard output is a pipe whose reader has gone (poll says POLLERR)."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(event & select.POLLERR for _, event in poller.poll(0))
    except (OSError, ValueError):
        return False


def check_environment() -> None:
    """Refuse a malformed RUSTKM_* (or XDG_CACHE_HOME) variable before any work, naming the
    variable and its value: found late, it would cost a toolchain, a kernel and a boot."""
    from rustkm.kernel.choice import environment_lanes, lane_from_environment
    from rustkm.kernel.lane import resolve_lanes
    from rustkm.project import find_project

    command_timeout()
    accel = os.environ.get("RUSTKM_ACCEL", "")
    if accel not in ("", "auto", "kvm", "tcg"):
        raise RustkmError(f"RUSTKM_ACCEL={accel!r} is not an accelerator",
                          hint="RUSTKM_ACCEL=tcg (software emulation), kvm, or auto (the "
                               "default: KVM when a probe guest boots under it)")
    lane_from_environment()  # a malformed RUSTKM_DEBUG_KERNEL is refused here
    if lanes := environment_lanes():
        resolve_lanes(lanes, find_project(), "RUSTKM_KERNEL")
    for name in ("RUSTKM_CACHE", "XDG_CACHE_HOME"):
        if value := os.environ.get(name):
            _check_folder_variable(name, value)


def command_timeout() -> float:
    """RUSTKM_TIMEOUT: the longest `rustkm run`'s guest command may take, in seconds."""
    value = os.environ.get("RUSTKM_TIMEOUT", "600")
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds < math.inf:
        raise RustkmError(f"RUSTKM_TIMEOUT={value!r} is not a number of seconds",
                          hint="e.g. RUSTKM_TIMEOUT=600 (the default): how long the guest "
                               "command of `rustkm run` may take")
    return seconds


def _check_folder_variable(name: str, value: str) -> None:
    path = Path(value).expanduser()
    existing = next(p for p in (path, *path.parents) if p.exists() or p == p.parent)
    if existing.exists() and not existing.is_dir():
        raise RustkmError(f"{name}={value!r}: {existing} is a file, not a folder",
                          hint=f"point {name} at a folder (it is created if missing)")


def _parser() -> argparse.ArgumentParser:
    from rustkm.commands.options import arch_option, gdb_option, kernel_options, vm_options

    parser = argparse.ArgumentParser(prog="rustkm", description=__doc__)
    verbs = parser.add_subparsers(metavar="VERB")

    p = verbs.add_parser("setup", help="create the toolchain (a Debian root filesystem)")
    p.add_argument("--toolchain", choices=("debian", "host"), default="debian")
    p.set_defaults(func=cmd_setup)

    p = verbs.add_parser("kernel", help="build the kernel, or show where it is")
    kverbs = p.add_subparsers(metavar="ACTION")
    kb = kverbs.add_parser("build", help="configure and build (a no-op when nothing changed)")
    kernel_options(kb)
    kb.set_defaults(func=cmd_kernel_build)
    ki = kverbs.add_parser("info", help="where the kernel and its parts are, with versions")
    kernel_options(ki)
    ki.set_defaults(func=cmd_kernel_info)

    p = verbs.add_parser("lock", help="resolve the Debian package versions in rustkm.lock")
    p.add_argument("--update", action="store_true", help="move to the newest versions")
    p.add_argument("--source", help="debian:SERIES")
    p.add_argument("--kernel", dest="stock", metavar="LANE",
                   help="pin a stock lane instead: debian:latest, debian:next, debian:RELEASE")
    arch_option(p)
    p.set_defaults(func=cmd_lock)

    p = verbs.add_parser("matrix", help="every module on every lane: built, tested, one table")
    p.add_argument("dirs", nargs="*", type=Path, help="module folders (default: the project's)")
    p.add_argument("--lanes", default="default,debian:latest", metavar="LANE,LANE...",
                   help="the lanes (columns); default: default,debian:latest")
    p.add_argument("--shard", default="1/1", metavar="K/N",
                   help="run the Kth of N shares of the cells (for N CI runners)")
    p.add_argument("--json", type=Path, metavar="FILE", help="write the cells as JSON")
    p.add_argument("--junit-dir", type=Path, metavar="DIR",
                   help="keep each cell's JUnit XML there")
    p.add_argument("--merge", nargs="+", type=Path, metavar="FILE",
                   help="print the table of shards' JSON files instead of running anything")
    p.add_argument("--build-only", action="store_true",
                   help="build every module on every lane; run no tests")
    arch_option(p)
    p.set_defaults(func=cmd_matrix)

    p = verbs.add_parser("build", help="build out-of-tree Rust modules")
    p.add_argument("dirs", nargs="*", type=Path, help="module folders (default: the project's)")
    p.add_argument("--clippy", action="store_true", help="lint with clippy; fail on warnings")
    kernel_options(p)
    p.set_defaults(func=cmd_build)

    p = verbs.add_parser("run", help="boot a VM with modules loaded and run a command")
    p.add_argument("modules", nargs="*", type=Path, help="module folders to build and load")
    p.add_argument("--no-load", action="store_true", help="put modules in the VM, do not load")
    kernel_options(p)
    vm_options(p)
    gdb_option(p)
    p.set_defaults(func=cmd_run)

    p = verbs.add_parser("shell", help="an interactive shell in a VM with the modules loaded")
    p.add_argument("modules", nargs="*", type=Path)
    kernel_options(p)
    vm_options(p)
    gdb_option(p)
    p.set_defaults(func=cmd_shell)

    p = verbs.add_parser("attach", help="this terminal on a kept guest's shell socket "
                                        "(pytest --rustkm-keep-on-failure prints it)")
    p.add_argument("socket", type=Path)
    p.set_defaults(func=cmd_attach)

    p = verbs.add_parser("debug", help="gdb on a VM with the modules loaded (debug lane): "
                                       "their symbols at their load addresses; -- CMD runs "
                                       "in the guest meanwhile")
    p.add_argument("modules", nargs="*", type=Path, help="module folders to build and load")
    p.add_argument("--gdb-batch", type=Path, metavar="FILE",
                   help="run this gdb script without a terminal, print its output, detach")
    kernel_options(p)
    vm_options(p)
    p.set_defaults(func=cmd_debug)

    p = verbs.add_parser("demo", help="everything from scratch, then a fact from /dev/printerfact")
    p.add_argument("--kernel", dest="lane", metavar="LANE",
                   help="the lane (default: Debian's stock kernel, the fastest from nothing; "
                        "the self-built kernel if that cannot be prepared)")
    p.set_defaults(func=cmd_demo)

    p = verbs.add_parser("test", help="run the project's pytest tests (VM tests included); "
                                      "every word after `test` is pytest's")
    p.add_argument("pytest_args", nargs=argparse.REMAINDER, help="e.g. -k EXPR -x kmods/hello")
    p.set_defaults(func=cmd_test)

    # The other verbs, each in its module of the command-line layer (rustkm.commands); the
    # order is that of `rustkm --help`.
    from rustkm.commands import cache, check, crash, doctor, export, fuzz, kunit, new, repl

    for verb in (export, new, check, cache, doctor, kunit, repl, fuzz, crash):
        verb.register(verbs)
    return parser


def cmd_setup(args: argparse.Namespace) -> int:
    from rustkm.toolchain import ensure_toolchain

    tc = ensure_toolchain(args.toolchain)
    for tool, version in tc.versions().items():
        say(f"{tool:8} {version}")
    return 0


def cmd_kernel_build(args: argparse.Namespace) -> int:
    from rustkm.commands.options import prepared_kernel

    _, build = prepared_kernel(args)
    say(f"kernel {build.release} ({build.arch}) ready: {build.image}")
    return 0


def cmd_kernel_info(args: argparse.Namespace) -> int:
    from rustkm.commands.options import prepared_kernel

    tc, build = prepared_kernel(args)
    rows = [("release", build.release), ("architecture", build.arch),
            ("image", str(build.image)), ("source", f"{build.source.origin}"),
            ("source tree", str(build.source.tree)), ("build folder", str(build.build_dir)),
            ("vmlinux", str(build.vmlinux)), ("bzImage", str(build.bzimage)),
            ("config", str(build.config)), ("Module.symvers", str(build.symvers)),
            ("fragments", ", ".join(build.fragments)), ("toolchain", tc.name),
            ("toolchain root", str(tc.root or "(host)"))]
    rows += [(tool, version) for tool, version in tc.versions().items()]
    for key, value in rows:
        print(f"{key:15} {value}")
    return 0


def cmd_lock(args: argparse.Namespace) -> int:
    from rustkm.arch import get_arch
    from rustkm.commands.options import chosen_lane
    from rustkm.kernel.lane import stock_release
    from rustkm.kernel.prepare import resolve_source
    from rustkm.lockfile import Lock
    from rustkm.toolchain import ensure_toolchain

    project, lane = chosen_lane(args)
    lane.check()
    if lane.stock:
        from rustkm.stock import lock_stock_lane

        pinned = lock_stock_lane(stock_release(lane.stock), project.lock_path, args.update,
                                 get_arch(lane.arch))
        say(f"{project.lock_path}: {lane.stock} is Debian's {pinned.release} "
            f"{pinned.headers.version} ({pinned.suite})")
        return 0
    source = resolve_source(ensure_toolchain(), lane, project, Lock.read(project.lock_path),
                            update_lock=args.update)
    say(f"{project.lock_path}: {source.origin}")
    return 0


def cmd_matrix(args: argparse.Namespace) -> int:
    import functools
    import tempfile

    from rustkm import matrix
    from rustkm.arch import arch_from_environment
    from rustkm.commands.options import module_dirs
    from rustkm.kernel.lane import resolve_lanes, with_arch
    from rustkm.kernel.prepare import prepare_lane
    from rustkm.lockfile import Lock
    from rustkm.matrix_table import print_table
    from rustkm.module import build_module
    from rustkm.project import find_project

    if args.merge:
        cells, lane_names = matrix.merge(args.merge)
        return print_table(cells, lane_names)
    project = find_project()
    names = args.lanes
    if arch := args.arch or arch_from_environment():
        names = ",".join(with_arch(name, arch) for name in names.split(","))
    lanes = {lane.name: lane for lane in resolve_lanes(names, project, "--lanes")}
    lock: Lock | None = None  # read once, for the first lane that pins anything
    shard = matrix.parse_shard(args.shard)
    folders = {_relative(d, project.root): d.resolve()
               for d in module_dirs(_module_trees(args.dirs))}
    cells = matrix.plan(sorted(folders), list(lanes), shard)
    junit_dir = args.junit_dir or Path(tempfile.mkdtemp(prefix="rustkm-matrix-"))
    kernels: dict[str, object] = {}
    done: list[matrix.Cell] = []
    try:
        for number, cell in enumerate(cells, 1):
            lane = lanes[cell.lane]
            if lane.name not in kernels:
                try:
                    if lock is None and lane.build_dir is None:
                        lock = Lock.read(project.lock_path)
                    kernels[lane.name] = prepare_lane(lane, project, lock)
                except RustkmError as e:
                    kernels[lane.name] = e
            prepared = kernels[lane.name]
            if isinstance(prepared, RustkmError):
                cell.status, cell.detail = matrix.ERROR, f"lane {lane.name}: {prepared.message}"
            else:
                matrix.run_cell(cell, folders[cell.module], lane,
                                functools.partial(build_module, *prepared),  # type: ignore[misc]
                                junit_dir / matrix.junit_name(cell), test=not args.build_only)
            done.append(cell)
            say(f"matrix [{number}/{len(cells)}] {cell.module} on {cell.lane}: {cell.text()} "
                f"({cell.seconds} s)")
    except KeyboardInterrupt:
        print_table(done, list(lanes))
        say("interrupted: the table above is partial; the cache is left consistent")
        return 130
    if args.json:
        args.json.write_text(matrix.to_json(done, list(lanes), shard))
    return print_table(done, list(lanes))


def _module_trees(dirs: list[Path]) -> list[Path]:
    """Each folder given, or, for one without a Kbuild, the module folders below it (so that
    `rustkm matrix kmods` takes every module)."""
    found: list[Path] = []
    for folder in dirs:
        below = [] if (folder / "Kbuild").exists() or not folder.is_dir() else sorted(
            {p.parent for p in folder.glob("**/Kbuild")
             if not any(part.startswith(".") for part in p.relative_to(folder).parts)})
        found += below or [folder]
    return found


def _relative(folder: Path, root: Path) -> str:
    try:
        return str(folder.resolve().relative_to(root))
    except ValueError:
        return str(folder.resolve())


def cmd_build(args: argparse.Namespace) -> int:
    from rustkm.commands.options import build_modules, module_dirs

    _, _, builds = build_modules(args, module_dirs(args.dirs))
    for build in builds:
        for ko in build.modules:
            print(ko)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from rustkm.commands.options import (
        check_device_syntax,
        check_module_folders,
        lane_modules,
        vm_settings,
    )
    from rustkm.kernel.guest import guest_kernel
    from rustkm.machine import boot

    command = args.command
    timeout = command_timeout()
    check_module_folders(args.modules)
    check_device_syntax(args.devices)
    lane, tc, kernel, kos = lane_modules(args, args.modules)
    if args.gdb:
        _gdb_ready(lane, tc, kernel)
    with boot(guest_kernel(kernel), kos, options=vm_settings(args), toolchain=tc) as vm:
        if not args.no_load:
            for ko in kos:
                vm.insmod(ko.stem)
        if args.gdb:
            _print_attach(vm, [] if args.no_load else kos, tc=tc, kernel=kernel)
        if not command:
            return 0
        result = vm.run(command, timeout=timeout)
        sys.stdout.buffer.write(result.stdout)
        sys.stderr.buffer.write(result.stderr)
        sys.stdout.flush()
        return result.status


def cmd_shell(args: argparse.Namespace) -> int:
    from rustkm.commands.options import (
        check_device_syntax,
        check_module_folders,
        lane_modules,
        vm_settings,
    )
    from rustkm.shell import interactive_shell

    if not sys.stdin.isatty():
        raise RustkmError("rustkm shell needs a terminal",
                          hint="use `rustkm run MODULE -- COMMAND` from scripts")
    check_module_folders(args.modules)
    check_device_syntax(args.devices)
    lane, tc, kernel, kos = lane_modules(args, args.modules)
    if args.gdb:
        _gdb_ready(lane, tc, kernel)
    attached = functools.partial(_print_attach, tc=tc, kernel=kernel) if args.gdb else None
    return interactive_shell(tc, kernel, kos, vm_settings(args), attached)


def _gdb_ready(lane: str, tc, kernel) -> None:  # type: ignore[no-untyped-def]
    from rustkm.debug import require_debug_info, require_gdb

    require_debug_info(kernel, lane)
    require_gdb(tc)


def _print_attach(vm, kos, tc, kernel) -> None:  # type: ignore[no-untyped-def]
    from rustkm.debug import attach, how_to_attach

    target = attach(vm, kernel, kos)
    print(f"rustkm: gdb stub ready; attach with:\n  {how_to_attach(tc, target)}\r",
          file=sys.stderr)


def cmd_attach(args: argparse.Namespace) -> int:
    from rustkm.shell import attach

    return attach(args.socket)


def cmd_debug(args: argparse.Namespace) -> int:
    from rustkm.commands.options import (
        built,
        check_device_syntax,
        check_module_folders,
        chosen_lane,
        vm_settings,
    )
    from rustkm.debug import run_debug
    from rustkm.kernel.guest import guest_kernel
    from rustkm.kernel.prepare import prepare_lane
    from rustkm.machine import boot

    check_module_folders(args.modules)
    check_device_syntax(args.devices)
    if args.gdb_batch is not None and not args.gdb_batch.is_file():
        raise RustkmError(f"the gdb script {args.gdb_batch} does not exist")
    # Unless a lane is named, the one built with debug information.
    project, lane = chosen_lane(args, fallback="debug")
    tc, kernel = prepare_lane(lane, project)
    _gdb_ready(lane.name, tc, kernel)
    kos = [ko for b in built(tc, kernel, args.modules) for ko in b.modules]
    # A guest stopped at a breakpoint is not stuck: its command may wait as long as gdb does.
    timeout = max(command_timeout(), 3600.0)
    with boot(guest_kernel(kernel), kos, options=vm_settings(args), toolchain=tc,
              name="debug") as vm:
        for ko in kos:
            vm.insmod(ko.stem)
        return run_debug(vm, tc, kernel, kos, args.command, args.gdb_batch, timeout)


def cmd_demo(args: argparse.Namespace) -> int:
    from rustkm.demo import run_demo

    return run_demo(args.lane)


def cmd_test(args: argparse.Namespace) -> int:
    import pytest

    return int(pytest.main(list(args.pytest_args)))


if __name__ == "__main__":
    sys.exit(main())
