"""A small reader of ELF relocatable files (kernel modules) that checks every offset, size and
index against the file before using it, as the kernel's loader does (kernel/module/main.c,
elf_validity_cache_*): any bytes at all give an `ElfFile` or a RustkmError saying what is
wrong, in the loader's terms, never another exception and never a read past the file."""

from __future__ import annotations

import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from rustkm.errors import RustkmError

MAGIC = b"\x7fELF"
ET_REL = 1
TYPES = {0: "ET_NONE (no file type)", 1: "ET_REL (a relocatable object)",
         2: "ET_EXEC (an executable)", 3: "ET_DYN (a shared object or PIE executable)",
         4: "ET_CORE (a core dump)"}
# e_machine -> the architecture's name, as `uname -m` says it.
MACHINES = {3: "i386", 8: "mips", 20: "ppc", 21: "ppc64", 22: "s390x", 40: "arm",
            62: "x86_64", 183: "aarch64", 243: "riscv", 258: "loongarch64"}
SHT_NULL, SHT_SYMTAB, SHT_STRTAB, SHT_NOBITS = 0, 2, 3, 8
SHN_UNDEF = 0
STB_WEAK = 2


@dataclass(frozen=True)
class Layout:
    """Where the fields are in one ELF class (struct formats without the byte order)."""

    bits: int
    header: str  # Elf_Ehdr after e_ident
    section: str  # Elf_Shdr
    symbol: str  # Elf_Sym
    symbol_fields: tuple[int, int, int]  # indexes of st_name, st_info, st_shndx

    @property
    def header_size(self) -> int:
        return 16 + struct.calcsize("<" + self.header)

    @property
    def section_size(self) -> int:
        return struct.calcsize("<" + self.section)

    @property
    def symbol_size(self) -> int:
        return struct.calcsize("<" + self.symbol)


LAYOUTS = {
    1: Layout(32, "HHIIIIIHHHHHH", "IIIIIIIIII", "IIIBBH", (0, 3, 5)),
    2: Layout(64, "HHIQQQIHHHHHH", "IIQQQQIIQQ", "IBBHQQ", (0, 1, 3)),
}


@dataclass(frozen=True)
class Section:
    index: int
    name: str
    type: int
    offset: int
    size: int
    link: int
    entsize: int

    @property
    def has_data(self) -> bool:
        return self.type not in (SHT_NULL, SHT_NOBITS)


@dataclass(frozen=True)
class Symbol:
    name: str
    bind: int  # STB_*
    shndx: int  # the section it is defined in; SHN_UNDEF if the kernel must provide it


