"""The `rustkm` command: clear errors with a non-zero exit for bad input, and `run`'s status."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def rustkm(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rustkm.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600, check=False)


def test_build_of_a_missing_folder_says_so():
    result = rustkm("build", "/nonexistent/module")
    assert result.returncode == 1
    assert "error: module folder /nonexistent/module does not exist" in result.stderr


def test_a_folder_without_kbuild_is_explained(tmp_path):
    (tmp_path / "thing.rs").write_text("")
    result = rustkm("build", str(tmp_path))
    assert result.returncode == 1
    assert "has no Kbuild with an obj-m line" in result.stderr


def test_a_module_that_does_not_compile_shows_rustc_errors_at_the_users_path(tmp_path):
    module = tmp_path / "broken"
    module.mkdir()
    (module / "Kbuild").write_text("obj-m := broken.o\n")
    (module / "broken.rs").write_text("use kernel::prelude::*;\nfn oops() -> u32 { \"no\" }\n")
    result = rustkm("build", str(module))
    assert result.returncode == 1
    assert "does not compile" in result.stderr
    assert "error[E0308]: mismatched types" in result.stderr
    assert f"{module}/broken.rs:2" in result.stderr
    assert "make[" not in result.stderr  # make's own chatter is left out


def test_bad_kernel_sources_are_refused_clearly(tmp_path):
    assert "does not exist" in rustkm("kernel", "build", "--source", "/no/tree").stderr
    not_a_tree = rustkm("kernel", "build", "--source", str(tmp_path))
    assert not_a_tree.returncode == 1 and "is not a Linux source tree" in not_a_tree.stderr
    bad_series = rustkm("kernel", "build", "--source", "debian:latest-ish")
    assert bad_series.returncode == 1 and "bad kernel source" in bad_series.stderr


def test_an_unknown_fragment_is_refused_before_anything_runs():
    result = rustkm("kernel", "build", "--fragment", "/no/such.config")
    assert result.returncode == 1 and "config fragment /no/such.config does not exist" in \
        result.stderr


def test_an_unknown_stock_kernel_is_refused():
    result = rustkm("kernel", "build", "--kernel", "fedora:41")
    assert result.returncode == 1 and "unknown kernel 'fedora:41'" in result.stderr


def test_kernel_info_says_where_everything_is():
    result = rustkm("kernel", "info")
    assert result.returncode == 0, result.stderr
    for field in ("release", "vmlinux", "Module.symvers", "rustc", "bindgen"):
        assert field in result.stdout


@pytest.mark.parametrize("command,status", [("cat /dev/printerfact", 0), ("exit 3", 3)])
def test_run_loads_the_module_and_exits_with_the_commands_status(command, status):
    result = rustkm("run", "kmods/printerfact", "--", "sh", "-c", command)
    assert result.returncode == status, result.stderr
    if status == 0:
        assert result.stdout.endswith("\n") and len(result.stdout) > 20
