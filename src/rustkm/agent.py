"""The host side of the guest agent protocol (see guest/agent): framed, base64, byte-exact."""

from __future__ import annotations

import base64
import itertools
import math
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from rustkm.errors import RustkmError

READY = b"READY rustkm-agent"
# After the guest starts sending output, each new chunk buys this much more time.
_TRANSFER_GRACE = 15.0
# The guest kills a command at its timeout; if no answer comes this long after, it is stuck.
_ANSWER_GRACE = 10.0


@dataclass(frozen=True)
class CommandResult:
    command: str
    status: int
    stdout: bytes
    stderr: bytes
    duration: float
    timed_out: bool = False

    @property
    def out(self) -> str:
        return self.stdout.decode(errors="replace")

    @property
    def err(self) -> str:
        return self.stderr.decode(errors="replace")


class GuestStuck(RustkmError):
    """The guest stopped answering: a command stuck in the kernel, a hang, or a dead VM."""


class AgentChannel:
    def __init__(self, sock: socket.socket, abort: Callable[[], str | None]) -> None:
        self.sock = sock
        self.sock.settimeout(0.2)
        self._buffer = bytearray()
        self._ids = itertools.count(1)
        # Returns a reason to stop waiting (QEMU died, the kernel panicked), or None.
        self._abort = abort

    def _readline(self, deadline: Callable[[], float], what: str) -> bytes:
        while True:
            newline = self._buffer.find(b"\n")
            if newline >= 0:
                line = bytes(self._buffer[:newline])
                del self._buffer[:newline + 1]
                return line
            reason = self._abort()
            if reason:
                raise GuestStuck(f"the guest stopped while {what}: {reason}")
            if time.monotonic() > deadline():
                raise GuestStuck(f"the guest did not answer while {what}")
            try:
                chunk = self.sock.recv(1 << 20)
            except TimeoutError:
                continue
            if not chunk:
                raise GuestStuck(f"the agent connection closed while {what}")
            self._buffer += chunk
            self._last_data = time.monotonic()

    def wait_ready(self, timeout: float) -> None:
        end = time.monotonic() + timeout
        while self._readline(lambda: end, "booting") != READY:
            pass

    def run(self, script: str, timeout: float) -> CommandResult:
        request_id = next(self._ids)
        seconds = max(1, math.ceil(timeout))
        encoded = base64.b64encode(script.encode()).decode()
        start = time.monotonic()
        self._last_data = start
        self.sock.sendall(f"RUN {request_id} {seconds} {encoded}\n".encode())
        command_end = start + seconds + _ANSWER_GRACE

        def deadline() -> float:
            return max(command_end, self._last_data + _TRANSFER_GRACE)

        what = f"running {script!r}"
        sections: dict[str, list[bytes]] = {"OUT": [], "ERR": []}
        current: list[bytes] | None = None
        while True:
            line = self._readline(deadline, what)
            words = line.split()
            if len(words) >= 2 and words[1] == str(request_id).encode():
                tag = words[0].decode(errors="replace")
                if tag in sections:
                    current = sections[tag]
                    continue
                if tag == "END" and len(words) >= 3:
                    status = int(words[2])
                    elapsed = time.monotonic() - start
                    timed_out = b"TIMEOUT" in words[3:]
                    if b"STUCK" in words[3:]:
                        raise GuestStuck(f"{script!r} outlived its {seconds} s timeout and "
                                         "could not be killed (a task stuck in the kernel)")
                    return CommandResult(script, status, _decode(sections["OUT"]),
                                         _decode(sections["ERR"]), elapsed, timed_out)
            if current is not None:
                current.append(line)


def _decode(lines: list[bytes]) -> bytes:
    return base64.b64decode(b"".join(lines))