class ElfFile:
    """The header and sections of one ELF file, read whole into memory."""

    def __init__(self, path: Path, data: bytes) -> None:
        self.path = path
        self.data = data
        if len(data) < 4 or data[:4] != MAGIC:
            if MAGIC.startswith(data[:4]) and data:
                self._fail(f"is truncated: {len(data)} bytes, not even the ELF magic")
            start = f"starts with {data[:16]!r}" if data else "is empty"
            raise RustkmError(f"{path} is not an ELF file (a .ko is); it {start}")
        if len(data) < 6 or data[4] not in LAYOUTS or data[5] not in (1, 2):
            if len(data) < 6:
                self._fail(f"is truncated: {len(data)} bytes, inside the ELF header")
            self._fail(f"has an invalid ELF identification: class byte {data[4]} (1 is 32-bit, "
                       f"2 is 64-bit), data byte {data[5]} (1 little-endian, 2 big-endian)")
        self.layout = LAYOUTS[data[4]]
        self.little_endian = data[5] == 1
        self._order = "<" if self.little_endian else ">"
        if len(data) < self.layout.header_size:
            self._fail(f"is truncated: {len(data)} bytes, less than its "
                       f"{self.layout.header_size}-byte ELF header")
        header = struct.unpack_from(self._order + self.layout.header, data, 16)
        self.type, self.machine = header[0], header[1]
        shoff, shentsize, shnum, shstrndx = header[5], header[10], header[11], header[12]
        self.sections = self._section_table(shoff, shentsize, shnum, shstrndx)

    @classmethod
    def read(cls, path: Path) -> ElfFile:
        path = Path(path)
        try:
            mode = path.stat().st_mode
            if stat.S_ISDIR(mode):
                raise RustkmError(f"{path} is a folder, not a .ko",
                                  hint=f"build it first: rustkm build {path}")
            if not stat.S_ISREG(mode):
                raise RustkmError(f"{path} is not a regular file (a .ko is)")
            data = path.read_bytes()
        except FileNotFoundError:
            raise RustkmError(f"{path} does not exist") from None
        except OSError as e:
            raise RustkmError(f"{path} cannot be read: {e.strerror}") from None
        return cls(path, data)

    @property
    def bits(self) -> int:
        return self.layout.bits

    @property
    def machine_name(self) -> str:
        return MACHINES.get(self.machine, f"ELF machine {self.machine}")

    def _fail(self, what: str) -> NoReturn:
        raise RustkmError(f"{self.path} {what}", hint="a damaged or cut-short file: build or "
                                                     "copy the module again")

    def _section_table(self, shoff: int, shentsize: int, shnum: int,
                       shstrndx: int) -> list[Section]:
        size = self.layout.section_size
        if shnum == 0 or shoff == 0:
            self._fail("has no section headers: a kernel module is made of sections "
                       "(.modinfo, .gnu.linkonce.this_module, ...)")
        if shentsize != size:
            self._fail(f"is damaged: its ELF header gives section headers of {shentsize} bytes, "
                       f"not the {size} of ELFCLASS{self.bits} (dmesg: 'Invalid ELF section "
                       "header size')")
        end = shoff + shnum * size
        if end > len(self.data):
            self._fail(f"is truncated: its section headers ({shnum} of {size} bytes at offset "
                       f"{shoff}) end at byte {end}, past the end of the file "
                       f"({len(self.data)} bytes)")
        if not 0 < shstrndx < shnum:
            self._fail(f"is damaged: its section name table is section {shstrndx}, not one "
                       f"of its {shnum} sections")
        fields = [struct.unpack_from(self._order + self.layout.section, self.data,
                                     shoff + i * size) for i in range(shnum)]
        names_header = fields[shstrndx]
        names = self._bytes(f"section {shstrndx} (the section name table)",
                            names_header[4], names_header[5])
        if names_header[1] != SHT_STRTAB or not names or names[-1] != 0:
            self._fail("is damaged: its section name table is not a NUL-terminated string "
                       "table (dmesg: 'Invalid ELF section name table')")
        sections = []
        for index, (name, type_, _, _, offset, size_, link, _, _, entsize) in enumerate(fields):
            if type_ != SHT_NULL and name >= len(names):
                self._fail(f"is damaged: section {index}'s name is at byte {name} of a "
                           f"{len(names)}-byte section name table")
            label = _string(names, name) if type_ != SHT_NULL else ""
            section = Section(index, label, type_, offset, size_, link, entsize)
            if section.has_data:
                self._bytes(f"section {label or index}", offset, size_)
            sections.append(section)
        return sections

    def _bytes(self, what: str, offset: int, size: int) -> bytes:
        if offset + size > len(self.data):
            self._fail(f"is truncated or damaged: {what} (offset {offset}, {size} bytes) "
                       f"points past the end of the file ({len(self.data)} bytes)")
        return self.data[offset:offset + size]

    def section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)

    def section_data(self, section: Section) -> bytes:
        return self.data[section.offset:section.offset + section.size] if section.has_data \
            else b""

    def symbols(self, section: Section) -> list[Symbol]:
        """The entries of a symbol table section, with their names from its string table."""
        entry = self.layout.symbol_size
        if section.entsize != entry or section.size % entry:
            self._fail(f"is damaged: {section.name} has {section.size} bytes in entries of "
                       f"{section.entsize}, not a whole number of {entry}-byte symbols")
        if not 0 < section.link < len(self.sections) \
                or self.sections[section.link].type != SHT_STRTAB:
            self._fail(f"is damaged: the string table of {section.name} is section "
                       f"{section.link}, which is not a string table (dmesg: 'Invalid ELF "
                       "symbol string table')")
        strings = self.section_data(self.sections[section.link])
        name_at, info_at, shndx_at = self.layout.symbol_fields
        found = []
        for number, fields in enumerate(struct.iter_unpack(self._order + self.layout.symbol,
                                                           self.section_data(section))):
            name = fields[name_at]
            if name and name >= len(strings):
                self._fail(f"is damaged: symbol {number}'s name is at byte {name} of a "
                           f"{len(strings)}-byte string table")
            found.append(Symbol(_string(strings, name), fields[info_at] >> 4,
                                fields[shndx_at]))
        return found


def _string(table: bytes, offset: int) -> str:
    end = table.find(b"\0", offset)
    return table[offset:end if end >= 0 else len(table)].decode(errors="replace")
