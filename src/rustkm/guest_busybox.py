"""Another architecture's busybox for the guest: Debian's busybox-static for it, pinned in the
lane's section of rustkm.lock, downloaded once and unpacked in the cache."""

from __future__ import annotations

from pathlib import Path

from rustkm.arch import Arch
from rustkm.errors import RustkmError
from rustkm.kernel.source import DebianArchive, extract_deb
from rustkm.lockfile import Lock, editing
from rustkm.toolchain import Toolchain, store_dir

PACKAGE = "busybox-static"


def guest_busybox(lane: str, lock: Lock, lock_path: Path | None, archive: DebianArchive,
                  apt_tc: Toolchain, arch: Arch) -> Path:
    """The busybox binary of `arch` for lane `lane`, from `archive` (that architecture's)."""
    with editing(lock_path, lock) as pins:
        section = pins.lane(lane)
        pinned = section.packages.get(PACKAGE)
        if pinned is None:
            pinned = section.packages[PACKAGE] = archive.resolve(PACKAGE)
    folder = extract_deb(apt_tc, archive.download(pinned),
                         store_dir() / "guest-busybox" / f"{arch.name}-{pinned.sha256[:12]}")
    for candidate in ("usr/bin/busybox", "bin/busybox"):
        if (folder / candidate).is_file():
            return folder / candidate
    raise RustkmError(f"{PACKAGE} {pinned.version} ({arch.debian}) holds no busybox",
                      hint=f"look under {folder}")
