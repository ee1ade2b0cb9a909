"""Reading real .ko files and a real kernel build: .modinfo fields, Rust module parameters,
undefined symbols, Module.symvers exports, the kernel's version magic, vmlinux's symbols."""

import shutil
import struct
import sys
from pathlib import Path

import pytest
from handmade_ko import EM_386, module_bytes

from rustkm.errors import RustkmError
from rustkm.modinfo import (
    build_vermagic,
    kernel_exports,
    kernel_release,
    kernel_vermagic,
    read_module,
    vmlinux_symbols,
)
from rustkm.module import build_module

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def self_built(rustkm_kernel):
    return rustkm_kernel  # the project's kernel, as the VM tests use


@pytest.fixture(scope="module")
def printerfact(self_built):
    tc, kernel = self_built
    return build_module(tc, kernel, ROOT / "kmods/printerfact")


def test_a_rust_module_describes_itself(self_built, printerfact):
    _, kernel = self_built
    info = read_module(printerfact.ko("printerfact"))
    assert (info.name, info.license, info.authors) == ("printerfact", "GPL", ("rustkm",))
    assert info.description == "A misc device that returns a random printer fact"
    assert info.vermagic == build_vermagic(kernel.build_dir)
    assert info.depends == () and info.parameters == {} and not info.modversions


def test_rust_module_parameters_have_a_type_and_a_description(self_built):
    tc, kernel = self_built
    info = read_module(build_module(tc, kernel, ROOT / "tests/kmods/trouble").ko("trouble"))
    assert set(info.parameters) == {"action", "seconds"}
    assert info.parameters["action"].type == "i64"  # Rust parameters name Rust types
    assert "WARN" in info.parameters["action"].description


def test_undefined_symbols_are_what_the_module_needs_from_the_kernel(printerfact):
    info = read_module(printerfact.ko("printerfact"))
    assert {"misc_register", "misc_deregister"} <= set(info.undefined)
    assert any(s.startswith("_RNv") and "6kernel" in s for s in info.undefined)
    # Defined in the module itself, so not asked of the kernel.
    assert "__this_module" not in info.undefined and "init_module" not in info.undefined


def test_module_symvers_records_gpl_only_and_namespaced_exports(self_built):
    _, kernel = self_built
    exports = kernel_exports(kernel.build_dir)
    assert exports["misc_register"].owner == "vmlinux"
    assert [e.gpl_only for e in (exports["misc_register"], exports["generic_file_open"])] == [
        False, False]
    call_printk = next(e for s, e in exports.items() if s.endswith("5print11call_printk"))
    assert call_printk.gpl_only  # the kernel crate exports to GPL modules only
    assert any(e.namespace for e in exports.values())


def test_the_kernels_version_magic_comes_from_its_build_folder(self_built):
    _, kernel = self_built
    assert kernel_release(kernel.build_dir) == kernel.release
    assert build_vermagic(kernel.build_dir).startswith(f"{kernel.release} ")


@pytest.mark.parametrize("config, vermagic", [
    ("CONFIG_SMP=y\nCONFIG_PREEMPT_BUILD=y\nCONFIG_MODULE_UNLOAD=y\n", "7.2.12 SMP preempt mod_unload "),
    ("# CONFIG_SMP is not set\nCONFIG_MODULE_UNLOAD=y\n", "7.2.12 mod_unload "),
    ("CONFIG_SMP=y\nCONFIG_PREEMPT_RT=y\nCONFIG_PREEMPT_BUILD=y\n", "7.2.12 SMP preempt_rt "),
    ("CONFIG_SMP=y\nCONFIG_MODVERSIONS=y\n", "7.2.12 SMP modversions "),
])
def test_version_magic_follows_vermagic_h(config, vermagic):
    assert kernel_vermagic(config, "7.2.12") == vermagic


def test_vmlinux_symbols_include_functions_that_are_not_exported(self_built):
    _, kernel = self_built
    symbols = vmlinux_symbols(kernel.build_dir)
    exports = kernel_exports(kernel.build_dir)
    assert {"start_kernel", "misc_register"} <= symbols
    assert "start_kernel" not in exports
    assert vmlinux_symbols(Path("/nonexistent")) == frozenset()


def test_files_that_are_not_finished_modules_are_refused(printerfact, tmp_path):
    (tmp_path / "text.ko").write_text("not elf")
    with pytest.raises(RustkmError, match="not an ELF file"):
        read_module(tmp_path / "text.ko")
    shutil.copy(sys.executable, tmp_path / "python")
    with pytest.raises(RustkmError, match="not a kernel module"):
        read_module(tmp_path / "python")
    with pytest.raises(RustkmError, match="object file, not a finished module"):
        read_module(printerfact.output / "printerfact.o")
    with pytest.raises(RustkmError, match="does not exist"):
        read_module(tmp_path / "absent.ko")
    with pytest.raises(RustkmError, match="a folder, not a .ko"):
        read_module(tmp_path)


