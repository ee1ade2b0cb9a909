"""The host side of the guest agent protocol (see guest/agent.c): framed, nonced, checksummed.

Every frame is `RKM1 type nonce(8) length(4) payload crc32(4)`. A reply counts only if it
carries the nonce of the request in flight, its CRC holds and the byte counts in its final
frame match what arrived; anything else is a protocol error and ends the VM (GuestStuck), so a
verdict is either exact or loudly absent.
"""

from __future__ import annotations

import math
import os
import socket
import struct
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from rustkm.errors import RustkmError

MAGIC = b"RKM1"
_HEADER = struct.Struct(">4scQI")  # magic, type, nonce, length
_DONE = struct.Struct(">iIQQ")  # status, flags, stdout bytes, stderr bytes
_PUT = struct.Struct(">QIH")  # offset, mode, path length
FLAG_TIMEOUT = 1
FLAG_STUCK = 2
HELLO = b"rustkm-agent 1"
# The guest runs `sh -c SCRIPT`: one argument, at most MAX_ARG_STRLEN (32 pages) with its NUL.
MAX_SCRIPT = 131071
_MAX_FRAME = 256 << 20
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
    """The guest stopped answering: a command stuck in the kernel, a hang, a dead VM, or a
    channel that can no longer be trusted. `hung` says whether a kernel hang is likely (worth
    waiting for the kernel's hung-task report)."""

    def __init__(self, message: str, hint: str | None = None, details: str | None = None,
                 hung: bool = False) -> None:
        super().__init__(message, hint=hint, details=details)
        self.hung = hung


class AgentError(RustkmError):
    """The agent could not run or watch a request (no memory to fork, its keeper was killed);
    the command's own status is unknown, so none is reported."""


@dataclass(frozen=True)
class _Frame:
    kind: bytes
    nonce: int
    payload: bytes


def frame(kind: bytes, nonce: int, payload: bytes) -> bytes:
    """One frame as the agent reads it (also used by tests to forge and damage frames)."""
    head = _HEADER.pack(MAGIC, kind, nonce, len(payload))
    crc = zlib.crc32(payload, zlib.crc32(head[4:]))
    return head + payload + struct.pack(">I", crc)


