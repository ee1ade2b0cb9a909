"""The rustc cfgs naming the target kernel's version (one module source for 7.2 and 7.3)."""

import pytest

from rustkm.errors import RustkmError
from rustkm.kernel.rustcfg import kernel_cfgs, krustflags, series


@pytest.mark.parametrize("version,expected", [
    ("7.3.0", (7, 3)), ("7.3", (7, 3)), ("7.3.0-rc7", (7, 3)), ("7.3~rc7-1~exp1", (7, 3)),
    ("7.2.13", (7, 2))])
def test_the_series_of_a_version(version, expected):
    assert series(version) == expected


def test_a_7_3_kernel_holds_every_release_up_to_it_and_none_after():
    names = kernel_cfgs("7.3.0")
    assert names[0] == "rustkm_kernel_ge_6_1" and names[-1] == "rustkm_kernel_ge_7_3"
    assert "rustkm_kernel_ge_6_19" in names and "rustkm_kernel_ge_7_0" in names
    assert "rustkm_kernel_ge_6_20" not in names and "rustkm_kernel_ge_7_4" not in names
    assert "rustkm_kernel_ge_7_3" not in kernel_cfgs("7.2.13")


def test_the_flags_are_one_make_variable_without_shell_quoting():
    flags = krustflags("7.2.12")
    assert flags.startswith("--cfg rustkm_kernel_ge_6_1 ")
    assert flags.endswith("--cfg rustkm_kernel_ge_7_2")
    assert "'" not in flags and '"' not in flags


def test_a_version_without_digits_is_an_error():
    with pytest.raises(RustkmError, match="cannot read a kernel version"):
        kernel_cfgs("next")