@pytest.mark.parametrize("bits, little_endian", [(64, True), (32, True), (64, False),
                                                 (32, False)])
def test_modules_of_either_class_and_byte_order_are_read(tmp_path, bits, little_endian):
    path = tmp_path / "m.ko"
    path.write_bytes(module_bytes(bits=bits, little_endian=little_endian, machine=EM_386))
    info = read_module(path)
    assert (info.bits, info.little_endian, info.machine, info.architecture) == (
        bits, little_endian, EM_386, "i386")
    assert (info.name, info.license, info.vermagic) == ("handmade", "GPL",
                                                        "7.2.12 SMP preempt mod_unload ")
    assert (info.undefined, info.weak) == (("_printk", "misc_register"), ("maybe_there",))


SHOFF, SHENTSIZE, SHSTRNDX = 40, 58, 62  # in a 64-bit ELF header
SH_OFFSET, SH_SIZE, SH_LINK, SH_ENTSIZE = 24, 32, 40, 56  # in a 64-bit section header
MODINFO, SYMTAB, STRTAB = 1, 3, 4  # section numbers in module_bytes()


def damaged(**changes: int) -> bytes:
    """module_bytes() with header fields (NAME=value) or section fields (NAME_SECTION=value)
    overwritten."""
    data = bytearray(module_bytes())
    shoff = struct.unpack_from("<Q", data, SHOFF)[0]
    for name, value in changes.items():
        field, _, section = name.partition("_")
        if section:
            offset = shoff + 64 * {"modinfo": MODINFO, "symtab": SYMTAB,
                                   "strtab": STRTAB}[section] + globals()[f"SH_{field.upper()}"]
            fmt = "<I" if field == "link" else "<Q"
        else:
            offset, fmt = globals()[field.upper()], "<Q" if field == "shoff" else "<H"
        struct.pack_into(fmt, data, offset, value)
    return bytes(data)


@pytest.mark.parametrize("data, message", [
    (b"", r"is not an ELF file \(a .ko is\); it is empty"),
    (b"MZ\x90\x00 a PE file", r"is not an ELF file \(a .ko is\); it starts with b'MZ"),
    (b"\x7fEL", "is truncated: 3 bytes, not even the ELF magic"),
    (module_bytes()[:40], "is truncated: 40 bytes, less than its 64-byte ELF header"),
    (module_bytes()[:52], "is truncated: 52 bytes, less than its 64-byte ELF header"),
    (module_bytes(bits=32)[:30], "is truncated: 30 bytes, less than its 52-byte ELF header"),
    (module_bytes()[:-1], (r"is truncated: its section headers \(6 of 64 bytes at offset \d+\) "
                          r"end at byte \d+, past the end of the file")),
    (module_bytes()[:8] + b"\x07" + module_bytes()[9:], None),  # EI_ABIVERSION is not read
    (module_bytes()[:4] + b"\x03" + module_bytes()[5:], "invalid ELF identification: class byte 3"),
    (damaged(size_strtab=2**64 - 1), (r"section .strtab \(offset \d+, 18446744073709551615 "
                                     r"bytes\) points past the end of the file")),
    (damaged(offset_modinfo=2**63), r"section .modinfo \(offset 9223372036854775808"),
    (damaged(shoff=2**64 - 1), "is truncated: its section headers"),
    (damaged(shoff=0), "has no section headers"),
    (damaged(shentsize=40), "section headers of 40 bytes, not the 64 of ELFCLASS64"),
    (damaged(shstrndx=9), "its section name table is section 9, not one of its 6 sections"),
    (damaged(shstrndx=SYMTAB), "section name table is not a NUL-terminated string table"),
    (damaged(entsize_symtab=0), "has 120 bytes in entries of 0, not a whole number of 24-byte"),
    (damaged(size_symtab=100), "has 100 bytes in entries of 24"),
    (damaged(link_symtab=99), "the string table of .symtab is section 99, which is not a "),
    (damaged(size_strtab=3), "symbol \\d+'s name is at byte \\d+ of a 3-byte string table"),
])
def test_damaged_and_cut_short_modules_are_refused_saying_what_is_wrong(tmp_path, data, message):
    path = tmp_path / "m.ko"
    path.write_bytes(data)
    if message is None:
        assert read_module(path).name == "handmade"
        return
    with pytest.raises(RustkmError, match=message) as error:
        read_module(path)
    assert error.value.message.startswith(f"{path} ")


def test_what_is_not_a_regular_file_is_refused_without_reading_it():
    with pytest.raises(RustkmError, match="/dev/zero is not a regular file"):
        read_module(Path("/dev/zero"))
