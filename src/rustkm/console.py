"""The guest's kernel console: read in a thread, written to a log file, searchable by line."""

from __future__ import annotations

import re
import socket
import threading
import time
from pathlib import Path


class ConsoleLog:
    def __init__(self, sock: socket.socket, path: Path) -> None:
        self.path = path
        self.lines: list[str] = []
        self.closed = False
        self._sock = sock
        self._file = path.open("wb")
        self._partial = b""
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._pump, name="rustkm-console", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        while True:
            try:
                data = self._sock.recv(1 << 16)
            except OSError:
                data = b""
            with self._cond:
                if not data:
                    if self._partial:
                        self.lines.append(self._decode(self._partial))
                        self._partial = b""
                    self.closed = True
                    self._file.close()
                    self._cond.notify_all()
                    return
                self._file.write(data)
                self._file.flush()
                *complete, self._partial = (self._partial + data).split(b"\n")
                self.lines.extend(self._decode(raw) for raw in complete)
                self._cond.notify_all()

    @staticmethod
    def _decode(raw: bytes) -> str:
        return raw.decode(errors="replace").rstrip("\r")

    @property
    def text(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def snapshot(self, start: int = 0) -> list[str]:
        with self._cond:
            return self.lines[start:]

    def wait_for(self, pattern: str, timeout: float, start: int = 0) -> re.Match[str] | None:
        """The first match of `pattern` in a line at index >= start, waiting for more lines."""
        regex = re.compile(pattern)
        end = time.monotonic() + timeout
        index = start
        with self._cond:
            while True:
                while index < len(self.lines):
                    match = regex.search(self.lines[index])
                    if match:
                        return match
                    index += 1
                remaining = end - time.monotonic()
                if remaining <= 0 or self.closed:
                    return None
                self._cond.wait(min(remaining, 0.5))

    def wait_report_end(self, start: int, timeout: float = 15.0) -> None:
        """Wait until a kernel report that began at line `start` has printed its end: the
        close of its stack trace or its end marker. A loaded host can stall the guest for
        seconds in the middle of a report, so silence alone does not mean it is over."""
        self.wait_for(r"</TASK>|---\[ end (trace|Kernel panic)", timeout, start)
        self.settle(0.3, 2.0)

    def settle(self, quiet: float = 0.3, limit: float = 3.0) -> None:
        """Wait until no new line arrived for `quiet` seconds (a report still being printed)."""
        end = time.monotonic() + limit
        with self._cond:
            count = len(self.lines)
            while time.monotonic() < end and not self.closed:
                self._cond.wait(quiet)
                if len(self.lines) == count:
                    return
                count = len(self.lines)

    def join(self, timeout: float = 2.0) -> None:
        self._thread.join(timeout)