class AgentChannel:
    def __init__(self, sock: socket.socket, abort: Callable[[], str | None]) -> None:
        self.sock = sock
        self.sock.settimeout(0.2)
        self._buffer = bytearray()
        self._last_data = time.monotonic()
        self.boot_nonce = 0
        # Returns a reason to stop waiting (QEMU died, the kernel panicked), or None.
        self._abort = abort
        # Set once a debugger may hold the guest stopped (gdb's stub is on): a breakpoint is
        # no stuck guest, so the host's deadlines wait; the agent's own timeouts still run on
        # the guest's clock, which stops while the guest does.
        self.debugger_may_hold = False
        # Requests whose caller stopped reading their reply (Ctrl-C, a sink that failed): the
        # rest of their reply is skipped when it comes, so the channel stays in step.
        self._abandoned: set[int] = set()

    # -- reading frames -----------------------------------------------------------------

    def _fill(self, size: int, deadline: Callable[[], float], what: str) -> None:
        while len(self._buffer) < size:
            reason = self._abort()
            if reason:
                raise GuestStuck(f"the guest stopped while {what}: {reason}")
            if time.monotonic() > deadline():
                if not self.debugger_may_hold:
                    raise GuestStuck(f"the guest did not answer while {what}", hung=True)
                self._last_data = time.monotonic()
            try:
                chunk = self.sock.recv(max(1 << 20, size - len(self._buffer)))
            except TimeoutError:
                continue
            except OSError as e:
                raise GuestStuck(f"the agent connection failed while {what}: {e}") from None
            if not chunk:
                raise GuestStuck(f"the agent connection closed while {what}")
            self._buffer += chunk
            self._last_data = time.monotonic()

    def _read_frame(self, deadline: Callable[[], float], what: str) -> _Frame:
        # The magic first: bytes that are not a frame fail the call as soon as they differ
        # from it, not when enough has come for a whole header (a short line of garbage would
        # otherwise wait for the command's own reply).
        have = b""
        while len(have) < len(MAGIC):
            self._fill(len(have) + 1, deadline, what)
            have = bytes(self._buffer[:len(MAGIC)])
            if not MAGIC.startswith(have):
                raise GuestStuck(f"the agent sent bytes that are not a frame while {what}: "
                                 f"{self._foreign_bytes()!r}")
        self._fill(_HEADER.size, deadline, what)
        _, kind, nonce, length = _HEADER.unpack_from(self._buffer)
        if length > _MAX_FRAME:
            raise GuestStuck(f"the agent announced a {length}-byte frame while {what}")
        total = _HEADER.size + length + 4
        self._fill(total, deadline, what)
        payload = bytes(self._buffer[_HEADER.size:_HEADER.size + length])
        (crc,) = struct.unpack_from(">I", self._buffer, total - 4)
        if crc != zlib.crc32(payload, zlib.crc32(bytes(self._buffer[4:_HEADER.size]))):
            raise GuestStuck(f"a frame from the agent arrived damaged (CRC) while {what}")
        del self._buffer[:total]
        return _Frame(kind, nonce, payload)

    def _foreign_bytes(self) -> bytes:
        """What came instead of a frame, up to 32 bytes or a line: the rest is waited for up
        to half a second, so the error shows more than the first byte that differed."""
        end = time.monotonic() + 0.5
        while len(self._buffer) < 32 and b"\n" not in self._buffer and time.monotonic() < end:
            try:
                chunk = self.sock.recv(32 - len(self._buffer))
            except TimeoutError:
                continue
            except OSError:
                break
            if not chunk:
                break
            self._buffer += chunk
        return bytes(self._buffer[:32])

    def wait_ready(self, timeout: float) -> None:
        end = time.monotonic() + timeout
        ready = self._read_frame(lambda: end, "booting")
        if ready.kind != b"Y" or ready.payload != HELLO:
            raise GuestStuck(f"the agent greeted with {ready.kind!r} {ready.payload[:60]!r}, "
                             f"not {HELLO!r}")
        self.boot_nonce = ready.nonce

    # -- requests -----------------------------------------------------------------------

    def send(self, kind: bytes, payload: bytes, what: str = "sending a request",
             timeout: float = 60.0) -> int:
        """Send a request; returns its nonce. A fresh random nonce per request means that no
        reply to an earlier (or forged) request can pass for this one's. The guest takes the
        bytes as fast as it reads them (a serial port is slow): each piece it takes buys
        more time, a guest that stops taking them fails the call."""
        nonce = int.from_bytes(os.urandom(8), "big")
        data = memoryview(frame(kind, nonce, payload))
        deadline = time.monotonic() + timeout
        while data:
            reason = self._abort()
            if reason:
                raise GuestStuck(f"the guest stopped while {what}: {reason}")
            try:
                sent = self.sock.send(data)
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise GuestStuck(f"the guest took no input for {timeout:.0f} s while "
                                     f"{what}", hung=True) from None
                continue
            except OSError as e:
                raise GuestStuck(f"the agent connection failed while {what}: {e}") from None
            data = data[sent:]
            deadline = time.monotonic() + timeout
        return nonce

    def run(self, script: str, timeout: float) -> CommandResult:
        return self._exchange(b"R", self._run_payload(script, timeout), script,
                              max(1, math.ceil(timeout)) + _ANSWER_GRACE,
                              f"running {script[:200]!r}")

    def start(self, script: str, timeout: float) -> None:
        """Send a command without waiting for its answer (the last one: `reboot -f`)."""
        self.send(b"R", self._run_payload(script, timeout))

    @staticmethod
    def _run_payload(script: str, timeout: float) -> bytes:
        encoded = script.encode()
        if len(encoded) > MAX_SCRIPT:
            raise RustkmError(f"the command is {len(encoded)} bytes; the guest's `sh -c` takes "
                              f"at most {MAX_SCRIPT}",
                              hint="copy a long script in with copy_to, then run it")
        if b"\0" in encoded:
            raise RustkmError("the command contains a NUL byte, which `sh -c` cannot take",
                              hint="write binary data with copy_to")
        return struct.pack(">I", max(1, math.ceil(timeout))) + encoded

    def put(self, guest_path: str, data: bytes, offset: int, mode: int,
            timeout: float) -> CommandResult:
        path = guest_path.encode()
        payload = _PUT.pack(offset, mode, len(path)) + path + data
        return self._exchange(b"P", payload, f"copy to {guest_path}", timeout,
                              f"writing {guest_path}")

    def get(self, guest_path: str, timeout: float,
            sink: BinaryIO | None = None) -> CommandResult:
        """The guest file's bytes: in the result's stdout, or written to `sink` as they come
        (the result's stdout is then empty)."""
        return self._exchange(b"G", guest_path.encode(), f"copy from {guest_path}", timeout,
                              f"reading {guest_path}", sink)

    def seed(self, timeout: float = 10.0) -> None:
        """Make a guest restored from a snapshot its own: host entropy credited to its RNG and
        the CRNG reseeded (so two restored guests draw different numbers), its clock set to
        the host's."""
        payload = struct.pack(">Q", time.time_ns()) + os.urandom(64)
        result = self._exchange(b"S", payload, "reseed", timeout, "reseeding the guest")
        if result.status != 0:
            raise AgentError(f"the guest could not be reseeded: {result.err}")

    def _exchange(self, kind: bytes, payload: bytes, command: str, answer_within: float,
                  what: str, sink: BinaryIO | None = None) -> CommandResult:
        nonce = self.send(kind, payload, what)
        start = time.monotonic()
        self._last_data = start
        command_end = start + answer_within

        def deadline() -> float:
            return max(command_end, self._last_data + _TRANSFER_GRACE)

        try:
            return self._reply(nonce, command, what, deadline, start, sink)
        except BaseException as e:
            if not isinstance(e, GuestStuck):
                self._abandoned.add(nonce)  # its reply may still be coming
            raise

    def _reply(self, nonce: int, command: str, what: str, deadline: Callable[[], float],
               start: float, sink: BinaryIO | None) -> CommandResult:
        out: list[bytes] = []
        err: list[bytes] = []
        out_bytes = 0
        sink_error: OSError | None = None  # the rest is still read: the channel stays in step
        while True:
            reply = self._read_frame(deadline, what)
            if reply.kind == b"Y":
                raise GuestStuck(f"the guest agent died and restarted while {what}",
                                 hint="a command killed the agent, or the guest ran out of "
                                      "memory; see the console")
            if reply.nonce in self._abandoned:
                if reply.kind == b"X":
                    self._abandoned.discard(reply.nonce)
                continue  # the rest of a reply nobody waits for any more
            if reply.nonce != nonce:
                raise GuestStuck(f"the agent answered another request ({reply.kind!r}) "
                                 f"while {what}")
            if reply.kind == b"O":
                out_bytes += len(reply.payload)
                if sink is None:
                    out.append(reply.payload)
                elif sink_error is None:
                    try:
                        sink.write(reply.payload)
                    except OSError as e:
                        sink_error = e
            elif reply.kind == b"E":
                err.append(reply.payload)
            elif reply.kind == b"F":
                raise AgentError(f"the guest agent failed while {what}: "
                                 f"{reply.payload.decode(errors='replace')}")
            elif reply.kind == b"X" and len(reply.payload) >= _DONE.size:
                if sink_error is not None:
                    raise RustkmError(f"what arrived while {what} could not be written on the "
                                      f"host: {sink_error.strerror or sink_error}")
                return self._result(reply.payload, command, b"".join(out), out_bytes, err,
                                    start, what)
            else:
                raise GuestStuck(f"the agent sent a malformed {reply.kind!r} frame while {what}")

    def _result(self, done: bytes, command: str, stdout: bytes, out_arrived: int,
                err: list[bytes], start: float, what: str) -> CommandResult:
        status, flags, out_bytes, err_bytes = _DONE.unpack_from(done)
        stderr = b"".join(err)
        if (out_arrived, len(stderr)) != (out_bytes, err_bytes):
            raise GuestStuck(f"output was lost while {what}: the agent sent {out_bytes} + "
                             f"{err_bytes} bytes, {out_arrived} + {len(stderr)} arrived")
        if flags & FLAG_STUCK:
            note = done[_DONE.size:].decode(errors="replace")
            raise GuestStuck(f"{command!r} outlived its timeout and could not be killed "
                             f"({note or 'a task stuck in the kernel'})", hung=True)
        return CommandResult(command, status, stdout, stderr, time.monotonic() - start,
                             bool(flags & FLAG_TIMEOUT))
