"""The `rustkm` command: clear errors with a non-zero exit for bad input, found before any
toolchain or kernel work, and `run`'s status; `rustkm test` hands its words to pytest."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def rustkm(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None,
           stdin: int | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rustkm.cli", *args], cwd=cwd,
                          env=None if env is None else {**os.environ, **env}, stdin=stdin,
                          capture_output=True, text=True, timeout=600, check=False)


def refused_up_front(tmp_path: Path, *args: str, env: dict[str, str] | None = None,
                     cwd: Path = ROOT) -> str:
    """Run rustkm with an empty cache and no host tools on PATH (so that nothing could be
    built or downloaded even by mistake); it must fail at once, having made no toolchain.
    Its stderr."""
    cache = tmp_path / "cache"
    start = time.monotonic()
    result = rustkm(*args, cwd=cwd, stdin=subprocess.DEVNULL, env={
        "RUSTKM_CACHE": str(cache), "PATH": str(tmp_path / "no-tools"), **(env or {})})
    assert result.returncode == 1, result.stdout + result.stderr
    assert time.monotonic() - start < 30
    assert not (cache / "toolchain").exists() and not (cache / "store" / "kernels").exists()
    assert "mmdebstrap" not in result.stderr
    return result.stderr


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


def test_a_reader_that_goes_away_gets_no_traceback():
    # `rustkm kernel info | true`: the pipe is closed before rustkm writes to it.
    proc = subprocess.Popen([sys.executable, "-m", "rustkm.cli", "kernel", "info"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.close()
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 141 and b"Traceback" not in err, err.decode()


def test_a_broken_pipe_that_is_not_stdout_is_not_hidden(monkeypatch):
    # A guest shell's socket breaking is an error to see, not a reader that went away.
    from rustkm import cli

    def broken(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(cli, "cmd_setup", broken)
    with pytest.raises(BrokenPipeError):
        cli.main(["setup"])


@pytest.mark.parametrize("command,status", [("cat /dev/printerfact", 0), ("exit 3", 3)])
def test_run_loads_the_module_and_exits_with_the_commands_status(command, status):
    result = rustkm("run", "kmods/printerfact", "--", "sh", "-c", command)
    assert result.returncode == status, result.stderr
    if status == 0:
        assert result.stdout.endswith("\n") and len(result.stdout) > 20


def test_one_word_after_dashes_is_a_shell_line_several_are_kept_whole():
    line = rustkm("run", "kmods/printerfact", "--", "grep -c printerfact /proc/modules | tr 1 X")
    assert (line.returncode, line.stdout) == (0, "X\n"), line.stderr
    words = rustkm("run", "kmods/printerfact", "--", "echo", "a  b", "$HOME;", "|")
    assert (words.returncode, words.stdout) == (0, "a  b $HOME; |\n"), words.stderr


@pytest.mark.parametrize("variable, value, message", [
    ("RUSTKM_TIMEOUT", "abc", "RUSTKM_TIMEOUT='abc' is not a number of seconds"),
    ("RUSTKM_TIMEOUT", "-5", "RUSTKM_TIMEOUT='-5' is not a number of seconds"),
    ("RUSTKM_TIMEOUT", "nan", "RUSTKM_TIMEOUT='nan' is not a number of seconds"),
    ("RUSTKM_ACCEL", "fast", "RUSTKM_ACCEL='fast' is not an accelerator"),
    ("RUSTKM_DEBUG_KERNEL", "yes", "RUSTKM_DEBUG_KERNEL='yes' is neither 1 nor 0"),
    ("RUSTKM_KERNEL", "fedora:41", "unknown kernel 'fedora:41' (from RUSTKM_KERNEL)"),
])
def test_a_bad_environment_variable_is_named_before_any_work(tmp_path, variable, value,
                                                              message):
    stderr = refused_up_front(tmp_path, "run", "kmods/printerfact", "--", "true",
                              env={variable: value})
    assert f"error: {message}" in stderr
    assert "Traceback" not in stderr


def test_a_cache_variable_naming_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("")
    result = rustkm("kernel", "info", env={"RUSTKM_CACHE": str(tmp_path / "file" / "cache")})
    assert result.returncode == 1
    assert f"error: RUSTKM_CACHE='{tmp_path}/file/cache': {tmp_path}/file is a file" in \
        result.stderr


@pytest.mark.parametrize("args, message", [
    (["build", "/nonexistent/module"], "module folder /nonexistent/module does not exist"),
    (["run", "/nonexistent/module", "--", "true"],
     "module folder /nonexistent/module does not exist"),
    (["build", "README.md"], f"{ROOT}/README.md is a file, not a module folder"),
    (["kernel", "build", "--source", "/no/tree"], "kernel source /no/tree does not exist"),
    (["kernel", "info", "--source", "debian:latest-ish"],
     "bad kernel source 'debian:latest-ish'"),
    (["lock", "--source", "debian:x"], "bad kernel source 'debian:x'"),
    (["run", "--kernel", "debian:7.2", "kmods/printerfact"], "unknown kernel 'debian:7.2'"),
    (["shell", "kmods/printerfact"], "rustkm shell needs a terminal"),
    (["shell"], "rustkm shell needs a terminal"),
])
def test_bad_arguments_are_found_before_the_toolchain_and_kernel(tmp_path, args, message):
    assert f"error: {message}" in refused_up_front(tmp_path, *args)


def test_a_folder_without_kbuild_is_found_before_the_toolchain(tmp_path):
    (tmp_path / "mod").mkdir()
    (tmp_path / "mod" / "thing.rs").write_text("")
    stderr = refused_up_front(tmp_path, "build", str(tmp_path / "mod"))
    assert "has no Kbuild with an obj-m line" in stderr


def test_bad_vm_sizes_are_refused_by_the_parser():
    result = rustkm("run", "--memory", "0", "kmods/printerfact")
    assert result.returncode == 2
    assert "argument --memory: expected a whole number above 0, not '0'" in result.stderr


@pytest.fixture
def two_tests(tmp_path):
    (tmp_path / "test_pair.py").write_text("def test_one():\n    pass\n\n\n"
                                          "def test_two():\n    pass\n")
    return tmp_path


@pytest.mark.parametrize("words", [["-k", "one"], ["-k", "one", "-x"], ["--", "-k", "one"],
                                   ["-x", "-k", "one", "test_pair.py"]])
def test_every_word_after_test_goes_to_pytest(two_tests, words):
    result = rustkm("test", "-p", "no:cacheprovider", *words, cwd=two_tests)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed, 1 deselected" in result.stdout


def test_pytests_exit_status_is_rustkms(two_tests):
    result = rustkm("test", "-k", "nothing_matches", cwd=two_tests)
    assert result.returncode == 5  # pytest: no tests collected


def test_export_to_a_file_or_a_full_folder_is_refused_before_the_kernel(tmp_path):
    (tmp_path / "file").write_text("")
    stderr = refused_up_front(tmp_path, "export", str(tmp_path / "file"))
    assert f"error: {tmp_path}/file is a file, not a folder" in stderr
    assert "Traceback" not in stderr
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    assert f"error: {tmp_path}/full exists and is not empty" in refused_up_front(
        tmp_path, "export", str(tmp_path / "full"))
    stderr = refused_up_front(tmp_path, "export", str(tmp_path / "file" / "out"))
    assert f"error: {tmp_path}/file/out cannot be made: {tmp_path}/file is a file" in stderr
    (tmp_path / "out.tar.gz").write_text("")
    assert f"error: {tmp_path}/out.tar.gz exists" in refused_up_front(
        tmp_path, "export", "--tar", str(tmp_path / "out"))


def test_new_refuses_a_dir_that_is_a_file_and_an_author_module_cannot_take(tmp_path):
    (tmp_path / "file").write_text("")
    stderr = refused_up_front(tmp_path, "new", "hello", "--dir", str(tmp_path / "file" / "x"),
                              "--no-editor")
    assert f"error: {tmp_path}/file/x cannot hold a module folder: {tmp_path}/file is a file" \
        in stderr
    stderr = refused_up_front(tmp_path, "new", "hello", "--dir", str(tmp_path), "--author",
                              "Zoë\n", "--no-editor")
    assert "error: author 'Zoë\\n' is not printable ASCII, which module! takes" in stderr
    assert not (tmp_path / "hello").exists()


def test_new_quotes_the_author_as_a_rust_string(tmp_path):
    result = rustkm("new", "hello", "--dir", str(tmp_path), "--author", 'A "B" \\ C',
                    "--no-editor")
    assert result.returncode == 0, result.stderr
    assert 'authors: ["A \\"B\\" \\\\ C"],' in (tmp_path / "hello" / "hello.rs").read_text()


def test_doctor_says_a_folder_is_not_a_config(tmp_path):
    stderr = refused_up_front(tmp_path, "doctor", "--config", str(tmp_path))
    assert f"error: {tmp_path} is a folder, not a kernel .config" in stderr
