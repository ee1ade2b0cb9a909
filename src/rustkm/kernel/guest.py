"""A ready guest kernel: the image QEMU boots and what the VM needs to know about it (its
channel, the stock kernel's own virtio modules, debug information, crash-dump support)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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


def guest_kernel(kernel: GuestKernel | KernelBuild | Path | str) -> GuestKernel:
    """The guest kernel of a kernel build (self-built or stock) or of an image file."""
    if isinstance(kernel, GuestKernel):
        return kernel
    if isinstance(kernel, KernelBuild):
        config = _config_text(kernel.config)
        missing = tuple(missing_options(config))
        if kernel.image_path:
            # A distribution's kernel: its own virtio modules go in the initramfs.
            early = _stock_virtio(kernel)
            return GuestKernel(kernel.image, kernel.release, _has_virtio(config) or bool(early),
                               early, crash_missing=missing, memory_mb=kernel.memory_mb)
        return GuestKernel(kernel.image, kernel.release, _has_virtio(config),
                           vmlinux=kernel.vmlinux if kernel.vmlinux.is_file() else None,
                           crash_missing=missing, memory_mb=kernel.memory_mb)
    if isinstance(kernel, (str, Path)):
        path = Path(kernel)
        if not path.is_file():
            raise RustkmError(f"kernel image {path} does not exist")
        return GuestKernel(path.resolve())
    raise TypeError(f"cannot boot {kernel!r}")


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
