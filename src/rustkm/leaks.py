"""kmemleak after a module's unload: the objects it allocated and lost, on kernels that have
kmemleak (the debug lane); elsewhere there is nothing to check and nothing is claimed.

kmemleak reports a module's lost objects only once the module is gone (until then its data
still points at them), and by then the kernel can no longer name the module's frames in the
allocation backtrace: they print as bare addresses. So where each section of each module was
loaded is read before the unload, and the addresses are matched against it, with the sizes and
symbols of the .ko files, to tell the modules' objects from the rest and name their frames.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from elftools.common.exceptions import ELFError
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from rustkm.errors import RustkmError

if TYPE_CHECKING:
    from rustkm.machine import Machine

KMEMLEAK = "/sys/kernel/debug/kmemleak"
_BARE_FRAME = re.compile(r"^(\s*)0x([0-9a-f]{8,16})\s*$")


class LeakFound(RustkmError):
    """kmemleak reported objects that a module allocated and never freed."""


@dataclass(frozen=True)
class Placed:
    """One allocated section of a loaded module: where it is, how big, its symbols."""
    module: str
    section: str
    start: int
    size: int
    symbols: tuple[tuple[int, int, str], ...]  # (offset, size, name) in the section

    def name(self, address: int) -> str:
        offset = address - self.start
        for start, size, symbol in self.symbols:
            if start <= offset < start + max(size, 1):
                return f"{symbol}+{offset - start:#x} [{self.module}]"
        return f"{self.section}+{offset:#x} [{self.module}]"


def has_kmemleak(vm: Machine) -> bool:
    return vm.execute(f"test -w {KMEMLEAK}")[0] == 0


def _elf_sections(ko: Path) -> dict[str, tuple[int, tuple[tuple[int, int, str], ...]]]:
    """The .ko's allocated sections: name -> (size, its function and object symbols)."""
    try:
        with ko.open("rb") as f:
            elf = ELFFile(f)
            sections = list(elf.iter_sections())
            symbols: dict[int, list[tuple[int, int, str]]] = {}
            for table in sections:
                if not isinstance(table, SymbolTableSection):
                    continue
                for symbol in table.iter_symbols():
                    index = symbol["st_shndx"]
                    if isinstance(index, int) and symbol.name and \
                            symbol["st_info"]["type"] in ("STT_FUNC", "STT_OBJECT"):
                        symbols.setdefault(index, []).append(
                            (symbol["st_value"], symbol["st_size"], symbol.name))
            return {s.name: (s["sh_size"], tuple(sorted(symbols.get(i, []))))
                    for i, s in enumerate(sections)
                    if s["sh_flags"] & SH_FLAGS.SHF_ALLOC and s["sh_size"]}
    except (OSError, ELFError, ValueError):
        return {}  # without the file the frames stay bare; the report is still read


def placements(vm: Machine, kos: Mapping[str, Path]) -> list[Placed]:
    """Where the guest loaded each allocated section of the modules `kos` (name -> .ko);
    a module that is not loaded has none."""
    from rustkm.debug import module_sections

    placed = []
    for name, ko in kos.items():
        try:
            loaded = module_sections(vm, name)
        except RustkmError:
            continue  # not loaded: its frames stay bare
        sizes = _elf_sections(ko)
        placed += [Placed(name, section, start, *sizes[section])
                   for section, start in loaded.items() if section in sizes]
    return placed


def attribute(report: str, modules: list[str], placed: list[Placed]) -> str | None:
    """The report's objects that the modules allocated, their bare frames named; None when
    there are none. An object is theirs when a frame of its backtrace is in one of their
    sections, or names one of them (kmemleak scanned before the module went)."""
    ours = []
    for block in report.split("unreferenced object")[1:]:
        lines, mine = [], False
        for line in block.splitlines():
            if bare := _BARE_FRAME.match(line):
                address = int(bare.group(2), 16)
                where = next((p for p in placed if p.start <= address < p.start + p.size), None)
                if where is not None:
                    mine = True
                    line = f"{bare.group(1)}0x{bare.group(2)} {where.name(address)}"
            elif any(f"[{m}]" in line for m in modules):
                mine = True
            lines.append(line)
        if mine:
            ours.append("unreferenced object" + "\n".join(lines))
    return "\n".join(ours) if ours else None


def unload_and_scan(vm: Machine, modules: list[str],
                    kos: Mapping[str, Path] | None = None) -> str | None:
    """Unload `modules` (last first), let kmemleak scan, and return its report of their
    objects (None: none, or no kmemleak in this kernel). `kos` (name -> .ko) lets frames in
    modules already gone be recognised and named."""
    if not has_kmemleak(vm):
        return None
    placed = placements(vm, kos or {})
    for module in reversed(modules):
        vm.execute(f"rmmod {shlex.quote(module)}")
    return attribute(scan(vm), modules, placed)


def scan(vm: Machine) -> str:
    """kmemleak's report. An object is reported once it is older than 5 s and found
    unreferenced by a scan with its contents (checksum) unchanged since the scan before: so,
    after 6 s, two scans. A scan also prints kmemleak's count on the console, which is not a
    test's failure by itself: the report is what counts."""
    with vm.expect_trouble("leak", required=False):
        vm.succeed(f"sleep 6; echo scan > {KMEMLEAK}; echo scan > {KMEMLEAK}", timeout=300)
    return vm.succeed(f"cat {KMEMLEAK}", timeout=120)
