"""Host files written whole or not at all (what copy_from promises), their mode kept, devices
and symlinks written as a user expects."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rustkm.host_file import replacing


def test_a_new_file_appears_only_once_whole(tmp_path):
    out = tmp_path / "out"
    with replacing(out) as sink:
        sink.write(b"part")
        assert not out.exists()  # nothing under the name until the block ends
        sink.write(b" two")
    assert out.read_bytes() == b"part two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_failure_leaves_the_file_as_it_was(tmp_path):
    out = tmp_path / "out"
    out.write_bytes(b"before")
    with pytest.raises(RuntimeError), replacing(out) as sink:
        sink.write(b"half")
        raise RuntimeError("the guest died")
    assert out.read_bytes() == b"before"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_an_existing_files_mode_is_kept(tmp_path):
    out = tmp_path / "tool"
    out.write_bytes(b"old")
    out.chmod(0o751)
    with replacing(out) as sink:
        sink.write(b"new")
    assert out.read_bytes() == b"new" and out.stat().st_mode & 0o7777 == 0o751


def test_a_symlinks_target_is_replaced_and_the_link_kept(tmp_path):
    (tmp_path / "build").mkdir()
    target = tmp_path / "build" / "x"
    target.write_bytes(b"old")
    link = tmp_path / "out"
    link.symlink_to(target)
    with replacing(link) as sink:
        sink.write(b"new")
    assert link.is_symlink() and target.read_bytes() == b"new"


def test_a_device_is_written_through_and_a_folder_refused_before_any_write(tmp_path):
    with replacing(Path(os.devnull)) as sink:
        sink.write(b"gone")
    assert Path(os.devnull).is_char_device()
    with pytest.raises(IsADirectoryError), replacing(tmp_path) as sink:
        raise AssertionError("a folder must be refused before the copy starts")
