"""`rustkm doctor` and the host-tool check, on the recorded 7.2 excerpt tree and Debian 13's
stock .config; host tools are whatever a PATH of our choosing holds."""

import shutil
from pathlib import Path

import pytest

from rustkm.cli import main
from rustkm.errors import RustkmError
from rustkm.kernel.tools import check_host_tools, check_tools, minimum_versions
from rustkm.toolchain import ensure_toolchain

DATA = Path(__file__).parent / "data"
LINUX_72 = DATA / "kconfig/linux-7.2"
DEBIAN_612 = DATA / "debian/config-6.12.107+deb13-amd64.gz"
# What bookworm's clang 14 prints: a real too-old LLVM.
OLD_CLANG = "#!/bin/sh\necho 'Debian clang version 14.0.6'\necho 'Target: x86_64-pc-linux-gnu'\n"


@pytest.fixture
def bare_path(tmp_path, monkeypatch):
    """A PATH with only sh (and an old clang): every other build tool is missing."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sh").symlink_to(shutil.which("sh"))
    clang = bin_dir / "clang"
    clang.write_text(OLD_CLANG)
    clang.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


def test_minimums_come_from_the_trees_script_and_changes_table():
    minimums = minimum_versions(ensure_toolchain("host"), LINUX_72)
    assert {k: minimums[k] for k in ("rustc", "bindgen", "llvm", "make", "flex", "bison", "bc",
                                     "pahole")} == {
        "rustc": "1.85.0", "bindgen": "0.71.1", "llvm": "17.0.1", "make": "4.0",
        "flex": "2.5.35", "bison": "2.0", "bc": "1.06.95", "pahole": "1.26"}


def test_each_missing_or_old_tool_gets_one_precise_message(bare_path):
    problems = {s.tool: s.problem for s in check_tools(ensure_toolchain("host"), LINUX_72)}
    assert problems["rustc"] == ("rustc: not found on the host; Linux 7.2.12 needs rustc >= "
                                 "1.85.0 (Debian package rustc)")
    assert problems["clang"] == ("clang 14.0.6 is too old: Linux 7.2.12 needs LLVM >= 17.0.1 "
                                 "(Debian package clang)")
    assert problems["bison"] == ("bison: not found on the host; Linux 7.2.12 needs bison >= 2.0 "
                                 "(Debian package bison)")
    assert "pahole" not in problems  # no .config asks for BTF


def test_pahole_is_checked_when_the_config_wants_btf(bare_path):
    statuses = check_tools(ensure_toolchain("host"), LINUX_72, {"DEBUG_INFO_BTF": "y"})
    [pahole] = [s for s in statuses if s.tool == "pahole"]
    assert pahole.problem is not None and "needs pahole >= 1.26 (DEBUG_INFO_BTF=y)" in pahole.problem


def test_host_check_raises_one_error_listing_every_problem(bare_path):
    with pytest.raises(RustkmError) as caught:
        check_host_tools(LINUX_72)
    error = caught.value
    assert error.message == "the host's tools cannot build Linux 7.2.12 with Rust (12 problems)"
    assert error.details is not None
    for tool in ("rustc", "bindgen", "clang", "ld.lld", "llvm-ar", "make", "flex", "bison", "bc"):
        assert f"  {tool}" in error.details


def test_doctor_explains_debian_13_config_against_7_2(bare_path, tmp_path, capsys):
    import gzip

    config = tmp_path / "config-6.12"
    config.write_bytes(gzip.decompress(DEBIAN_612.read_bytes()))
    status = main(["doctor", "--config", str(config), "--source", str(LINUX_72),
                   "--toolchain", "host"])
    err = capsys.readouterr().err
    assert status == 1
    assert "note: the .config was made for Linux 6.12, the tree is 7.2.12" in err
    assert "MODULES=y: ok" in err
    assert "(!MODVERSIONS || GENDWARFKSYMS)" in err and "MODVERSIONS=y, GENDWARFKSYMS=n" in err
    assert "clang 14.0.6 is too old" in err
    assert "doctor: 14 problems found" in err


def test_doctor_refuses_bad_paths_clearly(tmp_path, capsys):
    assert main(["doctor", "--config", str(tmp_path / "nope")]) == 1
    assert f"error: the .config {tmp_path / 'nope'} does not exist" in capsys.readouterr().err
    config = tmp_path / ".config"
    config.write_text("CONFIG_RUST=y\n")
    assert main(["doctor", "--config", str(config), "--source", str(tmp_path / "nowhere")]) == 1
    assert f"kernel source {tmp_path / 'nowhere'} does not exist" in capsys.readouterr().err
    assert main(["doctor", "--config", str(config), "--source", str(tmp_path)]) == 1
    assert "is not a Linux source tree" in capsys.readouterr().err
