"""`rustkm repl [MODULE...] [--no-load] [--plain]`: the verb of rustkm.repl."""

from __future__ import annotations

import argparse
from pathlib import Path

from rustkm.repl import BANNER, interact


def register(verbs: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from rustkm.commands.options import kernel_options, vm_options

    p = verbs.add_parser("repl", help="a Python REPL with a booted guest as `machine`")
    p.add_argument("modules", nargs="*", type=Path,
                   help="module folders to build, copy in and load")
    p.add_argument("--no-load", action="store_true", help="copy the modules in, load none")
    p.add_argument("--plain", action="store_true",
                   help="Python's own console even when IPython or ptpython is installed")
    kernel_options(p)
    vm_options(p)
    p.set_defaults(func=_cmd)


def _cmd(args: argparse.Namespace) -> int:
    import rustkm
    from rustkm.commands.options import (
        build_modules,
        check_device_syntax,
        check_module_folders,
        vm_settings,
    )
    from rustkm.kernel.guest import guest_kernel
    from rustkm.machine import boot

    check_module_folders(args.modules)
    check_device_syntax(args.devices)
    tc, kernel, builds = build_modules(args, args.modules)
    kos = [ko for b in builds for ko in b.modules]
    with boot(guest_kernel(kernel), kos, options=vm_settings(args), toolchain=tc, name="repl") as machine:
        if not args.no_load:
            for ko in kos:
                machine.insmod(ko.stem)
        names = ", ".join(ko.stem for ko in kos)
        loaded = (f" with {names} {'copied in' if args.no_load else 'loaded'}" if kos else "")
        interact({"machine": machine, "vm": machine, "rustkm": rustkm},
                 BANNER.format(loaded=loaded), args.plain)
    return 0
