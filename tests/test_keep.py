"""pytest --rustkm-keep-on-failure: a failed test's guest stays up with a shell socket and a
REPL at the end of the session; refused under xdist and in CI."""

from __future__ import annotations

import os
import pty
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

from test_shell import _read_until

ROOT = Path(__file__).parents[1]

FAILING = '''
def test_leaves_a_mark_then_fails(vm):
    vm.succeed("echo kept-state > /tmp/mark")
    assert False, "failing on purpose"
'''


def _pytest(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
                          env=env)


def test_refused_under_xdist_and_in_ci(tmp_path):
    test = tmp_path / "test_x.py"
    test.write_text("def test_x():\n    pass\n")
    clean = {k: v for k, v in os.environ.items() if k != "CI"}
    xdist = _pytest("--rustkm-keep-on-failure", "-n", "2", str(test), env=clean)
    assert xdist.returncode != 0
    assert "needs one pytest process" in xdist.stderr + xdist.stdout
    ci = _pytest("--rustkm-keep-on-failure", str(test), env={**clean, "CI": "true"})
    assert ci.returncode != 0
    assert "refused in CI" in ci.stderr + ci.stdout


def test_a_failed_tests_guest_is_kept_with_a_shell_and_a_repl(kernel, tmp_path):
    test = tmp_path / "test_kept.py"
    test.write_text(FAILING)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    main, side = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                             "--rustkm-keep-on-failure", "--rustkm-keep-minutes", "5",
                             str(test)], stdin=side, stdout=side, stderr=side, cwd=ROOT,
                            env=env, close_fds=True)
    os.close(side)
    try:
        seen = _read_until(main, b">>> ", 600)
        assert b"failing on purpose" in seen, seen[-3000:]
        found = re.search(rb"rustkm attach (\S+shell\.sock)", seen)
        assert found, seen[-3000:]
        # The shell socket reaches the failed test's own guest: its state is there.
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as shell:
            shell.connect(found.group(1).decode())
            shell.sendall(b"cat /tmp/mark\n")
            got, deadline = b"", time.monotonic() + 60
            while b"kept-state" not in got.replace(b"cat /tmp/mark", b"") and \
                    time.monotonic() < deadline:
                shell.settimeout(max(0.1, deadline - time.monotonic()))
                got += shell.recv(4096)
            assert b"kept-state" in got.replace(b"cat /tmp/mark", b""), got
        # The REPL has it as `machine`.
        os.write(main, b'print("mark:", machine.succeed("cat /tmp/mark").strip())\r')
        seen = _read_until(main, b"mark: kept-state", 60)
        assert b"mark: kept-state" in seen, seen
        # Ctrl-D only once the console prompts again: sent while readline has the terminal in
        # cooked mode (between two inputs), it can be lost.
        # The prompt may have come partly with the mark ("...kept-state\r\n>").
        rest = seen[seen.index(b"mark: kept-state"):]
        if b">>> " not in rest:
            assert b">>> " in _read_until(main, b">>> ", 60, rest)
        os.write(main, b"\x04")  # Ctrl-D: the guests stop, pytest ends with the failure
        deadline, after = time.monotonic() + 120, b""
        while proc.poll() is None and time.monotonic() < deadline:
            after += _read_until(main, b"\0never", 1)  # keep it drained: pytest writes on
        assert proc.poll() == 1, after[-3000:]
        assert not Path(found.group(1).decode()).exists()  # the VM's folder is gone
    finally:
        proc.kill()
        os.close(main)
