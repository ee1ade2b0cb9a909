"""What a .ko says about itself (its ELF header, .modinfo and undefined symbols, read with the
bounds-checked rustkm.elf), and what a kernel build offers modules: its version magic, its
exports (Module.symvers), the symbols of its vmlinux (read with pyelftools)."""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from rustkm.elf import ET_REL, MACHINES, SHN_UNDEF, SHT_SYMTAB, STB_WEAK, ElfFile
from rustkm.errors import RustkmError
from rustkm.kernel.config import parse_config

# Undefined symbols the x86-64 loader ignores (kernel/module/main.c, ignore_undef_symbol).
_IGNORED_UNDEFINED = frozenset({"_GLOBAL_OFFSET_TABLE_"})
# include/linux/license.h: the licenses that may use EXPORT_SYMBOL_GPL symbols.
GPL_COMPATIBLE = frozenset({"GPL", "GPL v2", "GPL and additional rights", "Dual BSD/GPL",
                            "Dual MIT/GPL", "Dual MPL/GPL"})
_UTS_RELEASE = re.compile(r'#define\s+UTS_RELEASE\s+"([^"]*)"')
_RANDSTRUCT_SEED = re.compile(r'#define\s+RANDSTRUCT_HASHED_SEED\s+"([^"]*)"')


class Parameter(NamedTuple):
    type: str  # parmtype: a C type name (int, charp) or, for Rust modules, a Rust one (i64)
    description: str  # parm


@dataclass(frozen=True)
class ModuleInfo:
    path: Path
    fields: dict[str, tuple[str, ...]]  # .modinfo keys, each with every value it has
    undefined: tuple[str, ...]  # symbols the kernel (or other modules) must provide
    weak: tuple[str, ...] = ()  # weak undefined symbols: the module loads without them
    modversions: bool = False  # has a __versions section (symbol CRCs)
    # What its ELF header says it is for: the loader checks these first.
    machine: int = 62  # e_machine: EM_X86_64
    bits: int = 64  # ELFCLASS64
    little_endian: bool = True
    elf_type: int = ET_REL  # e_type: a module is a relocatable object

    @property
    def architecture(self) -> str:
        return MACHINES.get(self.machine, f"ELF machine {self.machine}")

    def get(self, key: str) -> str:
        return self.fields.get(key, ("",))[0]

    @property
    def name(self) -> str:
        return self.get("name") or self.path.stem

    @property
    def license(self) -> str:
        return self.get("license")

    @property
    def vermagic(self) -> str:
        return self.get("vermagic")

    @property
    def authors(self) -> tuple[str, ...]:
        return self.fields.get("author", ())

    @property
    def description(self) -> str:
        return self.get("description")

    @property
    def imported_namespaces(self) -> tuple[str, ...]:
        return self.fields.get("import_ns", ())

    @property
    def depends(self) -> tuple[str, ...]:
        return tuple(d for d in self.get("depends").split(",") if d)

    @property
    def parameters(self) -> dict[str, Parameter]:
        found: dict[str, list[str]] = {}
        for kind, index in (("parmtype", 0), ("parm", 1)):
            for entry in self.fields.get(kind, ()):
                name, _, text = entry.partition(":")
                found.setdefault(name, ["", ""])[index] = text
        return {name: Parameter(kind, text) for name, (kind, text) in found.items()}


def read_module(path: Path) -> ModuleInfo:
    """The .modinfo fields, undefined symbols and ELF header of a .ko; a RustkmError for
    anything else (not an ELF file, truncated, damaged, not a finished module)."""
    path = Path(path)
    elf = ElfFile.read(path)
    modinfo = elf.section(".modinfo")
    if modinfo is None:
        raise RustkmError(f"{path} is an ELF file but not a kernel module (no .modinfo)")
    if elf.section(".gnu.linkonce.this_module") is None:
        raise RustkmError(f"{path} is a module's object file, not a finished module",
                          hint="modpost turns NAME.o into NAME.ko: pass the .ko")
    fields: dict[str, list[str]] = {}
    for entry in elf.section_data(modinfo).split(b"\0"):
        key, sep, value = entry.decode(errors="replace").partition("=")
        if sep:
            fields.setdefault(key, []).append(value)
    strong, weak = _undefined_symbols(elf)
    return ModuleInfo(path, {k: tuple(v) for k, v in fields.items()}, strong, weak,
                      modversions=elf.section("__versions") is not None, machine=elf.machine,
                      bits=elf.bits, little_endian=elf.little_endian, elf_type=elf.type)


