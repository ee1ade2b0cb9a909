"""rustkm fuzz's ioctl commands: found in a module's Rust and C source, declared in its
rustkm-module.toml, and drawn by the guest fuzzer beside random ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from rustkm.errors import RustkmError
from rustkm.fuzz.ioctls import GUESSED_SIZES, encode, module_ioctls
from rustkm.fuzz.minimize import planned
from rustkm.fuzz.session import FuzzRun
from rustkm.module_file import read_module_file

ROOT = Path(__file__).parents[1]
W, R = 1, 2


def test_the_linux_encoding():
    assert encode(W, ord("f"), 0, 4) == 0x40046600  # _IOW('f', 0, u32)
    assert encode(R | W, ord("E"), 2, 4) == 0xC0044502
    assert encode(0, 0x66, 3, 0) == 0x6603


def test_rust_spellings_with_constants_escapes_and_pointers(tmp_path):
    (tmp_path / "m.rs").write_text("""
const MAGIC: u32 = b'E' as u32;
const MAJOR: u32 = 100;
// const IGNORED: u32 = _IOR::<u64>(1, 1);  a comment is not code
const A: u32 = _IOR::<u32>(MAGIC, 1);
const B: u32 = _IOWR::<kernel::ffi::c_int>(b'\\x45', 2);
const C: u32 = _IOW::<*mut u8>(MAJOR, 0);
const D: u32 = _IO(0x66, 3);
""")
    assert module_ioctls(tmp_path) == sorted({
        encode(R, 0x45, 1, 4), encode(R | W, 0x45, 2, 4), encode(W, 100, 0, 8),
        encode(0, 0x66, 3, 0)})


def test_c_spellings_and_a_struct_of_unknown_size(tmp_path):
    (tmp_path / "user.c").write_text("""
#define IOC_MAGIC '\\x66'
#define SET _IOW(IOC_MAGIC, 0, struct arg)
#define GET _IOR(IOC_MAGIC, 2, int)
""")
    found = module_ioctls(tmp_path)
    assert encode(R, 0x66, 2, 4) in found
    # The struct's size is unknown: every usual size, the real one (4) among them.
    assert {encode(W, 0x66, 0, size) for size in GUESSED_SIZES} <= set(found)
    assert len(found) == len(GUESSED_SIZES) + 1


def test_the_projects_ioctl_modules_give_their_real_commands():
    ioctl = set(module_ioctls(ROOT / "kmods/lkmpg/ioctl"))
    assert {0x40046600, 0x80046601, 0x80046602, 0x6603} <= ioctl  # VALSET..VALSET_NUM
    assert module_ioctls(ROOT / "kmods/lkmpg/chardev2") == [0x40086400, 0x80086401, 0xC0046402]
    assert module_ioctls(ROOT / "kmods/drivers/edu") == [0x80044501, 0xC0044502, 0xC0044503]
    assert module_ioctls(ROOT / "kmods/printerfact") == []


def test_declared_commands_are_numbers_or_the_kernels_macros(tmp_path):
    (tmp_path / "rustkm-module.toml").write_text(
        "[fuzz]\nioctls = [0x1234, \"_IOWR('E', 2, 4)\", \"_IO('k', 7)\"]\n")
    declared = read_module_file(tmp_path).ioctls
    assert module_ioctls(tmp_path, declared) == sorted({0x1234, 0xC0044502, 0x6B07})
    for bad in ("_IOR('E', 1)", "ioctl(1)", -1):
        with pytest.raises(RustkmError, match="is not an ioctl command"):
            module_ioctls(tmp_path, (bad,))
    (tmp_path / "rustkm-module.toml").write_text("[fuzz]\nioctls = 3\n")
    with pytest.raises(RustkmError, match=r"\[fuzz\] takes ioctls"):
        read_module_file(tmp_path)


def test_the_guest_fuzzer_draws_the_modules_commands():
    """The real fuzzer binary's plan: with the commands given, about half its ioctls use
    them; without, the plan is the one it always drew (seeds stay replayable)."""
    run = FuzzRun(["m"], ["/dev/x"], seed=7, seconds=1, threads=1, cycle="-")
    plain = planned(run, 0, 3000)
    run.ioctls = [0x40046600, 0x6603]
    known = planned(run, 0, 3000)
    ioctls = [line.split() for line in known if line.startswith("ioctl ")]
    ours = [f for f in ioctls if int(f[3]) in (0x40046600, 0x6603)]
    assert len(ioctls) > 50 and 0.3 < len(ours) / len(ioctls) < 0.7
    assert planned(FuzzRun(["m"], ["/dev/x"], seed=7, seconds=1, threads=1, cycle="-"), 0,
                   3000) == plain


def test_a_fuzz_setup_is_guest_commands_and_nothing_else(tmp_path):
    (tmp_path / "rustkm-module.toml").write_text('[fuzz]\nsetup = "modprobe x\\necho 1 > /y"\n')
    assert read_module_file(tmp_path).fuzz_setup == "modprobe x\necho 1 > /y"
    assert read_module_file(ROOT / "kmods/lkmpg/led").fuzz_setup.count("gpio-sim") >= 3
    (tmp_path / "rustkm-module.toml").write_text("[fuzz]\nsetup = [1]\n")
    with pytest.raises(RustkmError, match="setup = "):
        read_module_file(tmp_path)
    (tmp_path / "rustkm-module.toml").write_text("[fuzz]\nbefore = 'x'\n")
    with pytest.raises(RustkmError, match=r"\[fuzz\] takes ioctls"):
        read_module_file(tmp_path)


def test_fuzz_devices_are_qemu_device_strings(tmp_path):
    assert read_module_file(ROOT / "kmods/drivers/edu").fuzz_devices == ("edu",)
    (tmp_path / "rustkm-module.toml").write_text('[fuzz]\ndevices = ["edu", "pci-testdev"]\n')
    assert read_module_file(tmp_path).fuzz_devices == ("edu", "pci-testdev")
    for bad in ('devices = "edu"', "devices = [1]", 'devices = [""]'):
        (tmp_path / "rustkm-module.toml").write_text(f"[fuzz]\n{bad}\n")
        with pytest.raises(RustkmError, match="devices = "):
            read_module_file(tmp_path)


def test_fuzz_params_are_insmod_words(tmp_path):
    from rustkm.fuzz.session import FuzzRun, fuzzer_argv, parameters

    assert read_module_file(ROOT / "kmods/lkmpg/example_tasklet").fuzz_params == "delay_ms=20"
    (tmp_path / "rustkm-module.toml").write_text('[fuzz]\nparams = " a=1   b=x,y "\n')
    params = read_module_file(tmp_path).fuzz_params
    assert params == "a=1 b=x,y" and parameters(params) == {"a": "1", "b": "x,y"}
    run = FuzzRun(["m"], ["/dev/m"], 1, 1, 1, "/lib/modules/rustkm/m.ko", params=params)
    assert "RUSTKM_FUZZ_PARAMS=a=1 b=x,y" in fuzzer_argv(run, "/bin/rustkm-fuzz", "run")
    for bad in ('params = "a"', 'params = "a=1; reboot"', 'params = "a=$(x)"', "params = 3"):
        (tmp_path / "rustkm-module.toml").write_text(f"[fuzz]\n{bad}\n")
        with pytest.raises(RustkmError, match="params = "):
            read_module_file(tmp_path)
