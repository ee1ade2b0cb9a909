"""KUnit suites and cases read from built modules (their .kunit_test_suites tables, through
the relocations), not from their source."""

from pathlib import Path

import pytest

from rustkm.errors import RustkmError
from rustkm.kunit.collect import KunitCase, read_suites
from rustkm.kunit.run import selected
from rustkm.module import build_module

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
        "panics_when_asked", "runs_after_the_others"]
    assert [case.number for case in rust.cases] == [1, 2, 3, 4, 5, 6]
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