def _undefined_symbols(elf: ElfFile) -> tuple[tuple[str, ...], tuple[str, ...]]:
    symtab = elf.section(".symtab")
    if symtab is None or symtab.type != SHT_SYMTAB:
        return (), ()
    strong: set[str] = set()
    weak: set[str] = set()
    for sym in elf.symbols(symtab):
        if sym.name and sym.shndx == SHN_UNDEF and sym.name not in _IGNORED_UNDEFINED:
            (weak if sym.bind == STB_WEAK else strong).add(sym.name)
    return tuple(sorted(strong)), tuple(sorted(weak))


@dataclass(frozen=True)
class Export:
    symbol: str
    owner: str  # vmlinux, or the path of the in-tree module that exports it
    kind: str  # EXPORT_SYMBOL or EXPORT_SYMBOL_GPL
    namespace: str = ""  # a module using it must import this namespace

    @property
    def gpl_only(self) -> bool:
        return self.kind.endswith("_GPL")


def read_symvers(path: Path) -> dict[str, Export]:
    """Module.symvers: CRC, symbol, owner, export kind and, for some, a namespace."""
    exports = {}
    for line in path.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) >= 4:
            namespace = parts[4] if len(parts) > 4 else ""
            exports[parts[1]] = Export(parts[1], parts[2], parts[3], namespace)
    return exports


def kernel_exports(build_dir: Path) -> dict[str, Export]:
    path = build_dir / "Module.symvers"
    if not path.is_file():
        raise RustkmError(f"{build_dir} has no Module.symvers, so its exports are unknown",
                          hint="pass a finished kernel build folder (or its modules_prepare'd "
                               "headers with the distribution's Module.symvers)")
    return read_symvers(path)


def kernel_vermagic(config_text: str, release: str, randstruct_seed: str = "") -> str:
    """The version magic a kernel accepts, as include/linux/vermagic.h composes it (x86_64)."""
    config = parse_config(config_text)
    words = [release]
    if config.get("SMP") == "y":
        words.append("SMP")
    if config.get("PREEMPT_RT") == "y":
        words.append("preempt_rt")
    elif config.get("PREEMPT_BUILD") == "y":
        words.append("preempt")
    if config.get("MODULE_UNLOAD") == "y":
        words.append("mod_unload")
    if config.get("MODVERSIONS") == "y":
        words.append("modversions")
    if config.get("RANDSTRUCT") == "y" and randstruct_seed:
        words.append(f"RANDSTRUCT_{randstruct_seed}")
    return " ".join(words) + " "


def kernel_release(build_dir: Path) -> str:
    """The release (uname -r) a build folder was made for."""
    header = build_dir / "include/generated/utsrelease.h"
    if header.is_file() and (m := _UTS_RELEASE.search(header.read_text())):
        return m.group(1)
    recorded = build_dir / "include/config/kernel.release"
    if recorded.is_file():
        return recorded.read_text().strip()
    raise RustkmError(f"{build_dir} does not look like a configured kernel build folder "
                      "(no include/generated/utsrelease.h)",
                      hint="pass the folder `make` built the kernel in (O=), or its headers")


def build_vermagic(build_dir: Path) -> str:
    """The version magic of the kernel built in `build_dir`, from its .config and headers."""
    config = build_dir / ".config"
    if not config.is_file():
        raise RustkmError(f"{build_dir} has no .config")
    seed_header = build_dir / "include/generated/randstruct_hash.h"
    seed = ""
    if seed_header.is_file() and (m := _RANDSTRUCT_SEED.search(seed_header.read_text())):
        seed = m.group(1)
    return kernel_vermagic(config.read_text(), kernel_release(build_dir), seed)


@lru_cache(maxsize=4)
def vmlinux_symbols(build_dir: Path) -> frozenset[str]:
    """Every symbol of the build's vmlinux, exported or not; empty when there is no vmlinux
    (a distribution's headers)."""
    path = build_dir / "vmlinux"
    if not path.is_file():
        return frozenset()
    with path.open("rb") as f:
        elf = ELFFile(f)
        symtab = elf.get_section_by_name(".symtab")
        if not isinstance(symtab, SymbolTableSection):
            return frozenset()
        if elf.elfclass != 64 or not elf.little_endian:
            return frozenset(s.name for s in symtab.iter_symbols() if s.name)
        # pyelftools builds an object per symbol (seconds for vmlinux); unpacking the raw
        # Elf64_Sym array and slicing the string table is a hundred times faster.
        strings = elf.get_section(symtab["sh_link"]).data()
        names = set()
        for st_name, *_ in struct.iter_unpack("<IBBHQQ", symtab.data()):
            if st_name:
                names.add(strings[st_name:strings.index(b"\0", st_name)].decode(errors="replace"))
    return frozenset(names)
