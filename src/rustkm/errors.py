"""The one exception type users see: what happened, and what to do about it."""

from __future__ import annotations


class RustkmError(Exception):
    """A failure the user can act on. `hint` says what to do next."""

    def __init__(self, message: str, hint: str | None = None, details: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details

    def __str__(self) -> str:
        parts = [self.message]
        if self.details:
            parts.append(self.details.rstrip())
        if self.hint:
            parts.append(f"hint: {self.hint}")
        return "\n".join(parts)
