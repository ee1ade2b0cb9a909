"""A distribution kernel's own virtio drivers, for the agent's fast channel.

A stock kernel that builds virtio-pci and virtio-console in (Debian's 7.2 does) gets the same
channel, module pushing and one snapshot per kernel as a self-built one. Where they are modules
(and virtio-rng, a module in Debian's), the guest's /init loads them from the initramfs before
it looks for the agent's port, when the kernel's module tree is at hand (Debian's
linux-modules package, 110 MB, is not fetched for them). Distribution packages ship no
modules.dep (depmod runs at install time): each module is decompressed on the host (the
guest's busybox insmod reads plain ELF only), its dependencies are read from its own
`.modinfo` `depends=` field, and they are ordered so that every module follows what it needs.
"""

from __future__ import annotations

import gzip
import lzma
import re
from pathlib import Path

from rustkm.cache import publish_once
from rustkm.errors import RustkmError
from rustkm.log import say
from rustkm.modinfo import read_module

# What the channel needs, by module name: the PCI transport and the console (its ports);
# and, where the kernel has it, the RNG the host reseeds through.
DRIVERS = ("virtio_pci", "virtio_console")
OPTIONAL = ("virtio_rng",)
CONFIG_OF = {"virtio_pci": "VIRTIO_PCI", "virtio_console": "VIRTIO_CONSOLE",
             "virtio_rng": "HW_RANDOM_VIRTIO"}
_SUFFIXES = (".ko", ".ko.xz", ".ko.gz")


def module_name(file_name: str) -> str:
    """A module's name as the kernel spells it, from its file name (`virtio-rng.ko.xz`)."""
    for suffix in _SUFFIXES + (".ko.zst",):
        if file_name.endswith(suffix):
            file_name = file_name[:-len(suffix)]
            break
    return file_name.replace("-", "_")


def _index(tree: Path) -> dict[str, Path]:
    return {module_name(p.name): p for p in tree.rglob("*.ko*")
            if p.is_file() and p.name.endswith(_SUFFIXES + (".ko.zst",))}


def _decompressed(path: Path) -> bytes:
    data = path.read_bytes()
    try:
        if path.name.endswith(".xz"):
            return lzma.decompress(data)
        if path.name.endswith(".gz"):
            return gzip.decompress(data)
    except (lzma.LZMAError, OSError, EOFError) as exc:
        raise RustkmError(f"{path} is damaged: {exc}",
                          hint="remove the stock kernel's cache folder and run again") from exc
    if path.name.endswith(".zst"):
        raise RustkmError(f"{path} is zstd-compressed, which rustkm cannot unpack yet")
    return data


def _built_in(config_text: str) -> set[str]:
    return {name for name, symbol in CONFIG_OF.items()
            if re.search(rf"^CONFIG_{symbol}=y$", config_text, re.MULTILINE)}


def load_order(tree: Path, config_text: str, dest: Path) -> list[str]:
    """Decompress the channel's modules and what they need from `tree` into `dest`; return
    their file names in an order insmod accepts. Empty when the kernel builds them all in."""
    index = _index(tree)
    built_in = _built_in(config_text)
    wanted = [d for d in DRIVERS if d not in built_in] + \
        [d for d in OPTIONAL if d not in built_in and d in index]
    dest.mkdir(parents=True, exist_ok=True)
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str, needed_by: str) -> None:
        if name in order:
            return
        if name in visiting:
            raise RustkmError(f"the modules under {tree} depend on each other in a loop "
                              f"({name}, needed by {needed_by})")
        source = index.get(name)
        if source is None:
            raise RustkmError(f"the stock kernel has no module {name} (needed by {needed_by}) "
                              f"under {tree}")
        visiting.add(name)
        target = dest / f"{name}.ko"
        target.write_bytes(_decompressed(source))
        for dep in read_module(target).depends:
            visit(dep.replace("-", "_"), name)
        visiting.discard(name)
        order.append(name)

    for driver in wanted:
        visit(driver, "the agent's virtio channel")
    return [f"{name}.ko" for name in order]


def stock_virtio_modules(modules_dir: Path, config: Path, cache_dir: Path) -> tuple[Path, ...]:
    """The channel's modules of a stock kernel whose modules live in `modules_dir`
    (usr/lib/modules/RELEASE of its unpacked package), ready for the initramfs, in load order;
    () when the kernel lacks one of them (the agent then stays on the serial port)."""
    tree = modules_dir / "kernel"
    if not tree.is_dir():
        return ()
    config_text = config.read_text() if config.is_file() else ""

    def build(private: Path) -> None:
        names = load_order(tree, config_text, private)
        (private / "order").write_text("".join(f"{n}\n" for n in names))

    try:
        folder = publish_once(cache_dir / "virtio-modules", "the stock kernel's virtio modules",
                              build, ready=lambda p: (p / "order").is_file())
    except RustkmError as exc:
        say(f"the agent stays on the serial port: {exc.message}")
        return ()
    return tuple(folder / name for name in (folder / "order").read_text().split())
