"""`rustkm export OUT [--kernel LANE] [--tar]`: the verb of rustkm.export."""

from __future__ import annotations

import argparse
from pathlib import Path

from rustkm.export import check_destination, export_metadata, tarball
from rustkm.log import say


def register(verbs: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = verbs.add_parser("export", help="the kernel's module-build metadata as a folder for "
                                        "plain `make -C DIR/build M=$PWD`")
    p.add_argument("out", type=Path)
    p.add_argument("--kernel", dest="stock", metavar="LANE",
                   help="the kernel lane (default: the project's self-built kernel)")
    p.add_argument("--tar", action="store_true", help="also pack OUT.tar.gz")
    p.set_defaults(func=_cmd)


def _cmd(args: argparse.Namespace) -> int:
    from rustkm.commands.options import prepared_kernel

    out = check_destination(args.out, args.tar)  # before the kernel, which may take minutes
    tc, build = prepared_kernel(args)
    out = export_metadata(build, out, tc.versions())
    say(f"done: make -C {out / 'build'} M=$PWD  (with {build.release}'s toolchain, see "
        f"{out / 'TOOLCHAIN'})")
    if args.tar:
        say(f"packed: {tarball(out)}")
    return 0
