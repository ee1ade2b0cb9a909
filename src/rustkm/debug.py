"""gdb on a guest: QEMU's gdb stub, the toolchain's gdb with vmlinux, the kernel's gdb scripts
(lx-dmesg, lx-ps, lx-symbols) and the modules' symbols at the addresses the guest loaded them.

The stub is started on the running VM through the QEMU monitor (`gdbserver`), so a guest
restored from a snapshot can be debugged as well as a cold one; it listens on a Unix socket in
the VM's folder. The modules' sections are read from /sys/module/NAME/sections (as root in the
guest), and each module is added with `add-symbol-file KO -s SECTION ADDRESS ...`: exact
without the gdb scripts, and Rust names come out demangled from the modules' DWARF.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rustkm.agent import CommandResult
from rustkm.errors import RustkmError
from rustkm.kernel.build import KernelBuild
from rustkm.log import say
from rustkm.machine import Machine
from rustkm.toolchain import Toolchain

GDB_PACKAGE = "gdb"
_SECTION = re.compile(r"^/sys/module/[^/]+/sections/(\S+):(0x[0-9a-f]+)$")


def has_debug_info(kernel: KernelBuild) -> bool:
    config = kernel.config.read_text(errors="replace") if kernel.config.is_file() else ""
    return "CONFIG_DEBUG_INFO=y" in config.splitlines()


def require_debug_info(kernel: KernelBuild, lane: str) -> None:
    """A kernel without DWARF gives gdb addresses without names: refuse, saying which option
    is missing and which lane has it."""
    if kernel.image_path:
        raise RustkmError(f"lane {lane} is a stock kernel: rustkm has no vmlinux with debug "
                          "information for it",
                          hint="debug on the debug lane: --kernel debug (CONFIG_DEBUG_INFO)")
    if not has_debug_info(kernel):
        raise RustkmError(f"the kernel of lane {lane} has no debug information "
                          f"(CONFIG_DEBUG_INFO is not set in {kernel.config})",
                          hint="the debug lane has it: --kernel debug (or add "
                               "CONFIG_DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT=y to a fragment)")


def require_gdb(tc: Toolchain) -> None:
    found = tc.run(["sh", "-c", "command -v gdb"], check=False)
    if found.returncode != 0:
        raise RustkmError(f"gdb is not in the toolchain ({tc.name})",
                          hint=f"run `sudo rustkm setup` once: it adds the Debian package "
                               f"{GDB_PACKAGE}")


@dataclass(frozen=True)
class GdbTarget:
    """What gdb needs to attach to one running guest."""
    socket: Path
    vmlinux: Path
    script: Path  # target remote, the kernel's gdb scripts, the modules' symbols

    @property
    def marker(self) -> Path:
        """Made by the script's last line: gdb is attached, the symbols are read."""
        return self.script.with_suffix(".attached")


def start_stub(vm: Machine) -> Path:
    """QEMU's gdb stub on a Unix socket of the VM's folder, started on the running VM."""
    socket = vm.workdir / "gdb.sock"
    vm.qmp("human-monitor-command",
           **{"command-line": f"gdbserver unix:{socket},server=on,wait=off"})
    if not socket.exists():
        raise RustkmError(f"{vm.name}: QEMU did not start its gdb stub at {socket}")
    vm.debugger_may_hold()
    return socket


def module_sections(vm: Machine, name: str) -> dict[str, int]:
    """Where the guest loaded each section of module `name` (real addresses: root reads
    them)."""
    folder = f"/sys/module/{name}/sections"
    out = vm.succeed(f"grep -H . {folder}/.[a-z]* 2>/dev/null || true")
    sections = {}
    for line in out.splitlines():
        if (m := _SECTION.match(line.strip())) and int(m.group(2), 16):
            sections[m.group(1)] = int(m.group(2), 16)
    if ".text" not in sections:
        raise RustkmError(f"{vm.name}: module {name} is not loaded (no {folder}/.text)",
                          hint="is it loaded? rustkm debug loads the modules it is given")
    return sections


def gdb_script(socket: Path, kernel: KernelBuild,
               modules: Sequence[tuple[Path, dict[str, int]]], marker: Path) -> str:
    lines = ["set pagination off", "set confirm off", "set width 0",
             *stub_free_check(socket), f"target remote {socket}"]
    scripts = kernel.build_dir / "vmlinux-gdb.py"
    if scripts.exists():
        # The build folder's vmlinux-gdb.py links to the source tree's scripts/gdb: both are
        # trusted, or gdb declines to load the lx- commands.
        lines += [f"add-auto-load-safe-path {kernel.build_dir}",
                  f"add-auto-load-safe-path {scripts.resolve().parent}", f"source {scripts}"]
    for ko, sections in modules:
        placed = " ".join(f"-s {name} {address:#x}" for name, address in sections.items())
        lines.append(f"add-symbol-file {ko} {placed}")
    lines.append(f"shell touch {marker}")
    return "\n".join(lines) + "\n"


