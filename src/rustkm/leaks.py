"""kmemleak after a module's unload: the objects it allocated and lost, on kernels that have
kmemleak (the debug lane); elsewhere there is nothing to check and nothing is claimed."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

from rustkm.errors import RustkmError

if TYPE_CHECKING:
    from rustkm.machine import Machine

KMEMLEAK = "/sys/kernel/debug/kmemleak"


class LeakFound(RustkmError):
    """kmemleak reported objects that a module allocated and never freed."""


def has_kmemleak(vm: Machine) -> bool:
    return vm.execute(f"test -w {KMEMLEAK}")[0] == 0


def unload_and_scan(vm: Machine, modules: list[str]) -> str | None:
    """Unload `modules` (last first), let kmemleak scan, and return its report of their
    objects (None: none, or no kmemleak in this kernel)."""
    if not has_kmemleak(vm):
        return None
    for module in reversed(modules):
        vm.execute(f"rmmod {shlex.quote(module)}")
    # An object is reported once it is older than 5 s and unreferenced in two scans.
    vm.succeed(f"echo scan > {KMEMLEAK}; sleep 6; echo scan > {KMEMLEAK}", timeout=300)
    report = vm.succeed(f"cat {KMEMLEAK}", timeout=120)
    ours = [block for block in report.split("unreferenced object")[1:]
            if any(f"[{m}]" in block or f" {m}" in block for m in modules)]
    if not ours:
        return None
    return "\n".join("unreferenced object" + block for block in ours)
