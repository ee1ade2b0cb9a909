"""A ready guest kernel: the image QEMU boots and what the VM needs to know about it (its
channel, the stock kernel's own virtio modules, debug information, crash-dump support)."""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

from rustkm.arch import ARM64, Arch, host_arch
from rustkm.crash import CRASH_OPTIONS, missing_options
from rustkm.errors import RustkmError
from rustkm.kernel.build import KernelBuild
from rustkm.toolchain import store_dir


@dataclass(frozen=True)
class GuestKernel:
    """The kernel image to boot (vmlinux boots through PVH, bzImage through firmware)."""

    image: Path
    release: str = ""
    virtio: bool = False  # the kernel has virtio-pci and virtio-console (built in or below)
    # Modules the guest loads before its agent starts: a stock kernel's own virtio drivers.
    early_modules: tuple[Path, ...] = ()
    vmlinux: Path | None = None  # with the kernel's debug information, where there is one
    # What crash dumps need but has not: empty where the kernel can give them (rustkm.crash).
    crash_missing: tuple[str, ...] = tuple(f"CONFIG_{o}" for o in CRASH_OPTIONS)
    memory_mb: int = 0  # the least guest memory the kernel needs (KASAN needs more)
    arch: str = ""  # the guest's architecture (rustkm.arch); "": read from the image
    busybox: Path | None = None  # the guest's busybox where it is not the toolchain's
    toolchain: str = ""  # the lane's toolchain (another architecture's has its QEMU)

    def __post_init__(self) -> None:
        if not self.arch:
            object.__setattr__(self, "arch", image_arch(self.image).name)


def guest_kernel(kernel: GuestKernel | KernelBuild | Path | str) -> GuestKernel:
    """The guest kernel of a kernel build (self-built or stock) or of an image file."""
    if isinstance(kernel, GuestKernel):
        return kernel
    if isinstance(kernel, KernelBuild):
        config = _config_text(kernel.config)
        missing = tuple(missing_options(config))
        if kernel.arch != "x86_64":
            # The dump devices are found through x86's fw_cfg I/O ports.
            missing = (*missing, f"an x86_64 guest (this one is {kernel.arch})")
        if kernel.image_path:
            # A distribution's kernel: its own virtio modules go in the initramfs.
            early = _stock_virtio(kernel)
            return GuestKernel(kernel.image, kernel.release, _has_virtio(config) or bool(early),
                               early, crash_missing=missing, memory_mb=kernel.memory_mb,
                               arch=kernel.arch, toolchain=kernel.toolchain,
                               busybox=Path(kernel.busybox) if kernel.busybox else None)
        return GuestKernel(kernel.image, kernel.release, _has_virtio(config),
                           vmlinux=kernel.vmlinux if kernel.vmlinux.is_file() else None,
                           crash_missing=missing, memory_mb=kernel.memory_mb,
                           arch=kernel.arch, toolchain=kernel.toolchain,
                           busybox=Path(kernel.busybox) if kernel.busybox else None)
    if isinstance(kernel, (str, Path)):
        path = Path(kernel)
        if not path.is_file():
            raise RustkmError(f"kernel image {path} does not exist")
        return GuestKernel(path.resolve())
    raise TypeError(f"cannot boot {kernel!r}")


def image_arch(image: Path) -> Arch:
    """The architecture of a kernel image file: an arm64 Image carries the magic "ARMd" at
    offset 56 (the kernel's booting.rst), gzip-compressed or not; anything else is taken for
    the host's (QEMU says so when it is not)."""
    try:
        with image.open("rb") as f:
            head = f.read(64)
            if head[:2] == b"\x1f\x8b":
                f.seek(0)
                head = gzip.GzipFile(fileobj=f).read(64)
    except (OSError, EOFError, gzip.BadGzipFile):
        return host_arch()
    return ARM64 if head[56:60] == b"ARMd" else host_arch()


def _config_text(config: Path) -> str:
    try:
        return config.read_text(errors="replace")
    except OSError:
        return ""


def _has_virtio(config: str) -> bool:
    lines = set(config.splitlines())
    return all(f"CONFIG_{option}=y" in lines for option in ("VIRTIO_PCI", "VIRTIO_CONSOLE"))


def _stock_virtio(kernel: KernelBuild) -> tuple[Path, ...]:
    from rustkm.stock_virtio import stock_virtio_modules

    image = Path(kernel.image_path)
    modules_dir = image.parent if image.parent.name == kernel.release else \
        image.parent.parent / "usr/lib/modules" / kernel.release
    return stock_virtio_modules(modules_dir, kernel.config,
                                store_dir() / "stock" / kernel.release)
