"""`rustkm repl [MODULE...]`: a Python REPL with a booted guest in scope, as the NixOS test
driver's interactive mode has: `machine` (also `vm`) is a Machine with the modules built, copied
in and loaded, so the Machine API can be tried line by line
(`machine.succeed("cat /dev/printerfact")`, `machine.wait_for_console_text(...)`). IPython or
ptpython is used when installed, else Python's own console. Leaving it (Ctrl-D, `exit()`)
stops the guest.
"""

from __future__ import annotations

import code
import sys
from typing import Any

BANNER = """rustkm repl: `machine` (also `vm`) is the booted guest{loaded}.
  machine.succeed("uname -a")     machine.execute("false")     machine.console_log
  machine.insmod(NAME)            machine.rmmod(NAME)          help(machine)
Ctrl-D or exit() leaves (and stops the guest)."""


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
