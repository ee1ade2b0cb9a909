"""Timed, nested progress lines on stderr, in the manner of the NixOS test driver."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console

from rustkm.errors import printable

console = Console(stderr=True, highlight=False, soft_wrap=True)
_depth = 0


def say(message: str) -> None:
    console.print("  " * _depth + printable(message), markup=False)


@contextmanager
def step(message: str) -> Iterator[None]:
    """Print `message`, run the block indented, then print how long it took."""
    global _depth
    say(message)
    start = time.monotonic()
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        say(f"({time.monotonic() - start:.2f} seconds)")


@contextmanager
def quietly() -> Iterator[None]:
    """Nothing printed inside the block (a loop of many guests that would drown the output)."""
    was = console.quiet
    console.quiet = True
    try:
        yield
    finally:
        console.quiet = was
