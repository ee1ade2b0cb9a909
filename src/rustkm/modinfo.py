"""What a .ko says about itself (read with pyelftools), and what a kernel build exports."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from rustkm.errors import RustkmError
from rustkm.kernel.config import parse_config


@dataclass(frozen=True)
class ModuleInfo:
    path: Path
    fields: dict[str, tuple[str, ...]]  # .modinfo keys, each with every value it has
    undefined: tuple[str, ...]  # symbols the kernel (or other modules) must provide

    def get(self, key: str) -> str:
        return self.fields.get(key, ("",))[0]

    @property
    def name(self) -> str:
        return self.get("name") or self.path.stem

    @property
    def depends(self) -> tuple[str, ...]:
        return tuple(d for d in self.get("depends").split(",") if d)

    @property
    def parameters(self) -> dict[str, tuple[str, str]]:
        """name -> (type, description)."""
        params: dict[str, list[str]] = {}
        for kind, index in (("parmtype", 0), ("parm", 1)):
            for entry in self.fields.get(kind, ()):
                name, _, text = entry.partition(":")
                params.setdefault(name, ["", ""])[index] = text
        return {name: (kind, text) for name, (kind, text) in params.items()}


def read_module(path: Path) -> ModuleInfo:
    try:
        with path.open("rb") as f:
            elf = ELFFile(f)
            modinfo = elf.get_section_by_name(".modinfo")
            if modinfo is None:
                raise RustkmError(f"{path} is an ELF file but not a kernel module (no .modinfo)")
            fields: dict[str, list[str]] = {}
            for entry in modinfo.data().split(b"\0"):
                key, sep, value = entry.decode(errors="replace").partition("=")
                if sep:
                    fields.setdefault(key, []).append(value)
            symtab = elf.get_section_by_name(".symtab")
            undefined = []
            if isinstance(symtab, SymbolTableSection):
                undefined = sorted({s.name for s in symtab.iter_symbols()
                                    if s.name and s["st_shndx"] == "SHN_UNDEF"})
    except FileNotFoundError:
        raise RustkmError(f"{path} does not exist") from None
    except ELFError:
        raise RustkmError(f"{path} is not an ELF file (a .ko is)") from None
    return ModuleInfo(path, {k: tuple(v) for k, v in fields.items()}, tuple(undefined))


@dataclass(frozen=True)
class Export:
    symbol: str
    owner: str  # vmlinux or a module path
    kind: str  # EXPORT_SYMBOL or EXPORT_SYMBOL_GPL


def read_symvers(path: Path) -> dict[str, Export]:
    exports = {}
    for line in path.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) >= 4:
            exports[parts[1]] = Export(parts[1], parts[2], parts[3])
    return exports


def kernel_vermagic(config_text: str, release: str) -> str:
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
    return " ".join(words) + " "
