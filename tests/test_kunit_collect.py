"""KUnit suites and cases read from built modules (their .kunit_test_suites tables, through
the relocations), not from their source."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from rustkm.errors import RustkmError
from rustkm.kunit.collect import KunitCase, read_suites
from rustkm.kunit.run import kernel_has_kunit, selected
from rustkm.module import build_module
from rustkm.scaffold import scaffold

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def selftest_ko(rustkm_kernel):
    tc, kernel = rustkm_kernel
    return build_module(tc, kernel, ROOT / "tests/kmods/kunit_selftest").ko("kunit_selftest")


def test_rust_and_c_suites_of_one_module(selftest_ko):
    rust, c = read_suites(selftest_ko)
    assert rust.name == "rustkm_selftest"
    # The cfg'd-out case is in the table (KUnit reports it skipped); source order is kept.
    assert [case.name for case in rust.cases] == [
        "adds_up", "fails_on_purpose", "returns_an_error", "disabled_by_cfg",
        "panics_when_asked", "runs_after_the_others", "hangs_when_asked"]
    assert [case.number for case in rust.cases] == [1, 2, 3, 4, 5, 6, 7]
    assert c.name == "rustkm_selftest_params"
    assert c.cases == (KunitCase("squares", 1, parameterised=True), KunitCase("skipped", 2))


def test_a_module_without_suites(rustkm_kernel):
    tc, kernel = rustkm_kernel
    assert read_suites(build_module(tc, kernel, ROOT / "tests/kmods/trouble").ko("trouble")) == []


def test_not_a_module(tmp_path):
    path = tmp_path / "x.ko"
    path.write_bytes(b"hello")
    with pytest.raises(RustkmError, match="not an ELF file"):
        read_suites(path)


def test_filter_globs_like_kunit_py(selftest_ko):
    suites = read_suites(selftest_ko)
    assert [s.name for s in selected(suites, "*params")] == ["rustkm_selftest_params"]
    picked = selected(suites, "rustkm_selftest.*_on_*")
    assert [(s.name, [c.name for c in s.cases]) for s in picked] == [
        ("rustkm_selftest", ["fails_on_purpose"])]
    assert selected(suites, "nothing*") == []


def test_kernel_has_kunit(tmp_path):
    config = tmp_path / ".config"
    config.write_text("CONFIG_RUST=y\n# CONFIG_KUNIT is not set\n")  # as Debian's stock kernels
    assert not kernel_has_kunit(config)
    config.write_text("CONFIG_RUST=y\nCONFIG_KUNIT=y\nCONFIG_KUNIT_DEBUGFS=y\n")
    assert kernel_has_kunit(config)
    assert not kernel_has_kunit(tmp_path / "missing")


def test_on_a_kernel_without_kunit_the_suites_are_one_skipped_item(tmp_path, rustkm_kernel):
    folder = scaffold("no_kunit_here", tmp_path)
    # Stands in for a stock kernel: the module folder is collected as on one without KUnit.
    (folder / "conftest.py").write_text(
        "import rustkm.kunit.pytest_items as items\n"
        "items.kernel_has_kunit = lambda config: False\n")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider", str(folder)], check=False, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed, 1 skipped" in result.stdout  # its VM test, and the suites skipped
    assert re.search(r"SKIPPED \[1\] \S*no_kunit_here/Kbuild:1: kernel \S+ has no CONFIG_KUNIT",
                     result.stdout), result.stdout


def test_a_folder_that_does_not_build_is_one_failing_item(tmp_path, rustkm_kernel):
    folder = scaffold("broken_build", tmp_path)
    source = folder / "broken_build.rs"
    source.write_text(source.read_text() + "\nfn oops() -> u32 { \"not a number\" }\n")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-k", "suites",
         str(folder)], check=False, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 failed" in result.stdout
    assert "the module in" in result.stdout and "does not compile" in result.stdout
    assert "mismatched types" in result.stdout
