"""The QEMU Machine Protocol: one small client for every QMP use (snapshots, devices, dumps)."""

from __future__ import annotations

import json
import re
import socket
import time
from pathlib import Path
from typing import Any

from rustkm.errors import RustkmError


class QmpError(RustkmError):
    """QEMU refused a QMP command (its class and description are in the message)."""


class QmpClient:
    """A connected QMP monitor. Events are kept in `events`, in the order they came."""

    def __init__(self, path: Path, timeout: float = 30.0) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._sock.connect(str(path))
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    raise RustkmError(f"QEMU did not open its monitor {path} in "
                                      f"{timeout:.0f} s") from None
                time.sleep(0.01)
        self._sock.settimeout(timeout)
        self._buffer = b""
        self.events: list[dict[str, Any]] = []
        greeting = self._read()
        if "QMP" not in greeting:
            raise RustkmError(f"not a QMP greeting: {greeting!r}")
        self.execute("qmp_capabilities")

    def _read(self) -> dict[str, Any]:
        while b"\n" not in self._buffer:
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                raise RustkmError("QEMU's monitor did not answer") from None
            except OSError as e:
                raise RustkmError(f"QEMU's monitor closed (QEMU exited?): "
                                  f"{e.strerror or e}") from None
            if not chunk:
                raise RustkmError("QEMU's monitor closed (QEMU exited?)")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        try:
            message = json.loads(line)
        except ValueError:
            raise RustkmError(f"QEMU's monitor sent what is not JSON: {line[:200]!r}") from None
        if not isinstance(message, dict):
            raise RustkmError(f"QEMU's monitor sent what is not a QMP message: {line[:200]!r}")
        return message

    def execute(self, command: str, **arguments: Any) -> Any:
        """Run one command; returns its `return` value, raises QmpError with QEMU's reason."""
        request: dict[str, Any] = {"execute": command}
        if arguments:
            request["arguments"] = arguments
        try:
            self._sock.sendall(json.dumps(request).encode() + b"\n")
        except OSError as e:  # a broken pipe or a reset: QEMU is gone
            raise RustkmError(f"QEMU's monitor closed (QEMU exited?): {command} not sent "
                              f"({e.strerror or e})") from None
        while True:
            reply = self._read()
            if "event" in reply:
                self.events.append(reply)
                continue
            if "error" in reply:
                error = reply["error"]
                raise QmpError(f"QEMU refused {command}: {error.get('desc', error)}")
            return reply.get("return")

    def wait_event(self, name: str, timeout: float) -> dict[str, Any]:
        """The first event called `name` (already received, or arriving within `timeout`)."""
        deadline = time.monotonic() + timeout
        while True:
            for i, event in enumerate(self.events):
                if event.get("event") == name:
                    return self.events.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                raise RustkmError(f"QEMU sent no {name} event in {timeout:.0f} s")
            self._sock.settimeout(left)
            try:
                self.events.append(self._read())
            finally:
                self._sock.settimeout(30.0)

    def close(self) -> None:
        self._sock.close()


_VCPU_LINE = re.compile(r"^(CPU#\d+|\s*(RIP|PC)=\S+.*)$", re.MULTILINE)


def vcpu_places(qmp: QmpClient) -> str:
    """Where each vCPU is (QEMU's `info registers -a`, its CPU and instruction-pointer lines),
    for a report about a guest that stopped making progress; "" when QEMU cannot say."""
    try:
        text = qmp.execute("human-monitor-command", **{"command-line": "info registers -a"})
    except (RustkmError, OSError):
        return ""
    if not isinstance(text, str):
        return ""
    text = text.replace("\r\n", "\n")  # HMP answers with terminal line ends
    return "\n".join(m.group(0).strip() for m in _VCPU_LINE.finditer(text))
