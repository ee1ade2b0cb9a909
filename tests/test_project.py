"""rustkm.toml: found from any folder below it; fragment paths resolve against it."""

from pathlib import Path

import pytest

from rustkm.errors import RustkmError
from rustkm.project import find_project


def test_fragment_paths_resolve_against_the_project_from_any_folder(tmp_path: Path) -> None:
    (tmp_path / "rustkm.toml").write_text(
        '[kernel]\nsource = "debian:7.2"\nfragments = ["kmods/extra.config", "debug"]\n'
        '[modules]\ndirs = ["kmods"]\n')
    below = tmp_path / "kmods" / "hello"
    below.mkdir(parents=True)
    project = find_project(below)
    assert project.root == tmp_path
    assert project.fragments == (str(tmp_path / "kmods" / "extra.config"), "debug")
    assert project.module_dirs == ("kmods",)


def test_the_repository_fragment_exists() -> None:
    project = find_project(Path(__file__).parent)
    assert project.fragments and all(Path(f).is_file() for f in project.fragments if "/" in f)


def test_bad_toml_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "rustkm.toml").write_text("[kernel\n")
    with pytest.raises(RustkmError, match="is not valid TOML"):
        find_project(tmp_path)


@pytest.mark.parametrize("toml, message", [
    ('kernel = "x"\n', r"kernel must be a table \(\[kernel\]\), not a string \('x'\)"),
    ("[kernel]\nfragments = 3\n", r"kernel.fragments must be a list of strings, not an integer"),
    ('[kernel]\nfragments = ["a.config", 2]\n', r"kernel.fragments must be a list of strings"),
    ("[kernel]\nsource = 7.2\n", r"kernel.source must be a string"),
    ('[kernel]\nsource = "debian:latest-ish"\n',
     r"bad kernel source 'debian:latest-ish' in .*rustkm.toml \(kernel.source\)"),
    ("modules = []\n", r"modules must be a table"),
    ('[modules]\ndirs = "kmods"\n', r"modules.dirs must be a list of strings, not a string"),
    ("[kernal]\nsource = \"debian:7.2\"\n", r"rustkm.toml: unknown key kernal"),
    ('[kernel]\nfragment = ["x.config"]\n', r"rustkm.toml: unknown key kernel.fragment"),
])
def test_every_field_is_checked_and_the_error_names_file_and_field(
        tmp_path: Path, toml: str, message: str) -> None:
    (tmp_path / "rustkm.toml").write_text(toml)
    with pytest.raises(RustkmError, match=message) as error:
        find_project(tmp_path)
    assert str(tmp_path / "rustkm.toml") in error.value.message


def test_a_kernel_tree_path_is_relative_to_the_project(tmp_path: Path) -> None:
    (tmp_path / "rustkm.toml").write_text('[kernel]\nsource = "../linux"\n')
    (tmp_path / "sub").mkdir()
    assert find_project(tmp_path / "sub").kernel == str(tmp_path / "../linux")


def test_outside_any_project_the_start_folder_stands_in_without_a_marker(tmp_path: Path) -> None:
    project = find_project(tmp_path)
    assert (project.root, project.marker) == (tmp_path, None)
    (tmp_path / "rustkm.toml").write_text("")
    assert find_project(tmp_path).marker == tmp_path / "rustkm.toml"
