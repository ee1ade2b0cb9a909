"""`rustkm repl` through a pseudo-terminal: a Python console with the booted guest as
`machine`, the module loaded, the Machine API's answers printed, and a clean exit."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

from test_shell import _read_until

ROOT = Path(__file__).parents[1]


def _answer(main: int, needle: bytes) -> bytes:
    """Output up to NEEDLE and the prompt after it. A key sent before the console prompts again
    reaches the terminal while readline has it in cooked mode, where a Ctrl-D can be lost."""
    seen = _read_until(main, needle, 60)
    assert needle in seen, seen
    rest = seen[seen.index(needle):]
    if b">>> " not in rest:
        rest += _read_until(main, b">>> ", 60)
    assert b">>> " in rest, rest
    return seen


def test_a_python_repl_with_the_machine_in_scope(kernel):
    main, side = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "rustkm.cli", "repl", "--plain",
                             "kmods/printerfact"],
                            stdin=side, stdout=side, stderr=side, cwd=ROOT, close_fds=True)
    os.close(side)
    try:
        seen = _read_until(main, b">>> ", 300)
        assert b"`machine` (also `vm`) is the booted guest with printerfact loaded" in seen, seen
        os.write(main, b'print("count", machine.succeed("grep -c printerfact /proc/modules"))\r')
        _answer(main, b"count 1")
        # A failing command raises, as in a test; the console goes on.
        os.write(main, b'vm.fail("echo x > /dev/printerfact"); print("status", '
                       b'vm.execute("exit 7")[0])\r')
        _answer(main, b"status 7")
        os.write(main, b"\x04")  # Ctrl-D
        assert b"stopping the guest" in _read_until(main, b"stopping the guest", 60)
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
        os.close(main)
