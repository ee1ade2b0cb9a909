"""`rustkm shell` through a pseudo-terminal: a prompt in a (restored) guest with the module
loaded, a command's output, and a clean exit."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]


def _read_until(fd: int, needle: bytes, timeout: float, seen: bytes = b"") -> bytes:
    """What `fd` gives until `needle` is in it (or the timeout), after what was `seen` of it
    already: a needle may arrive cut in two reads."""
    deadline = time.monotonic() + timeout
    while needle not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                seen += os.read(fd, 65536)
            except OSError:
                break
    return seen


def wait_for_prompt(fd: int) -> None:
    """Read rustkm shell's banner, then the guest shell's prompt. A line typed before the guest
    shell starts can be lost (ash's line editor first asks the terminal for its cursor
    position), so tests wait for the prompt, as a person would."""
    seen = _read_until(fd, b"leaves", 300)
    assert b"Ctrl-] or `exit` leaves" in seen, seen[-2000:]
    seen = seen.split(b"leaves", 1)[1]
    if b"# " not in seen:
        seen += _read_until(fd, b"# ", 60)
    assert b"# " in seen, seen[-2000:]


def test_an_interactive_shell_in_a_guest(kernel):
    main, side = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "rustkm.cli", "shell", "kmods/printerfact"],
                            stdin=side, stdout=side, stderr=side, cwd=ROOT, close_fds=True)
    os.close(side)
    try:
        wait_for_prompt(main)
        os.write(main, b"grep -c printerfact /proc/modules; echo marker-$((6*7))\r")
        out = _read_until(main, b"marker-42", 60)
        assert b"marker-42" in out and b"\n1\r" in out.replace(b"\r\r", b"\r")
        os.write(main, b"exit\r")
        # Keep reading, as a terminal does, so that the shell's last words never block it.
        tail = _read_until(main, b"the guest shell exited", 60)
        assert b"the guest shell exited" in tail, tail[-2000:]
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
        os.close(main)


def test_a_second_client_of_a_guest_shell_is_told_so_not_left_hanging(tmp_path):
    """QEMU's socket chardev takes one client: a second connection is accepted by the kernel
    (the backlog) and never served. `rustkm attach` waits for the shell's answer and says
    another client is attached, where it used to hang."""
    import socket as socket_module

    from rustkm.shell import first_answer

    path = str(tmp_path / "shell.sock")
    server = socket_module.socket(socket_module.AF_UNIX, socket_module.SOCK_STREAM)
    server.bind(path)
    server.listen(1)  # listening, never accepting: a client already holds the guest
    second = socket_module.socket(socket_module.AF_UNIX, socket_module.SOCK_STREAM)
    second.connect(path)
    second.sendall(b"\n")
    assert first_answer(second, 0.5) is None
    ours, guest = socket_module.socketpair()
    guest.sendall(b"~ # ")
    assert first_answer(ours, 5) == b"~ # "
    for s in (server, second, ours, guest):
        s.close()
