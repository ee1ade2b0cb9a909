"""`rustkm check KO [--kernel LANE|BUILD_DIR] [--debug]`: the verb of rustkm.modcheck."""

from __future__ import annotations

import argparse
from pathlib import Path

from rustkm.errors import RustkmError
from rustkm.kernel.build import KernelBuild
from rustkm.modcheck import check, print_report
from rustkm.modinfo import read_module


def register(verbs: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = verbs.add_parser("check", help="read a .ko: modinfo, vermagic and unknown symbols "
                                       "against a kernel")
    p.add_argument("ko", type=Path)
    p.add_argument("--kernel", metavar="LANE|BUILD_DIR",
                   help="a kernel lane or any kernel build folder (default: the project's)")
    p.add_argument("--debug", action="store_true", default=None,
                   help="check against the debug-lane kernel")
    p.add_argument("--arch", metavar="ARCH",
                   help="the architecture of the lane to check against (x86_64, arm64)")
    p.set_defaults(func=_cmd)


def _cmd(args: argparse.Namespace) -> int:
    from rustkm.oops import set_demangler
    from rustkm.toolchain import Toolchain, rootfs_toolchain

    read_module(args.ko)  # a clear error for a bad file before any kernel work
    kernel: KernelBuild | Path
    if args.kernel and "/" in args.kernel and not Path(args.kernel).is_dir():
        raise RustkmError(f"kernel build folder {args.kernel} does not exist",
                          hint="pass the folder the kernel was built in (rustkm kernel info "
                               "shows the project's), or debian:RELEASE")
    if args.kernel and Path(args.kernel).is_dir():
        kernel = Path(args.kernel)
        tc = rootfs_toolchain()
        if tc.root is None or not tc.root.is_dir():
            tc = Toolchain(name="host", root=None)  # llvm-cxxfilt from PATH, if there
    else:
        from rustkm.kernel.choice import LaneChoice
        from rustkm.kernel.prepare import prepare_lane
        from rustkm.project import find_project

        project = find_project()
        lane = LaneChoice.ask(args.kernel, args.debug, args.arch).lane(project)
        tc, kernel = prepare_lane(lane, project)
    set_demangler(tc.wrap(["llvm-cxxfilt"]))
    report = check(args.ko, kernel)
    print_report(report)
    return 1 if report.problems else 0
