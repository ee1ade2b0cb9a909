"""Kernel trouble on the console: oops, BUG, WARN, panic, lockups, stalls, hung tasks, KASAN,
Rust panics. Finds them in a console log and renders a report with Rust symbols demangled."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

# (kind, pattern of the first line). Order matters: the first match names the kind.
TRIGGERS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern)) for kind, pattern in (
        ("rust-panic", r"rust_kernel: panicked at"),
        ("kasan", r"BUG: KASAN: "),
        ("soft-lockup", r"(watchdog: )?BUG: soft lockup"),
        ("hard-lockup", r"Watchdog detected hard LOCKUP"),
        ("rcu-stall", r"rcu: INFO: \w+ (self-)?detected stalls?"),
        ("hung-task", r"INFO: task .+ blocked for more than \d+ seconds"),
        ("panic", r"Kernel panic - not syncing"),
        ("bug", (r"kernel BUG at |BUG: (?!KASAN)|Oops: |general protection fault|"
                 r"Unable to handle kernel|UBSAN: ")),
        ("warn", r"WARNING: (CPU: \d+|.* at )|WARNING: possible |WARNING: suspicious "),
        ("leak", r"kmemleak: \d+ new suspected memory leaks"),
    ))
_END = re.compile(r"---\[ end (trace|Kernel panic)")
_TIMESTAMP = re.compile(r"^\[\s*\d+\.\d+\]\s?")
# Rust symbols as kallsyms prints them: v0 (_R...) and legacy (_ZN...E).
_RUST_SYMBOL = re.compile(r"\b(_R[0-9A-Za-z_]+|_ZN[0-9A-Za-z_$.]+E)")
MAX_REPORT_LINES = 80
_CUT_HERE_REACH = 3  # lines a report's first trouble line may follow its "cut here" by


@dataclass(frozen=True)
class Trouble:
    kind: str
    line_number: int  # index of the first line in the console log
    lines: tuple[str, ...]

    @property
    def title(self) -> str:
        return _TIMESTAMP.sub("", self.lines[0]).strip()

    @property
    def fatal(self) -> bool:
        """The guest cannot go on after this."""
        return self.kind == "panic"

    def report(self, demangle: bool = True) -> str:
        text = "\n".join(self.lines)
        return demangle_symbols(text) if demangle else text


def strip_timestamp(line: str) -> str:
    """A console line without its printk timestamp."""
    return _TIMESTAMP.sub("", line).strip()


def classify(line: str) -> str | None:
    body = _TIMESTAMP.sub("", line)
    for kind, pattern in TRIGGERS:
        if pattern.search(body):
            return kind
    return None


# die()'s header: x86's "Oops: 0000 [#1]", arm64's "Internal error: Oops: 96000005 [#1]" and
# "Internal error: Oops - BUG: ...".
_DIE = re.compile(r"^(Internal error: )?Oops(: | - )")


def _continues(kind: str, other: str, line: str) -> bool:
    """Whether a trouble line inside a report belongs to it: a Rust panic is followed by the
    BUG it causes, and a fault's description ("BUG: kernel NULL pointer dereference" on x86,
    "Unable to handle kernel ..." or "kernel BUG at" on arm64) by die()'s Oops header, which
    comes before the registers and the call trace."""
    if kind == "rust-panic" and other == "bug":
        return True
    return kind == "bug" and other == "bug" and bool(_DIE.search(_TIMESTAMP.sub("", line)))


def find_trouble(lines: list[str], start: int = 0) -> list[Trouble]:
    """Every report that begins at or after line `start`; lines belonging to one report
    (its stack trace, registers, up to its end marker) are not reported again."""
    found: list[Trouble] = []
    i = start
    floor = start  # the first line no earlier report holds
    while i < len(lines):
        kind = classify(lines[i])
        if kind is None:
            i += 1
            continue
        first = i
        # "cut here" opens the report; a WARN's own message may come between (arm64 on 7.2:
        # "Unexpected DAIF value: ..." before "WARNING: arch/arm64/...").
        for back in range(1, _CUT_HERE_REACH + 1):
            if i - back < floor:
                break
            if "cut here" in lines[i - back]:
                first = i - back
                break
        j = i + 1
        while j < len(lines) and j - first < MAX_REPORT_LINES:
            if _END.search(lines[j]):
                j += 1
                break
            other = classify(lines[j])
            if other is not None and not _continues(kind, other, lines[j]):
                break
            j += 1
        found.append(Trouble(kind, first, tuple(lines[first:j])))
        i = floor = j
    return found


_demangler: list[str] = []


def set_demangler(argv: list[str]) -> None:
    """The command (e.g. llvm-cxxfilt inside the toolchain) that demangles Rust symbols."""
    _demangler[:] = argv


def demangle_symbols(text: str) -> str:
    symbols = sorted(set(_RUST_SYMBOL.findall(text)))
    if not symbols or not _demangler:
        return text
    try:
        proc = subprocess.run([*_demangler, *symbols], capture_output=True, text=True, timeout=30,
                              check=False)
    except (OSError, subprocess.TimeoutExpired):
        return text
    names = proc.stdout.splitlines()
    if proc.returncode != 0 or len(names) != len(symbols):
        return text
    mapping: dict[str, str] = dict(zip(symbols, names))
    return _RUST_SYMBOL.sub(lambda m: mapping.get(m.group(1), m.group(1)), text)
