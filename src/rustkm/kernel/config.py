"""Kernel config fragments: parse, merge, and check what the final .config kept of them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from rustkm.errors import RustkmError

_SET = re.compile(r"^CONFIG_([A-Za-z0-9_]+)=(.*)$")
_UNSET = re.compile(r"^# CONFIG_([A-Za-z0-9_]+) is not set$")

# The fragments every kernel gets, in order; the debug lane adds debug.config.
BASE_FRAGMENTS = ("qemu-guest", "diagnostics", "modules", "rust", "devices")
# An arm64 kernel's, for QEMU virt (rustkm.arch): its own guest and devices fragments.
ARCH_BASE_FRAGMENTS = {"arm64": ("qemu-guest-arm64", "diagnostics", "modules", "rust",
                                 "devices-arm64")}
DEBUG_FRAGMENTS = ("debug",)


def base_fragments(arch: str) -> tuple[str, ...]:
    return ARCH_BASE_FRAGMENTS.get(arch, BASE_FRAGMENTS)


@dataclass(frozen=True)
class Fragment:
    name: str
    text: str

    @property
    def values(self) -> dict[str, str]:
        return parse_config(self.text)


@dataclass(frozen=True)
class Override:
    """A later fragment set an option an earlier one had set differently."""

    symbol: str
    old: str
    new: str
    old_fragment: str
    new_fragment: str


def parse_config(text: str) -> dict[str, str]:
    """Symbol -> value ('y', 'm', 'n', a number or a quoted string) of a .config or fragment.

    `# CONFIG_X is not set` reads as 'n'.
    """
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if m := _SET.match(line):
            values[m.group(1)] = m.group(2)
        elif m := _UNSET.match(line):
            values[m.group(1)] = "n"
    return values


def bundled_fragment(name: str) -> Fragment:
    ref = resources.files("rustkm") / "configs" / f"{name}.config"
    return Fragment(name, ref.read_text())


def load_fragment(spec: str) -> Fragment:
    """A bundled fragment by name, or a fragment file by path."""
    path = Path(spec)
    if path.suffix == ".config" or "/" in spec:
        if not path.is_file():
            raise RustkmError(f"config fragment {spec} does not exist")
        return Fragment(str(path), path.read_text())
    try:
        return bundled_fragment(spec)
    except FileNotFoundError:
        raise RustkmError(f"unknown config fragment {spec!r}",
                          hint="name a bundled fragment (qemu-guest, diagnostics, modules, rust, "
                               "debug) or a path to a .config fragment") from None


def merge(fragments: list[Fragment]) -> tuple[dict[str, str], list[Override]]:
    """Later fragments win, as in scripts/kconfig/merge_config.sh; overrides are reported."""
    merged: dict[str, str] = {}
    origin: dict[str, str] = {}
    overrides = []
    for fragment in fragments:
        for symbol, value in fragment.values.items():
            if symbol in merged and merged[symbol] != value:
                overrides.append(Override(symbol, merged[symbol], value, origin[symbol],
                                          fragment.name))
            merged[symbol] = value
            origin[symbol] = fragment.name
    return merged, overrides


def render(values: dict[str, str]) -> str:
    """A fragment text for KCONFIG_ALLCONFIG."""
    lines = []
    for symbol, value in values.items():
        lines.append(f"# CONFIG_{symbol} is not set" if value == "n" else f"CONFIG_{symbol}={value}")
    return "\n".join(lines) + "\n"


def missing(requested: dict[str, str], final: dict[str, str]) -> dict[str, tuple[str, str]]:
    """Options whose final value differs from the request: symbol -> (wanted, got)."""
    out = {}
    for symbol, wanted in requested.items():
        got = final.get(symbol, "n")
        if got != wanted:
            out[symbol] = (wanted, got)
    return out
