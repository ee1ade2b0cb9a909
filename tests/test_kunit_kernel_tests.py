"""`rustkm kunit --kernel-tests`: built-in suites (no .ko to read their cases from) are
rebuilt from the KTAP that debugfs holds; fed with real results from the kernel-tests lane."""

from pathlib import Path

import pytest

from rustkm.errors import RustkmError
from rustkm.kunit.kernel_tests import results_from, run_kernel_tests
from rustkm.kunit.ktap import Status

DATA = Path(__file__).parent / "data" / "kunit"


def test_the_kernel_crates_doctests():
    ktap = (DATA / "rust_doctests_kernel.results.ktap").read_text()
    suite = results_from("rust_doctests_kernel", ktap, "results")
    assert suite.status is Status.PASS and len(suite.cases) == 322
    assert all(case.status is Status.PASS for case in suite.cases)
    assert suite.cases[0].name.startswith("rust_doctest_kernel_")


def test_a_skipped_case_of_a_built_in_suite():
    ktap = (DATA / "rust_kernel_kunit.results.ktap").read_text()
    suite = results_from("rust_kernel_kunit", ktap, "results")
    assert [(c.name, c.status) for c in suite.cases] == [
        ("rust_test_kunit_example_test", Status.PASS),
        ("rust_test_kunit_in_kunit_test", Status.PASS),
        ("rust_test_kunit_always_disabled_test", Status.SKIP)]


def test_a_filter_that_is_not_a_glob_is_refused_before_any_boot():
    with pytest.raises(RustkmError, match="not a SUITE or SUITE.CASE glob"):
        run_kernel_tests(None, None, "x y; reboot")  # type: ignore[arg-type]
