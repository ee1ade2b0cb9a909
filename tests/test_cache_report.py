"""`rustkm cache` lists what the cache holds; `cache clean` removes what can be made again and
is not in use, and keeps the rest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from filelock import FileLock

from rustkm import snapshot

ROOT = Path(__file__).parents[1]


def rustkm(cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rustkm.cli", *args], cwd=ROOT,
                          env={**os.environ, "RUSTKM_CACHE": str(cache)},
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("RUSTKM_CACHE", str(tmp_path))
    store = tmp_path / "store"
    (tmp_path / "toolchain" / "trixie" / "root").mkdir(parents=True)
    (tmp_path / "toolchain" / "trixie" / "root" / "rustc").write_bytes(b"x" * 5000)
    (store / "initramfs").mkdir(parents=True)
    (store / "initramfs" / "aaaa.cpio").write_bytes(b"c" * 3000)
    old = store / "initramfs" / "bbbb.cpio"
    old.write_bytes(b"c" * 3000)
    os.utime(old, (time.time() - 10 * 86400,) * 2)
    (store / "kernels" / "key1").mkdir(parents=True)
    (store / "kernels" / "key1" / "vmlinux").write_bytes(b"k" * 9000)
    for key in ("snapA", "snapB"):
        folder = store / "snapshots" / key
        folder.mkdir(parents=True)
        (folder / "state").write_bytes(b"s" * 4000)
        (folder / "meta.json").write_text(json.dumps({"size": 4000, "sha256": ""}))
    (store / "stock" / "7.2.13+deb14-amd64").mkdir(parents=True)
    (store / "stock" / "7.2.13+deb14-amd64" / "vmlinuz").write_bytes(b"v" * 2000)
    (store / "modules" / "key1" / "printerfact-abcd").mkdir(parents=True)
    (store / "modules" / "key1" / "printerfact-abcd" / "printerfact.ko").write_bytes(b"m" * 700)
    (store / "crashes" / "20261202-101010-vm-7").mkdir(parents=True)
    (store / "crashes" / "20261202-101010-vm-7" / "vmcore").write_bytes(b"d" * 800)
    for leftover in ("snapC.partial-x1y2", "snapA.doomed-4242"):  # processes that died
        (store / "snapshots" / leftover).mkdir()
        (store / "snapshots" / leftover / "meta.json").write_text("{}")
    return tmp_path


def test_the_listing_names_every_kind_with_size_and_last_use(cache):
    result = rustkm(cache, "cache")
    assert result.returncode == 0, result.stderr
    for kind in ("toolchain", "kernel build", "initramfs image", "snapshot", "stock kernel",
                 "module build", "crash dump", "unfinished snapshot"):
        assert kind in result.stdout
    assert "total" in result.stdout
    assert "ago" in result.stdout or "just now" in result.stdout


def test_clean_removes_what_can_be_made_again_and_keeps_the_rest(cache):
    result = rustkm(cache, "cache", "clean")
    assert result.returncode == 0, result.stderr
    store = cache / "store"
    assert not list((store / "initramfs").glob("*.cpio"))
    assert not (store / "snapshots" / "snapA").exists()
    assert (store / "kernels" / "key1" / "vmlinux").exists()
    assert (cache / "toolchain" / "trixie" / "root" / "rustc").exists()
    # Module builds (a running test may be about to load one), stock kernels (their upload
    # may have left the archive) and crash dumps (the user's evidence) stay; what dead
    # processes left goes.
    assert (store / "modules" / "key1" / "printerfact-abcd").exists()
    assert (store / "stock" / "7.2.13+deb14-amd64" / "vmlinuz").exists()
    assert (store / "crashes" / "20261202-101010-vm-7" / "vmcore").exists()
    assert sorted(p.name for p in (store / "snapshots").iterdir() if p.is_dir()) == []


def test_an_unfinished_snapshot_whose_save_runs_is_left_alone(cache):
    assert sorted(s.key for s in snapshot.entries()) == ["snapA", "snapB"]  # not leftovers
    snapshots = cache / "store" / "snapshots"
    with FileLock(str(snapshots / "snapC.lock")):  # a save of snapC under way
        result = rustkm(cache, "cache", "clean")
    assert result.returncode == 0, result.stderr
    assert (snapshots / "snapC.partial-x1y2").exists()
    assert not (snapshots / "snapA.doomed-4242").exists()


def test_older_than_keeps_what_was_used_recently(cache):
    result = rustkm(cache, "cache", "clean", "--older-than", "5")
    assert result.returncode == 0, result.stderr
    assert (cache / "store" / "initramfs" / "aaaa.cpio").exists()
    assert not (cache / "store" / "initramfs" / "bbbb.cpio").exists()


def test_clean_never_pulls_a_snapshot_or_an_image_from_under_its_user(cache):
    held = snapshot.Snapshot("snapB", cache / "store" / "snapshots" / "snapB")
    image = cache / "store" / "initramfs" / "aaaa.cpio"
    with snapshot.reading(held), FileLock(str(image) + ".lock"):
        result = rustkm(cache, "cache", "clean")
    assert result.returncode == 0, result.stderr
    assert held.state.exists() and image.exists()
    assert "in use right now" in result.stderr
    assert not (cache / "store" / "snapshots" / "snapA").exists()


def test_a_bad_age_is_refused(cache):
    result = rustkm(cache, "cache", "clean", "--older-than", "-1")
    assert result.returncode == 1 and "--older-than" in result.stderr


def test_initramfs_images_are_bounded_least_recently_used_first(tmp_path):
    from rustkm.initramfs import _bound

    for i in range(6):
        image = tmp_path / f"{i}.cpio"
        image.write_bytes(b"x" * 1000)
        os.utime(image, (time.time() - 100 + i,) * 2)
    _bound(tmp_path, keep=tmp_path / "0.cpio", limit=3500)
    assert sorted(p.name for p in tmp_path.glob("*.cpio")) == ["0.cpio", "4.cpio", "5.cpio"]
