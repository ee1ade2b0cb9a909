"""`rustkm new`: the scaffolded module builds, its own VM test passes, editors get a
rust-project.json whose paths exist on the host; bad names and existing folders are refused."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rustkm.errors import RustkmError
from rustkm.module import build_module
from rustkm.scaffold import scaffold, type_name, write_rust_project

ROOT = Path(__file__).parents[1]


def test_the_scaffold_builds_and_its_test_passes_in_a_vm(tmp_path, kernel):
    folder = scaffold("hello_world", tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == [
        "Kbuild", "README.md", "hello_world.rs", "rustkm-module.toml", "test_hello_world.py"]
    result = subprocess.run([sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider",
                             str(folder)], check=False, cwd=ROOT, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    # Its VM test, and the KUnit case of the suite it scaffolds beside it.
    assert "2 passed" in result.stdout
    assert "::kunit::hello_world::logs_loaded_then_unloaded PASSED" in result.stdout


def test_rust_project_json_resolves_the_kernel_crate_on_the_host(tmp_path, rustkm_kernel):
    folder = scaffold("editor_check", tmp_path)
    project = json.loads(write_rust_project(folder, *rustkm_kernel).read_text())
    names = {crate.get("display_name") for crate in project["crates"]}
    assert {"kernel", "editor_check"} <= names
    assert Path(project["sysroot"]).is_dir()
    kernel_crate = next(c for c in project["crates"] if c.get("display_name") == "kernel")
    assert Path(kernel_crate["root_module"]).is_file()
    core = next(c for c in project["crates"] if c.get("display_name") == "core")
    assert Path(core["root_module"]).is_file()  # the std sources inside the toolchain
    assert [p for p in _absolute_paths(project) if not Path(p).exists()] == []


def _absolute_paths(value):
    if isinstance(value, dict):
        return [p for v in value.values() for p in _absolute_paths(v)]
    if isinstance(value, list):
        return [p for v in value for p in _absolute_paths(v)]
    return [value] if isinstance(value, str) and value.startswith("/") else []


def test_names_that_shadow_the_templates_types_still_build(tmp_path, rustkm_kernel):
    tc, kernel = rustkm_kernel
    folder = scaffold("result", tmp_path)
    assert "struct ResultModule;" in (folder / "result.rs").read_text()
    build_module(tc, kernel, folder, clippy=True)
    rustfmt = tc.run(["rustfmt", "--edition", "2021", "--check", str(folder / "result.rs")],
                     check=False)
    assert rustfmt.returncode == 0, rustfmt.stdout


@pytest.mark.parametrize("name", ["kernel", "core", "macros"])
def test_names_of_the_crates_a_module_depends_on_are_refused(tmp_path, name):
    with pytest.raises(RustkmError, match="crate every module depends on"):
        scaffold(name, tmp_path)
    assert not (tmp_path / name).exists()


@pytest.mark.parametrize("name", ["9lives", "Hello", "has-dash", "", "a" * 60, "x y"])
def test_bad_names_are_refused(tmp_path, name):
    with pytest.raises(RustkmError, match="not a usable module name"):
        scaffold(name, tmp_path)


def test_an_existing_folder_is_not_touched(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.rs").write_text("precious")
    with pytest.raises(RustkmError, match="already exists"):
        scaffold("mine", tmp_path)
    assert (tmp_path / "mine" / "keep.rs").read_text() == "precious"


def test_type_names():
    assert type_name("hello_world") == "HelloWorld" and type_name("x") == "X"
    assert type_name("this_module") == "ThisModuleModule"
