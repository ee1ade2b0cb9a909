"""Reading real .ko files and a real kernel build: .modinfo fields, Rust module parameters,
undefined symbols, Module.symvers exports, the kernel's version magic, vmlinux's symbols."""

import shutil
import sys
from pathlib import Path

import pytest

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
from rustkm.session import KernelRequest, prepare_kernel

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def self_built():
    return prepare_kernel(KernelRequest())


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
