"""The one exception type users see: what happened, and what to do about it."""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, and C1 controls: what a terminal would act on.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` with every terminal control character shown as an escape (\\x1b), so that
    what a guest wrote (its kernel log, a command's output) can clear no screen, set no
    title and hide no line of ours."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class RustkmError(Exception):
    """A failure the user can act on. `hint` says what to do next."""

    def __init__(self, message: str, hint: str | None = None, details: str | None = None) -> None:
        message = printable(message)
        super().__init__(message)
        self.message = message
        self.hint = hint and printable(hint)
        self._details = details and printable(details)

    @property
    def details(self) -> str | None:
        return self._details

    @details.setter
    def details(self, text: str | None) -> None:
        self._details = text and printable(text)

    def __str__(self) -> str:
        parts = [self.message]
        if self.details:
            parts.append(self.details.rstrip())
        if self.hint:
            parts.append(f"hint: {self.hint}")
        return "\n".join(parts)
