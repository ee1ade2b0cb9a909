"""`rustkm shell`: an interactive shell in a guest, on its third serial port (ttyS2).

The guest runs `sh -i` with ttyS2 as its controlling terminal (so Ctrl-C and job control work);
the host bridges that port to the user's terminal in raw mode. Ctrl-] leaves, as in telnet.
"""

from __future__ import annotations

import dataclasses
import os
import select
import socket
import sys
import termios
import tty
from collections.abc import Callable
from pathlib import Path

from rustkm.arch import get_arch
from rustkm.errors import RustkmError
from rustkm.kernel.build import KernelBuild
from rustkm.kernel.guest import guest_kernel
from rustkm.machine import Machine, boot
from rustkm.toolchain import Toolchain
from rustkm.vm import VmOptions, shell_device

_ESCAPE = b"\x1d"  # Ctrl-]
EXITED = b"[rustkm: the guest shell exited]"


def interactive_shell(tc: Toolchain, kernel: KernelBuild, modules: list[Path],
                      options: VmOptions,
                      loaded: Callable[[Machine, list[Path]], None] | None = None) -> int:
    """A shell on the guest's third serial port, bridged to this terminal; `loaded` is called
    once the modules are in (rustkm shell --gdb prints how to attach gdb there)."""
    if not sys.stdin.isatty():
        raise RustkmError("rustkm shell needs a terminal",
                          hint="use `rustkm run MODULE -- COMMAND` from scripts")
    options = dataclasses.replace(options, shell_port=True)
    with boot(guest_kernel(kernel), modules, options=options, toolchain=tc, name="shell") as vm:
        for ko in modules:
            vm.insmod(ko.stem)
        if loaded is not None:
            loaded(vm, modules)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(vm.workdir / "shell.sock"))
        port = shell_device(get_arch(vm.kernel.arch))
        vm.succeed(f"port={port}; stty -F $port sane; (setsid -c sh -i < $port > $port 2>&1; "
                   f"echo '{EXITED.decode()}' > $port) > /dev/null 2>&1 &")
        print(f"rustkm: a shell in the guest ({', '.join(m.stem for m in modules) or 'no'} "
              "modules loaded); Ctrl-] or `exit` leaves\r", file=sys.stderr)
        bridge(sock)
    return 0


def bridge(sock: socket.socket) -> None:
    stdin = sys.stdin.fileno()
    saved = termios.tcgetattr(stdin)
    tty.setraw(stdin)
    recent = b""  # the end of what came before: the marker may arrive split in two reads
    try:
        while True:
            ready, _, _ = select.select([stdin, sock], [], [])
            if stdin in ready:
                data = os.read(stdin, 4096)
                if not data or _ESCAPE in data:
                    return
                sock.sendall(data)
            if sock in ready:
                data = sock.recv(65536)
                if not data:
                    return
                os.write(sys.stdout.fileno(), data)
                recent = (recent + data)[-2 * len(EXITED):]
                if EXITED in recent:
                    return
    finally:
        termios.tcsetattr(stdin, termios.TCSADRAIN, saved)


def attach(path: Path) -> int:
    """`rustkm attach SOCKET`: this terminal on a guest shell's socket (a kept guest's)."""
    if not sys.stdin.isatty():
        raise RustkmError("rustkm attach needs a terminal")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except OSError as e:
        raise RustkmError(f"cannot attach to {path}: {e.strerror}",
                          hint="the guest may have been stopped (its session ended or its "
                               "keep time ran out)") from None
    sock.sendall(b"\n")  # a fresh prompt
    answered = first_answer(sock, ATTACH_ANSWER_SECONDS)
    if answered is None:
        sock.close()
        raise RustkmError(f"the guest shell at {path} does not answer: another client is "
                          "attached to it (QEMU's socket serves one at a time)",
                          hint="leave the other `rustkm attach` (Ctrl-]) and try again")
    print("rustkm: attached; Ctrl-] leaves (the shell stays), `exit` ends this shell\r",
          file=sys.stderr)
    sys.stdout.buffer.write(answered)
    sys.stdout.flush()
    bridge(sock)
    return 0


ATTACH_ANSWER_SECONDS = 10.0


def first_answer(sock: socket.socket, seconds: float) -> bytes | None:
    """What the guest shell sends back within `seconds` (its prompt), or None: QEMU accepts
    a second connection to a socket chardev but never reads or writes it."""
    import select

    ready, _, _ = select.select([sock], [], [], seconds)
    if not ready:
        return None
    data = sock.recv(65536)
    return data or None
