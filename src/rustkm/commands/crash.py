"""`rustkm crash DUMP [-e CODE] [SCRIPT [ARG...]]`: drgn on a crash dump rustkm saved."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path


def register(verbs: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = verbs.add_parser("crash", help="open a guest's crash dump in drgn, with vmlinux and the "
                                       "modules' symbols")
    p.add_argument("dump", type=Path, nargs="?",
                   help="a dump folder (or its vmcore); default: the newest dump")
    p.add_argument("-e", dest="code", metavar="CODE",
                   help="Python for drgn to run (prog is the dump) instead of its prompt")
    p.add_argument("script", nargs=argparse.REMAINDER,
                   help="a drgn script and its arguments, instead of the prompt")
    p.add_argument("--list", action="store_true", help="list the saved dumps")
    p.set_defaults(func=_cmd)


def _cmd(args: argparse.Namespace) -> int:
    from rustkm.crash import crash_root, drgn_argv, newest_dump, open_dump, require_drgn, saved
    from rustkm.errors import RustkmError

    if args.list:
        for folder in saved():
            print(folder)
        return 0
    if args.dump is not None and args.dump.suffix == ".py" and args.dump.is_file() and \
            not args.script:
        args.script, args.dump = [str(args.dump)], None  # `rustkm crash stack.py`
    path = args.dump if args.dump is not None else newest_dump()
    if path is None:
        raise RustkmError("no crash dump has been saved yet",
                          hint=f"dumps go to {crash_root()} when a guest on the debug lane "
                               "panics")
    dump = open_dump(path.expanduser().resolve())
    require_drgn()
    if args.script and not Path(args.script[0]).is_file():
        raise RustkmError(f"the drgn script {args.script[0]} does not exist")
    argv = drgn_argv(dump, args.code, args.script)
    if args.code is None and not args.script:
        return subprocess.run(argv, check=False).returncode  # drgn's own prompt
    # Scripted: the output with Rust's mangled names demangled, as in rustkm's oops reports.
    from rustkm.oops import demangle_symbols, set_demangler
    from rustkm.toolchain import ensure_toolchain

    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    set_demangler(ensure_toolchain().wrap(["llvm-cxxfilt"]))
    sys.stdout.write(demangle_symbols(done.stdout))
    sys.stderr.write(demangle_symbols(done.stderr))
    return done.returncode
