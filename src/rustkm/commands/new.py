"""`rustkm new NAME [--dir DIR] [--author NAME] [--no-editor]`: the verb of rustkm.scaffold."""

from __future__ import annotations

import argparse
from pathlib import Path

from rustkm.log import say
from rustkm.scaffold import scaffold, write_rust_project


def register(verbs: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = verbs.add_parser("new", help="scaffold a module: NAME.rs, Kbuild, a VM test, "
                                     "rust-project.json")
    p.add_argument("name")
    p.add_argument("--dir", type=Path, default=Path("."), help="where to create it")
    p.add_argument("--author", default="rustkm user")
    p.add_argument("--no-editor", action="store_true",
                   help="skip rust-project.json (it needs the kernel build)")
    p.set_defaults(func=_cmd)


def _cmd(args: argparse.Namespace) -> int:
    folder = scaffold(args.name, args.dir, args.author)
    say(f"created {folder}")
    if not args.no_editor:
        from rustkm.commands.options import prepared_kernel

        say(f"editor support: {write_rust_project(folder, *prepared_kernel(args))}")
    say(f"next: rustkm build {folder} && pytest {folder}")
    return 0
