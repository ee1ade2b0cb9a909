"""`rustkm check` with real .ko files: printerfact as built, copies patched the way real
mistakes look (another release's vermagic, a non-GPL license, another rustc's crate hash, a
symbol vmlinux does not export), and printerfact checked against Debian's stock kernel. The
real kernel refuses every module check refuses. Hand-made modules for other architectures,
classes and ELF types, against fake build folders, for the header checks."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from handmade_ko import (
    ARM64_CONFIG,
    EM_386,
    EM_AARCH64,
    EM_X86_64,
    ET_EXEC,
    X86_64_CONFIG,
    kernel_folder,
    write_module,
)

from rustkm import boot
from rustkm.errors import RustkmError
from rustkm.kernel.lane import Lane
from rustkm.kernel.prepare import prepare_lane
from rustkm.machine import CommandFailed
from rustkm.modcheck import check, crate_hashes, explain_vermagic, namespace_allows
from rustkm.module import build_module
from rustkm.oops import set_demangler
from rustkm.project import find_project

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def self_built(rustkm_kernel):
    tc, kernel = rustkm_kernel  # the project's kernel, as the VM tests use
    set_demangler(tc.wrap(["llvm-cxxfilt"]))
    return tc, kernel


@pytest.fixture(scope="module")
def printerfact_ko(self_built):
    tc, kernel = self_built
    return build_module(tc, kernel, ROOT / "kmods/printerfact").ko("printerfact")


def patched(ko: Path, out: Path, section: str, old: bytes, new: bytes) -> Path:
    """A copy of `ko` with `old` replaced by `new` (same length) inside one ELF section."""
    assert len(old) == len(new)
    data = bytearray(ko.read_bytes())
    with ko.open("rb") as f:
        header = ELFFile(f).get_section_by_name(section).header
    start, end = header["sh_offset"], header["sh_offset"] + header["sh_size"]
    assert bytes(data[start:end]).count(old) >= 1, f"{old!r} not in {section}"
    data[start:end] = bytes(data[start:end]).replace(old, new)
    out.write_bytes(bytes(data))
    return out


def other_release_ko(ko: Path, release: str, out: Path) -> Path:
    other = release[:-1] + ("9" if release[-1] != "9" else "8")
    return patched(ko, out, ".modinfo", f"vermagic={release} ".encode(),
                   f"vermagic={other} ".encode())


def mit_license_ko(ko: Path, out: Path) -> Path:
    return patched(ko, out, ".modinfo", b"license=GPL\0", b"license=MIT\0")


def other_rustc_ko(ko: Path, out: Path) -> tuple[Path, str, str]:
    """The kernel crate's hash changed, as another rustc would have named it."""
    from rustkm.modinfo import read_module

    hashes = {h for s in read_module(ko).undefined for c, h in crate_hashes(s).items()
              if c == "kernel"}
    [ours] = hashes
    # Another base-62 number of the same length that still fits in 64 bits, as hashes do.
    theirs = ("1" if ours[0] == "0" else "0") + ours[1:]
    return patched(ko, out, ".strtab", ours.encode(), theirs.encode()), ours, theirs


def header_patched_ko(ko: Path, out: Path, field: str, value: int) -> Path:
    """A copy of `ko` with e_type or e_machine (16-bit fields of the ELF header) changed."""
    data = bytearray(ko.read_bytes())
    at = {"type": 16, "machine": 18}[field]
    data[at:at + 2] = value.to_bytes(2, "little")
    out.write_bytes(bytes(data))
    return out


def unexported_symbol_ko(ko: Path, out: Path) -> Path:
    # ret_from_fork: x86 entry code in every vmlinux, never exported; as long as misc_register.
    return patched(ko, out, ".strtab", b"\0misc_register\0", b"\0ret_from_fork\0")