# QEMU's stub serves one client; a second one's connection waits, unanswered, in the listen
# queue, where gdb would hang. The check asks the stub for the stop reason first.
_STUB_BUSY = ("rustkm: this guest's gdb stub already has a client (QEMU serves one at a time): "
              "detach or quit the other gdb first")


def stub_free_check(socket: Path) -> list[str]:
    return ["python",
            "import socket as _s",
            "_c = _s.socket(_s.AF_UNIX, _s.SOCK_STREAM)",
            "_c.settimeout(3)",
            "try:",
            f"    _c.connect({str(socket)!r})",
            "    _c.sendall(b'$?#3f')",
            "    _free = bool(_c.recv(64))",
            "except OSError:",
            "    _free = False",
            "_c.close()",
            "if not _free:",
            f"    gdb.write({_STUB_BUSY + chr(10)!r}, gdb.STDERR)",
            "    gdb.execute('quit 3')",
            "end"]


def attach(vm: Machine, kernel: KernelBuild, kos: Sequence[Path]) -> GdbTarget:
    """Start the stub and write the script that attaches gdb with every module's symbols."""
    from rustkm.machine import _loaded_name

    modules = [(ko, module_sections(vm, _loaded_name(ko))) for ko in kos]
    socket = start_stub(vm)
    script = vm.workdir / "attach.gdb"
    target = GdbTarget(socket, kernel.vmlinux, script)
    script.write_text(gdb_script(socket, kernel, modules, target.marker))
    return target


def gdb_argv(target: GdbTarget, batch: Path | None) -> list[str]:
    argv = ["gdb", "-q", "-nx", "-x", str(target.script)]
    if batch is not None:
        # The user's script, then a detach: the guest runs on when gdb is done.
        argv = ["gdb", "-q", "-nx", "-batch", "-x", str(target.script), "-x", str(batch),
                "-ex", "detach"]
    return [*argv, str(target.vmlinux)]


def how_to_attach(tc: Toolchain, target: GdbTarget) -> str:
    return shlex.join(tc.wrap(gdb_argv(target, None), binds=[target.script.parent]))


def run_debug(vm: Machine, tc: Toolchain, kernel: KernelBuild, kos: Sequence[Path],
              command: str, batch: Path | None, timeout: float) -> int:
    """Attach gdb (interactive, or running `batch` then detaching) and run `command` in the
    guest meanwhile; the command's output follows gdb's."""
    target = attach(vm, kernel, kos)
    say(f"debug: gdb stub at {target.socket}; script {target.script}")
    if batch is not None and not batch.is_file():
        raise RustkmError(f"the gdb script {batch} does not exist")
    argv = tc.wrap(gdb_argv(target, batch), env={"TERM": os.environ.get("TERM", "dumb")},
                   binds=[target.script.parent, *([batch.resolve().parent] if batch else [])])
    # Ctrl-C at gdb's prompt interrupts the guest (gdb's business), not rustkm.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if batch is None else None
    try:
        return _gdb_and_command(vm, target, argv, batch, command, timeout)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _gdb_and_command(vm: Machine, target: GdbTarget, argv: list[str], batch: Path | None,
                     command: str, timeout: float) -> int:
    result: list[CommandResult | BaseException] = []

    def guest() -> None:
        try:
            result.append(vm.run(command, timeout=timeout))
        except BaseException as e:  # noqa: BLE001 (reported below, on the main thread)
            result.append(e)

    gdb = subprocess.Popen(argv, stdin=subprocess.DEVNULL if batch else None)
    runner = None
    if command:
        _wait_attached(target, gdb)
        # The guest is stopped by gdb now: the command starts when gdb lets it run, after
        # the script's breakpoints are set.
        runner = threading.Thread(target=guest, name="rustkm-debug-command", daemon=True)
        runner.start()
    try:
        status = gdb.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        gdb.kill()
        raise RustkmError(f"gdb did not finish in {timeout:.0f} s; stopped",
                          hint="a script that continues and never stops again waits forever: "
                               "end it after its last breakpoint (rustkm detaches)") from None
    if runner is not None:
        runner.join(timeout)
        if not result:
            raise RustkmError(f"the guest command {command!r} did not finish in {timeout:.0f} s "
                              "after gdb detached")
        outcome = result[0]
        if isinstance(outcome, BaseException):
            raise outcome
        sys.stdout.buffer.write(outcome.stdout)
        sys.stderr.buffer.write(outcome.stderr)
        sys.stdout.flush()
        say(f"debug: the guest command exited {outcome.status}; gdb exited {status}")
        return status or outcome.status
    return status


def _wait_attached(target: GdbTarget, gdb: subprocess.Popen[bytes],
                   timeout: float = 120.0) -> None:
    """Until gdb has attached (the guest is stopped then) and read the modules' symbols: its
    script's last line leaves a marker file."""
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if target.marker.exists():
            return
        if gdb.poll() is not None:
            raise RustkmError(f"gdb exited ({gdb.returncode}) before it attached to the guest")
        time.sleep(0.05)
    gdb.kill()
    raise RustkmError(f"gdb did not attach to the guest in {timeout:.0f} s")

