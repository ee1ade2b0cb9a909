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
