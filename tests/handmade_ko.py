"""Hand-made kernel modules: the ELF sections `rustkm check` reads (.modinfo,
.gnu.linkonce.this_module, .symtab, .strtab), for any class, byte order, machine and type,
written without rustkm's own reader; and a fake kernel build folder to check them against."""

from __future__ import annotations

import struct
from pathlib import Path

VERMAGIC = "7.2.12 SMP preempt mod_unload "
X86_64_CONFIG = "CONFIG_X86_64=y\nCONFIG_64BIT=y\nCONFIG_SMP=y\nCONFIG_PREEMPT_BUILD=y\n" \
                "CONFIG_MODULE_UNLOAD=y\n"
ARM64_CONFIG = X86_64_CONFIG.replace("CONFIG_X86_64=y", "CONFIG_ARM64=y")
EM_X86_64, EM_386, EM_AARCH64 = 62, 3, 183
ET_REL, ET_EXEC = 1, 2


def module_bytes(bits: int = 64, little_endian: bool = True, machine: int = EM_X86_64,
                 elf_type: int = ET_REL, vermagic: str = VERMAGIC,
                 undefined: tuple[str, ...] = ("misc_register", "_printk"),
                 weak: tuple[str, ...] = ("maybe_there",), modname: str = "handmade",
                 depends: str = "") -> bytes:
    order = "<" if little_endian else ">"
    wide = bits == 64
    modinfo = f"license=GPL\0name={modname}\0depends={depends}\0vermagic={vermagic}\0".encode()
    names = [""] + list(undefined) + list(weak) + ["init_module"]
    strtab = b"\0".join(n.encode() for n in names) + b"\0"
    offsets = [strtab.index(n.encode() + b"\0") if n else 0 for n in names]
    symbols = []
    for i, name in enumerate(names):
        bind = 0 if not name else 2 if name in weak else 1  # LOCAL, WEAK, GLOBAL
        shndx = 2 if name == "init_module" else 0
        info = bind << 4
        if wide:
            symbols.append(struct.pack(order + "IBBHQQ", offsets[i], info, 0, shndx, 0, 0))
        else:
            symbols.append(struct.pack(order + "IIIBBH", offsets[i], 0, 0, info, 0, shndx))
    symtab = b"".join(symbols)
    section_names = ["", ".modinfo", ".gnu.linkonce.this_module", ".symtab", ".strtab",
                     ".shstrtab"]
    shstrtab = b"\0".join(n.encode() for n in section_names) + b"\0"
    # (name, type, data, link, entsize): PROGBITS 1, SYMTAB 2, STRTAB 3
    sections = [("", 0, b"", 0, 0), (".modinfo", 1, modinfo, 0, 0),
                (".gnu.linkonce.this_module", 1, bytes(64), 0, 0),
                (".symtab", 2, symtab, 4, 24 if wide else 16), (".strtab", 3, strtab, 0, 0),
                (".shstrtab", 3, shstrtab, 0, 0)]
    header_size, shentsize = (64, 64) if wide else (52, 40)
    body = b""
    placed = []
    for name, _, data, _, _ in sections:
        placed.append(header_size + len(body) if data else 0)
        body += data + bytes(-len(data) % 8)
    shoff = header_size + len(body)
    table = b""
    for (name, type_, data, link, entsize), offset in zip(sections, placed):
        name_at = shstrtab.index(name.encode() + b"\0") if name else 0
        if wide:
            table += struct.pack(order + "IIQQQQIIQQ", name_at, type_, 0, 0, offset, len(data),
                                 link, 1 if type_ == 2 else 0, 8, entsize)
        else:
            table += struct.pack(order + "IIIIIIIIII", name_at, type_, 0, 0, offset, len(data),
                                 link, 1 if type_ == 2 else 0, 4, entsize)
    ident = b"\x7fELF" + bytes([2 if wide else 1, 1 if little_endian else 2, 1]) + bytes(9)
    rest = (elf_type, machine, 1, 0, 0, shoff, 0, header_size, 0, 0, shentsize, len(sections),
            len(sections) - 1)
    header = ident + struct.pack(order + ("HHIQQQIHHHHHH" if wide else "HHIIIIIHHHHHH"), *rest)
    return header + body + table


def write_module(path: Path, **kwargs: object) -> Path:
    path.write_bytes(module_bytes(**kwargs))  # type: ignore[arg-type]
    return path


def kernel_folder(path: Path, config: str = X86_64_CONFIG,
                  exports: tuple[str, ...] = ("misc_register", "_printk")) -> Path:
    """What `rustkm check --kernel DIR` reads of a build folder: .config, the release,
    Module.symvers."""
    (path / "include" / "generated").mkdir(parents=True)
    (path / ".config").write_text(config)
    (path / "include" / "generated" / "utsrelease.h").write_text(
        f'#define UTS_RELEASE "{VERMAGIC.split()[0]}"\n')
    (path / "Module.symvers").write_text(
        "".join(f"0x00000000\t{name}\tvmlinux\tEXPORT_SYMBOL\t\n" for name in exports))
    return path