def test_a_module_built_for_the_kernel_would_load(self_built, printerfact_ko):
    _, kernel = self_built
    report = check(printerfact_ko, kernel)
    assert (report.problems, report.notes) == ([], [])
    assert report.module.vermagic == report.target_vermagic
    result = subprocess.run([sys.executable, "-m", "rustkm.cli", "check", str(printerfact_ko),
                             "--kernel", str(kernel.build_dir)],
                            check=False, capture_output=True, text=True, cwd=ROOT,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "would load into kernel" in result.stdout
    assert "A misc device that returns a random printer fact" in result.stdout


def test_another_releases_vermagic_is_explained(self_built, printerfact_ko, tmp_path):
    _, kernel = self_built
    ko = other_release_ko(printerfact_ko, kernel.release, tmp_path / "printerfact.ko")
    report = check(ko, kernel)
    [problem] = report.problems
    assert "Invalid module format" in problem
    assert f"built for kernel release {kernel.release[:-1]}" in problem
    assert f"the target is {kernel.release};" in problem
    result = subprocess.run([sys.executable, "-m", "rustkm.cli", "check", str(ko)],
                            check=False, capture_output=True, text=True, cwd=ROOT,
                            timeout=300)
    assert result.returncode == 1 and "would NOT load" in result.stdout


def test_a_non_gpl_license_loses_the_gpl_only_exports(self_built, printerfact_ko, tmp_path):
    _, kernel = self_built
    report = check(mit_license_ko(printerfact_ko, tmp_path / "printerfact.ko"), kernel)
    text = "\n".join(report.problems)
    assert "kernel::print::call_printk" in text  # an EXPORT_SYMBOL_GPL, demangled
    assert "misc_register:" not in text  # a plain EXPORT_SYMBOL stays usable
    assert "license 'MIT' is not GPL-compatible" in text


def test_another_rustc_shows_as_a_crate_hash_difference(self_built, printerfact_ko, tmp_path):
    _, kernel = self_built
    ko, ours, theirs = other_rustc_ko(printerfact_ko, tmp_path / "printerfact.ko")
    report = check(ko, kernel)
    [problem] = report.problems
    assert "kernel::print::call_printk): the kernel exports it under another crate hash" in problem
    # Only the kernel crate's symbols are listed, the core crate's hash being left alone (a
    # kernel symbol may still name a core type: <core::ffi::c_str::CStr as kernel::fmt::Display>).
    listed = [line.split()[0] for line in problem.splitlines()[1:]]
    assert listed and all(f"{theirs}_6kernel" in symbol for symbol in listed), problem
    [note] = report.notes
    assert f"crate kernel: {theirs} in the module, {ours} in the kernel" in note
    assert "rustc 1." in note  # the kernel's own CONFIG_RUSTC_VERSION_TEXT


def test_a_symbol_vmlinux_does_not_export_is_named(self_built, printerfact_ko, tmp_path):
    _, kernel = self_built
    report = check(unexported_symbol_ko(printerfact_ko, tmp_path / "printerfact.ko"), kernel)
    [problem] = report.problems
    assert "ret_from_fork: in vmlinux, but not exported to modules" in problem


def test_the_kernel_refuses_what_check_refuses(self_built, printerfact_ko, tmp_path):
    tc, kernel = self_built
    refused = {
        "version magic": other_release_ko(printerfact_ko, kernel.release, tmp_path / "a.ko"),
        "Unknown symbol _RNvNtCs": mit_license_ko(printerfact_ko, tmp_path / "b.ko"),
        "Unknown symbol _RNv": other_rustc_ko(printerfact_ko, tmp_path / "c.ko")[0],
        "Unknown symbol ret_from_fork": unexported_symbol_ko(printerfact_ko, tmp_path / "d.ko"),
        "Invalid ELF header type: 2 != 1": header_patched_ko(
            printerfact_ko, tmp_path / "f.ko", "type", ET_EXEC),
    }
    arm64 = header_patched_ko(printerfact_ko, tmp_path / "e.ko", "machine", EM_AARCH64)
    for ko in (*refused.values(), arm64):
        assert check(ko, kernel).problems
    with boot(kernel, [], toolchain=tc) as vm:
        for dmesg, ko in refused.items():
            with pytest.raises(CommandFailed, match=dmesg):
                vm.insmod(ko)
        # Another architecture's module: the helper refuses it with the reason, and the
        # kernel's own loader refuses it too.
        with pytest.raises(RustkmError, match="e.ko is built for arm64, and this guest is x86_64"):
            vm.insmod(arm64)
        vm.copy_to(arm64, "/tmp/e.ko")
        assert vm.run("insmod /tmp/e.ko").status != 0
        assert "Invalid architecture in ELF header: 183" in vm.succeed("dmesg")
        vm.insmod(printerfact_ko)
        assert vm.succeed("cat /dev/printerfact").strip()


def test_a_module_for_another_kernel_names_the_crate_hash_difference(printerfact_ko):
    _, stock = prepare_lane(Lane("debian:latest", stock="debian:latest"), find_project())
    report = check(printerfact_ko, stock)
    text = "\n".join(report.problems + report.notes)
    assert "Invalid module format" in text and "Unknown symbol" in text
    assert "kernel::print::call_printk" in text  # demangled
    assert "the kernel exports it under another crate hash" in text
    assert "crate kernel:" in text and "crate core:" in text


def test_vermagic_words_are_explained():
    [problem] = explain_vermagic("7.2.12 SMP mod_unload ", "7.2.12 SMP preempt mod_unload ")
    assert "'preempt' only in the kernel's: the preemption model" in problem
    assert "release" not in problem.split("\n")[1]
    assert explain_vermagic("7.2.12 SMP ", "7.2.12 SMP ") == []
    assert "no vermagic" in explain_vermagic("", "7.2.12 SMP ")[0]


def test_with_symbol_crcs_the_release_is_not_compared():
    # same_magic(): modversions modules are matched by their CRCs, not by release.
    assert explain_vermagic("7.2.11 SMP modversions ", "7.2.12 SMP modversions ", True) == []
    assert explain_vermagic("7.2.11 SMP modversions ", "7.2.12 SMP modversions ") != []


def test_module_namespaces_admit_the_modules_they_name():
    assert namespace_allows("module:kvm,kvm-*", "kvm_intel")
    assert namespace_allows("module:kvm,kvm-*", "kvm")
    assert not namespace_allows("module:kvm", "kvmx")
    assert not namespace_allows("DEVMEM", "cxl")


def test_crate_hashes_are_read_from_v0_symbols():
    symbol = "_RNvXso_NtCsb5MLIFMWygY_6kernel3fmtjNtB5_7Display3fmt"
    assert crate_hashes(symbol) == {"kernel": "b5MLIFMWygY"}
    assert crate_hashes("misc_register") == {}


def rustkm_check(ko: Path, kernel: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rustkm.cli", "check", str(ko), "--kernel",
                           str(kernel)], env={**os.environ, "RUSTKM_CACHE": str(cache)},
                          check=False, capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_a_module_for_the_kernels_architecture_passes(tmp_path):
    report = check(write_module(tmp_path / "m.ko", weak=()), kernel_folder(tmp_path / "build"))
    assert (report.problems, report.notes) == ([], [])


@pytest.mark.parametrize("module, config, message", [
    ({"machine": EM_AARCH64}, X86_64_CONFIG,
     ("built for aarch64, the kernel is x86_64; insmod would say 'Invalid module format' and "
     "dmesg 'Invalid architecture in ELF header: 183'")),
    ({"bits": 32, "machine": EM_386}, X86_64_CONFIG,
     ("built for i386 (32-bit, ELFCLASS32), the kernel is x86_64 (64-bit, ELFCLASS64); insmod "
     "would say 'Invalid module format' and dmesg 'Invalid architecture in ELF header: 3'")),
    ({"bits": 32}, X86_64_CONFIG,
     "built for x86_64 (32-bit, ELFCLASS32), the kernel is x86_64 (64-bit, ELFCLASS64)"),
    ({"elf_type": ET_EXEC}, X86_64_CONFIG,
     ("it is ET_EXEC (an executable), not a relocatable object (ET_REL) as every module is; "
     "insmod would say 'Invalid module format' and dmesg 'Invalid ELF header type: 2 != 1'")),
    ({"machine": EM_AARCH64, "little_endian": False}, ARM64_CONFIG,
     "built for aarch64 (big-endian), the kernel is aarch64 (little-endian)"),
    ({"machine": EM_X86_64}, ARM64_CONFIG, "built for x86_64, the kernel is aarch64;"),
])
def test_a_module_for_another_architecture_or_not_relocatable_is_refused(tmp_path, module,
                                                                         config, message):
    kernel = kernel_folder(tmp_path / "build", config)
    report = check(write_module(tmp_path / "m.ko", weak=(), **module), kernel)
    [problem] = report.problems
    assert message in problem


def test_an_arm64_module_is_right_for_an_arm64_kernel(tmp_path):
    report = check(write_module(tmp_path / "m.ko", weak=(), machine=EM_AARCH64),
                   kernel_folder(tmp_path / "build", ARM64_CONFIG))
    assert (report.problems, report.notes) == ([], [])


def test_a_kernel_of_an_architecture_rustkm_does_not_know_is_said(tmp_path):
    kernel = kernel_folder(tmp_path / "build", X86_64_CONFIG.replace("CONFIG_X86_64", "CONFIG_SH"))
    report = check(write_module(tmp_path / "m.ko", weak=()), kernel)
    assert report.problems == []
    assert report.notes == [("the kernel's .config names no architecture rustkm knows: the "
                            "module's (x86_64) was not compared")]


def test_rustkm_check_says_an_aarch64_module_would_not_load(tmp_path):
    ko = write_module(tmp_path / "handmade.ko", weak=(), machine=EM_AARCH64)
    result = rustkm_check(ko, kernel_folder(tmp_path / "build"), tmp_path / "cache")
    assert result.returncode == 1, result.stderr
    assert "would NOT load" in result.stdout
    assert "problem: built for aarch64, the kernel is x86_64" in result.stdout


def test_rustkm_check_calls_a_cut_short_module_truncated(tmp_path):
    ko = tmp_path / "handmade.ko"
    ko.write_bytes(write_module(ko).read_bytes()[:-100])
    result = rustkm_check(ko, kernel_folder(tmp_path / "build"), tmp_path / "cache")
    assert result.returncode == 1
    assert f"error: {ko} is truncated: its section headers" in result.stderr
    assert "Traceback" not in result.stderr and "not an ELF file" not in result.stderr
