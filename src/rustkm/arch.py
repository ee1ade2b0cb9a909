"""Target architectures: what differs between an x86_64 and an arm64 guest, in one table.

A lane's architecture is the host's unless asked otherwise: `--arch arm64` on a verb,
`--rustkm-arch arm64` in pytest, RUSTKM_ARCH=arm64, `arch = "arm64"` in a [lanes.NAME] table of
rustkm.toml, or a lane spelled NAME@ARCH (debian:latest@arm64). Another architecture's guest
always runs under TCG.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass

from rustkm.errors import RustkmError


@dataclass(frozen=True)
class Arch:
    name: str  # rustkm's name: x86_64, arm64
    debian: str  # Debian's architecture: amd64, arm64
    triplet: str  # GNU triplet of the cross tools: x86_64-linux-gnu, aarch64-linux-gnu
    kernel: str  # kbuild's ARCH: x86, arm64
    qemu: str  # the QEMU system emulator
    qemu_package: str  # the Debian package that has it
    console: str  # the guest's serial console device
    elf_machine: int  # e_machine of its ELF files (EM_X86_64, EM_AARCH64)

    @property
    def is_host(self) -> bool:
        return self.name == host_arch().name


X86_64 = Arch("x86_64", "amd64", "x86_64-linux-gnu", "x86", "qemu-system-x86_64",
              "qemu-system-x86", "ttyS0", 62)
ARM64 = Arch("arm64", "arm64", "aarch64-linux-gnu", "arm64", "qemu-system-aarch64",
             "qemu-system-arm", "ttyAMA0", 183)
ARCHES = {a.name: a for a in (X86_64, ARM64)}
_ALIASES = {"amd64": "x86_64", "x86": "x86_64", "x86-64": "x86_64", "aarch64": "arm64"}


def get_arch(name: str, origin: str = "") -> Arch:
    """The architecture `name` names (aliases such as aarch64 and amd64 accepted)."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in ARCHES:
        where = f" (from {origin})" if origin else ""
        raise RustkmError(f"unknown architecture {name!r}{where}",
                          hint=f"rustkm targets {', '.join(ARCHES)} (aliases: "
                               f"{', '.join(sorted(_ALIASES))})")
    return ARCHES[key]


def host_arch() -> Arch:
    return get_arch(platform.machine())


def arch_from_environment() -> str:
    """RUSTKM_ARCH, checked; "" when unset."""
    value = os.environ.get("RUSTKM_ARCH", "").strip()
    return get_arch(value, "RUSTKM_ARCH").name if value else ""


def arch_of_machine(elf_machine: int) -> Arch | None:
    """The architecture of an ELF file's e_machine, None for one rustkm does not target."""
    return next((a for a in ARCHES.values() if a.elf_machine == elf_machine), None)
