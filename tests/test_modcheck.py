"""`rustkm check` with real .ko files: one that loads, one with a patched vermagic, one built
for another kernel (Debian's stock 7.2, different rustc: the crate hashes differ)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rustkm.errors import RustkmError
from rustkm.modcheck import check, explain_vermagic
from rustkm.modinfo import kernel_vermagic, read_module
from rustkm.module import build_module
from rustkm.oops import set_demangler
from rustkm.session import KernelRequest, prepare_kernel

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def self_built():
    tc, kernel = prepare_kernel(KernelRequest())
    set_demangler(tc.wrap(["llvm-cxxfilt"]))
    return tc, kernel


@pytest.fixture(scope="module")
def printerfact_ko(self_built):
    tc, kernel = self_built
    return build_module(tc, kernel, ROOT / "kmods/printerfact").ko("printerfact")


def test_modinfo_fields_and_parameters(self_built):
    tc, kernel = self_built
    info = read_module(build_module(tc, kernel, ROOT / "tests/kmods/trouble").ko("trouble"))
    assert (info.name, info.get("license"), info.get("author")) == ("trouble", "GPL", "rustkm")
    assert info.parameters["action"][0] == "i64"  # Rust module parameters name Rust types
    assert "WARN" in info.parameters["action"][1]
    assert info.depends == ()


def test_a_module_built_for_the_kernel_would_load(self_built, printerfact_ko):
    _, kernel = self_built
    report = check(printerfact_ko, kernel)
    assert report.problems == []
    assert report.module.get("vermagic") == kernel_vermagic(kernel.config.read_text(),
                                                            kernel.release)


def test_a_patched_vermagic_is_explained(self_built, printerfact_ko, tmp_path):
    _, kernel = self_built
    patched = tmp_path / "printerfact.ko"
    data = printerfact_ko.read_bytes()
    old = f"vermagic={kernel.release} ".encode()
    new = f"vermagic={kernel.release[:-1]}9 ".encode()
    assert data.count(old) == 1
    patched.write_bytes(data.replace(old, new))
    report = check(patched, kernel)
    assert len(report.problems) == 1
    assert "Invalid module format" in report.problems[0]
    assert f"built for kernel release {kernel.release[:-1]}9" in report.problems[0]
    result = subprocess.run([sys.executable, "-m", "rustkm.cli", "check", str(patched)],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 1 and "would NOT load" in result.stdout


def test_a_module_for_another_kernel_names_the_crate_hash_difference(printerfact_ko):
    _, stock = prepare_kernel(KernelRequest(stock="debian:latest"))
    report = check(printerfact_ko, stock)
    text = "\n".join(report.problems + report.notes)
    assert "Invalid module format" in text and "Unknown symbol" in text
    assert "kernel::print::call_printk" in text  # demangled
    assert "only difference from a kernel export is the crate hash" in text


def test_vermagic_words_are_explained():
    reasons = explain_vermagic("7.2.12 SMP mod_unload ", "7.2.12 SMP preempt mod_unload ")
    assert "preemption model" in reasons[0]
    assert explain_vermagic("7.2.12 SMP ", "7.2.12 SMP ") == []


def test_files_that_are_not_modules_are_refused(tmp_path):
    (tmp_path / "text.ko").write_text("not elf")
    with pytest.raises(RustkmError, match="not an ELF file"):
        read_module(tmp_path / "text.ko")
    elf = tmp_path / "python"
    shutil.copy(sys.executable, elf)
    with pytest.raises(RustkmError, match="not a kernel module"):
        read_module(elf)
    with pytest.raises(RustkmError, match="does not exist"):
        read_module(tmp_path / "absent.ko")
