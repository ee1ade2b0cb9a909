"""`rustkm repl [MODULE...]`: a Python REPL with a booted guest in scope, as the NixOS test
driver's interactive mode has: `machine` (also `vm`) is a Machine with the modules built, copied
in and loaded, so the Machine API can be tried line by line
(`machine.succeed("cat /dev/printerfact")`, `machine.wait_for_console_text(...)`). IPython or
ptpython is used when installed, else Python's own console. Leaving it (Ctrl-D, `exit()`)
stops the guest.
"""

from __future__ import annotations

import argparse
import code
import sys
from pathlib import Path
from typing import Any

BANNER = """rustkm repl: `machine` (also `vm`) is the booted guest{loaded}.
  machine.succeed("uname -a")     machine.execute("false")     machine.console_log
  machine.insmod(NAME)            machine.rmmod(NAME)          help(machine)
Ctrl-D or exit() leaves (and stops the guest)."""


def register(verbs: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from rustkm.cli import _kernel_options, _vm_options

    p = verbs.add_parser("repl", help="a Python REPL with a booted guest as `machine`")
    p.add_argument("modules", nargs="*", type=Path,
                   help="module folders to build, copy in and load")
    p.add_argument("--no-load", action="store_true", help="copy the modules in, load none")
    p.add_argument("--plain", action="store_true",
                   help="Python's own console even when IPython or ptpython is installed")
    _kernel_options(p)
    _vm_options(p)
    p.set_defaults(func=_cmd)


def interact(namespace: dict[str, Any], banner: str, plain: bool = False) -> None:
    """The richest REPL installed: IPython, ptpython, else Python's own."""
    if not plain and sys.stdin.isatty():
        try:
            from IPython import start_ipython

            print(banner)
            start_ipython(argv=["--no-banner"], user_ns=namespace)
            return
        except ImportError:
            pass
        try:
            from ptpython.repl import embed

            print(banner)
            embed(globals=namespace, locals=namespace)
            return
        except ImportError:
            pass
    code.interact(banner=banner, local=namespace, exitmsg="rustkm repl: stopping the guest")


def _cmd(args: argparse.Namespace) -> int:
    import rustkm
    from rustkm.cli import _build_modules, _check_device_syntax, _request, _vm, check_module_folders
    from rustkm.machine import boot

    check_module_folders(args.modules)
    _check_device_syntax(args.devices)
    if args.modules:
        tc, kernel, builds = _build_modules(args, args.modules)
    else:
        from rustkm.session import prepare_kernel

        project, request = _request(args)
        (tc, kernel), builds = prepare_kernel(request, project), []
    kos = [ko for b in builds for ko in b.modules]
    with boot(kernel, kos, options=_vm(args), toolchain=tc, name="repl") as machine:
        if not args.no_load:
            for ko in kos:
                machine.insmod(ko.stem)
        names = ", ".join(ko.stem for ko in kos)
        loaded = (f" with {names} {'copied in' if args.no_load else 'loaded'}" if kos else "")
        interact({"machine": machine, "vm": machine, "rustkm": rustkm},
                 BANNER.format(loaded=loaded), args.plain)
    return 0
