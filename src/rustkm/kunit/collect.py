"""The KUnit suites and cases a built .ko carries, read from its ELF sections with pyelftools.

The loader finds a module's suites in `.kunit_test_suites` (kernel/module/main.c): an array of
pointers to `struct kunit_suite`, whose `test_cases` points to a zero-terminated array of
`struct kunit_case` (include/kunit/test.h). Rust's `#[kunit_tests(NAME)]` lays them out the
same way (rust/kernel/kunit.rs, rust/macros/kunit.rs), with `#[cfg]`'d-out and macro-made cases
included. A .ko is relocatable: every pointer in those structures is zero in the file and
filled in by a relocation, so each one is followed through `.rela.*` to its symbol and addend.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.relocation import RelocationSection
from elftools.elf.sections import SymbolTableSection

from rustkm.elf import ET_REL, ElfFile
from rustkm.errors import RustkmError

SUITE_SECTIONS = (".kunit_test_suites", ".kunit_init_test_suites")
POINTER = 8
R_X86_64_64 = 1
# struct kunit_suite on 64-bit: char name[256]; then suite_init, suite_exit, init, exit,
# and test_cases.
SUITE_NAME_SIZE = 256
SUITE_TEST_CASES = SUITE_NAME_SIZE + 4 * POINTER
# struct kunit_case on 64-bit: run_case, name, generate_params, attr (an enum, padded),
# param_init, param_exit, status (an enum, padded), module_name, log.
CASE_SIZE = 9 * POINTER
CASE_RUN, CASE_NAME, CASE_GENERATE_PARAMS = 0, POINTER, 2 * POINTER


@dataclass(frozen=True)
class KunitCase:
    name: str
    number: int  # its KTAP test number in the suite (1-based)
    parameterised: bool = False


@dataclass(frozen=True)
class KunitSuite:
    name: str
    cases: tuple[KunitCase, ...]

    def case(self, number: int) -> KunitCase | None:
        return self.cases[number - 1] if 0 < number <= len(self.cases) else None


Location = tuple[int, int]  # (section index, offset in it)


class _Module:
    """A relocatable ELF file's section data and 64-bit absolute relocations."""

    def __init__(self, path: Path, elf: ELFFile) -> None:
        self.path = path
        self.elf = elf
        self.data: dict[int, bytes] = {}
        self.relocations: dict[Location, Location | None] = {}
        for section in elf.iter_sections():
            if isinstance(section, RelocationSection) and section.is_RELA():
                self._read_relocations(section)

    def _read_relocations(self, section: RelocationSection) -> None:
        target = section["sh_info"]
        symtab = self.elf.get_section(section["sh_link"])
        if not isinstance(symtab, SymbolTableSection):
            return
        for reloc in section.iter_relocations():
            where: Location | None = None
            if reloc["r_info_type"] == R_X86_64_64:
                symbol = symtab.get_symbol(reloc["r_info_sym"])
                shndx = symbol["st_shndx"]
                if isinstance(shndx, int) and shndx > 0:
                    where = (shndx, symbol["st_value"] + reloc["r_addend"])
            self.relocations[(target, reloc["r_offset"])] = where

    def bytes_of(self, index: int) -> bytes:
        if index not in self.data:
            section = self.elf.get_section(index)
            self.data[index] = b"" if section["sh_type"] == "SHT_NOBITS" else section.data()
        return self.data[index]

    def pointer(self, at: Location) -> Location | None:
        """Where the pointer stored at `at` points once the module is loaded (None for a null
        pointer or one to something outside the module)."""
        return self.relocations.get(at)

    def string(self, at: Location, limit: int = 4096) -> str:
        data = self.bytes_of(at[0])
        if not 0 <= at[1] < len(data):
            raise RustkmError(f"{self.path}: a KUnit name points past the end of section "
                              f"{self.elf.get_section(at[0]).name}")
        end = data.find(b"\0", at[1], at[1] + limit)
        return data[at[1]:end if end >= 0 else at[1] + limit].decode(errors="replace")


def read_suites(ko: Path) -> list[KunitSuite]:
    """The KUnit suites of a built module, in the order the kernel runs them, each with its
    cases in order; [] for a module without any (or built for a kernel without KUnit, where
    `#[kunit_tests]` compiles away)."""
    checked = ElfFile.read(Path(ko))  # bounds-checked: a damaged file is a clear error
    if checked.bits != 64 or not checked.little_endian or checked.type != ET_REL:
        raise RustkmError(f"{ko}: reading KUnit suites needs a 64-bit little-endian module "
                          f"(this is {checked.bits}-bit {checked.machine_name})")
    try:
        module = _Module(Path(ko), ELFFile(io.BytesIO(checked.data)))
        suites: list[KunitSuite] = []
        for name in SUITE_SECTIONS:
            section = module.elf.get_section_by_name(name)
            if section is None:
                continue
            index = module.elf.get_section_index(name)
            if index is None:
                continue
            for offset in range(0, section["sh_size"] - POINTER + 1, POINTER):
                suite = module.pointer((index, offset))
                if suite is not None:
                    suites.append(_suite(module, suite))
        return suites
    except (ELFError, KeyError, IndexError, ValueError) as e:
        raise RustkmError(f"{ko}: cannot read its KUnit suites: {e}",
                          hint="a damaged module: build it again") from None


def _suite(module: _Module, at: Location) -> KunitSuite:
    data = module.bytes_of(at[0])
    if at[1] + SUITE_TEST_CASES + POINTER > len(data):
        raise RustkmError(f"{module.path}: a KUnit suite in .kunit_test_suites points past "
                          "the end of its section")
    name = data[at[1]:at[1] + SUITE_NAME_SIZE].split(b"\0", 1)[0].decode(errors="replace")
    cases: list[KunitCase] = []
    array = module.pointer((at[0], at[1] + SUITE_TEST_CASES))
    if array is not None:
        size = len(module.bytes_of(array[0]))
        offset = array[1]
        while offset + CASE_SIZE <= size and module.pointer((array[0], offset + CASE_RUN)):
            name_at = module.pointer((array[0], offset + CASE_NAME))
            case_name = module.string(name_at) if name_at else f"case-{len(cases) + 1}"
            params = module.pointer((array[0], offset + CASE_GENERATE_PARAMS)) is not None
            cases.append(KunitCase(case_name, len(cases) + 1, params))
            offset += CASE_SIZE
    return KunitSuite(name, tuple(cases))
