"""pytest --rustkm-keep-on-failure: a failed test's VM stays up for a person to look inside.

When a test using the `vm` fixture fails, its guest is not stopped: a shell is started on the
guest's third serial port (a Unix socket `rustkm attach SOCKET` bridges to a terminal), QEMU's
gdb stub is started where the kernel has debug information, and the test's report says how to
attach both. When the session ends, a Python REPL opens with the kept guests in scope
(`machines`, and `machine` for the first) if pytest runs in a terminal; otherwise the session
waits. Either way the guests are stopped when the REPL is left, after the keep time
(--rustkm-keep-minutes), or on Ctrl-C. Refused under xdist (no terminal to come back to, and a
worker's guests die with it) and in CI (nobody is there to attach).
"""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from rustkm.arch import get_arch
from rustkm.kernel.build import KernelBuild
from rustkm.machine import Machine
from rustkm.shell import EXITED
from rustkm.toolchain import Toolchain
from rustkm.vm import shell_device


@dataclass
class Kept:
    nodeid: str
    machine: Machine
    stack: ExitStack  # closing it stops the guest
    shell: Path
    gdb: str = ""  # the command that attaches gdb ("" without debug information)
    lines: list[str] = field(default_factory=list)


def refusal(numprocesses: object, worker: bool, environ: dict[str, str]) -> str:
    """Why keeping is refused here ("" when it is not)."""
    if worker or (numprocesses not in (None, 0, "0")):
        return ("--rustkm-keep-on-failure needs one pytest process: xdist workers (-n) have "
                "no terminal to come back to, and their guests end with them; drop -n")
    if environ.get("CI"):
        return ("--rustkm-keep-on-failure is refused in CI (CI is set): nobody is there to "
                "attach, and a kept guest would hold the job until its timeout")
    return ""


def keep(nodeid: str, machine: Machine, stack: ExitStack, tc: Toolchain,
         kernel: KernelBuild, kos: list[Path]) -> Kept:
    """Make the failed test's guest reachable: a shell on its ttyS2 socket, gdb's stub."""
    from rustkm.debug import attach, has_debug_info, how_to_attach

    shell = machine.workdir / "shell.sock"
    port = shell_device(get_arch(machine.kernel.arch))
    machine.succeed(f"port={port}; stty -F $port sane; (while :; do setsid -c sh -i < $port > "
                    f"$port 2>&1; echo '{EXITED.decode()}' > $port; done) > /dev/null 2>&1 &")
    kept = Kept(nodeid, machine, stack, shell)
    kept.lines = [f"rustkm: the guest of {nodeid} is kept (--rustkm-keep-on-failure)",
                  f"  a shell:   rustkm attach {shell}"]
    if has_debug_info(kernel) and not kernel.image_path:
        kept.gdb = how_to_attach(tc, attach(machine, kernel, kos))
        kept.lines.append(f"  gdb:       {kept.gdb}")
    else:
        kept.lines.append("  gdb:       not on this lane (no debug information; the debug "
                          "lane has it: --rustkm-kernel debug)")
    kept.lines.append("  the REPL:  opens when the session ends, with this guest as "
                      "`machine` (and all kept ones in `machines`)")
    return kept


def hold(kept: list[Kept], minutes: float, terminal: bool) -> None:
    """At the end of the session: a REPL (in a terminal) or a wait, then stop them all."""
    from rustkm.repl import interact

    deadline = time.monotonic() + minutes * 60
    print("\n".join(line for k in kept for line in k.lines))
    timer = threading.Timer(minutes * 60, _expire, (kept, minutes))
    timer.daemon = True
    timer.start()
    try:
        if terminal:
            machines = {k.nodeid: k.machine for k in kept}
            interact({"machine": kept[0].machine, "machines": machines},
                     f"rustkm: {len(kept)} kept guest(s); `machine` is {kept[0].nodeid}'s, "
                     f"`machines` holds them all. They stop when you leave (Ctrl-D) or in "
                     f"{minutes:g} min.")
        else:
            print(f"rustkm: the guests stay up for {minutes:g} min (Ctrl-C stops them)",
                  flush=True)
            while time.monotonic() < deadline and any(k.machine.running for k in kept):
                time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        timer.cancel()
        stop(kept)


def _expire(kept: list[Kept], minutes: float) -> None:
    print(f"\nrustkm: the kept guests' {minutes:g} min are up; stopped (leave the REPL with "
          "Ctrl-D)", flush=True)
    stop(kept)


def stop(kept: list[Kept]) -> None:
    for k in kept:
        try:
            k.stack.close()
        except Exception as e:  # noqa: BLE001 (the others must still be stopped)
            print(f"rustkm: stopping the kept guest of {k.nodeid}: {e}", flush=True)
    kept.clear()
