"""A stock kernel's virtio modules for the agent's channel, where they are modules: found in
its module tree, decompressed, and ordered by their own `depends=` so that insmod accepts each in turn."""

from __future__ import annotations

import lzma
from pathlib import Path

import pytest
from handmade_ko import module_bytes

from rustkm.errors import RustkmError
from rustkm.modinfo import read_module
from rustkm.stock_virtio import load_order, module_name, stock_virtio_modules

# As Debian lays them out (file names with dashes, xz-compressed), with their real dependencies.
TREE = {
    "drivers/virtio/virtio_pci.ko.xz": "virtio_pci_modern_dev,virtio_pci_legacy_dev,virtio,"
                                       "virtio_ring",
    "drivers/virtio/virtio_pci_modern_dev.ko.xz": "",
    "drivers/virtio/virtio_pci_legacy_dev.ko.xz": "",
    "drivers/virtio/virtio.ko.xz": "",
    "drivers/virtio/virtio_ring.ko.xz": "virtio",
    "drivers/char/virtio_console.ko.xz": "virtio,virtio_ring",
    "drivers/char/hw_random/virtio-rng.ko.xz": "virtio,virtio_ring",
    "drivers/net/dummy.ko.xz": "",
}


def make_tree(root: Path, tree: dict[str, str] = TREE) -> Path:
    for rel, depends in tree.items():
        path = root / "kernel" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(lzma.compress(module_bytes(modname=module_name(path.name),
                                                    depends=depends)))
    return root


def test_names_as_the_kernel_spells_them():
    assert module_name("virtio-rng.ko.xz") == "virtio_rng"
    assert module_name("virtio_pci.ko") == "virtio_pci"
    assert module_name("a-b.ko.gz") == "a_b"


def test_every_module_follows_what_it_needs(tmp_path):
    tree = make_tree(tmp_path / "modules") / "kernel"
    names = load_order(tree, "", tmp_path / "out")
    assert set(names) == {f"{n}.ko" for n in ("virtio_pci", "virtio_pci_modern_dev",
                                                "virtio_pci_legacy_dev", "virtio", "virtio_ring",
                                                "virtio_console", "virtio_rng")}
    for rel, depends in TREE.items():
        name = f"{module_name(Path(rel).name)}.ko"
        if name in names:
            for dep in filter(None, depends.split(",")):
                assert names.index(f"{dep}.ko") < names.index(name), (dep, name)
    # Decompressed, plain ELF modules that rustkm's own reader accepts.
    assert read_module(tmp_path / "out" / "virtio_rng.ko").depends == ("virtio", "virtio_ring")


def test_what_the_kernel_builds_in_is_not_loaded(tmp_path):
    tree = make_tree(tmp_path / "modules") / "kernel"
    config = "CONFIG_VIRTIO_PCI=y\nCONFIG_VIRTIO_CONSOLE=y\nCONFIG_HW_RANDOM_VIRTIO=m\n"
    names = load_order(tree, config, tmp_path / "out")
    assert names[-1] == "virtio_rng.ko" and "virtio_pci.ko" not in names


def test_a_missing_module_or_a_loop_is_refused(tmp_path):
    partial = {k: v for k, v in TREE.items() if "virtio_ring" not in k}
    tree = make_tree(tmp_path / "a", partial) / "kernel"
    with pytest.raises(RustkmError, match="no module virtio_ring"):
        load_order(tree, "", tmp_path / "out-a")
    looping = {**TREE, "drivers/virtio/virtio.ko.xz": "virtio_ring"}
    tree = make_tree(tmp_path / "b", looping) / "kernel"
    with pytest.raises(RustkmError, match="loop"):
        load_order(tree, "", tmp_path / "out-b")


def test_published_once_and_the_serial_port_when_a_module_is_missing(tmp_path):
    modules = make_tree(tmp_path / "modules")
    first = stock_virtio_modules(modules, tmp_path / "config", tmp_path / "cache")
    assert [p.name for p in first][-1] in ("virtio_console.ko", "virtio_rng.ko")
    assert all(p.is_file() for p in first)
    assert stock_virtio_modules(modules, tmp_path / "config", tmp_path / "cache") == first
    # The RNG is welcome, not needed; the console is needed.
    no_rng = make_tree(tmp_path / "no-rng", {k: v for k, v in TREE.items() if "rng" not in k})
    names = [p.name for p in stock_virtio_modules(no_rng, tmp_path / "config", tmp_path / "c2")]
    assert "virtio_console.ko" in names and "virtio_rng.ko" not in names
    broken = make_tree(tmp_path / "broken",
                       {k: v for k, v in TREE.items() if "console" not in k})
    assert stock_virtio_modules(broken, tmp_path / "config", tmp_path / "cache3") == ()
    assert not (tmp_path / "cache3" / "virtio-modules").exists()
    # No module tree at all (Debian's linux-binary package has only the image): nothing.
    assert stock_virtio_modules(tmp_path / "nothing", tmp_path / "config", tmp_path / "c4") == ()
