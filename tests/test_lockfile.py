"""rustkm.lock: replaced whole, edited under a lock so that concurrent pins are all kept, and a
malformed file is an error that names the field. Real functions; apt faked on PATH only where
the kernel source is resolved (see test_cache_races.py)."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path

import pytest
from racing import FORK, install_fake_apt, make_deb, needs_dpkg, run_in_processes

from rustkm.errors import RustkmError
from rustkm.kernel.prepare import record_toolchain
from rustkm.kernel.source import debian_source
from rustkm.lockfile import Lock, LockedPackage, editing
from rustkm.project import Project
from rustkm.toolchain import Toolchain

HOST = Toolchain("host", None)
SOURCE = LockedPackage("linux-source-7.2", "7.2.12-1~bpo13+1", "ab" * 32, "trixie-backports")


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RUSTKM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def fake_apt(tmp_path, monkeypatch):
    return install_fake_apt(tmp_path, monkeypatch)


def test_a_reader_never_sees_an_empty_lock_while_it_is_rewritten(tmp_path):
    path = tmp_path / "rustkm.lock"
    lock = Lock({f"p{i}": LockedPackage(f"p{i}", "1.0", "ab" * 32, "sid") for i in range(60)},
                {"debian-trixie/rustc": "rustc 1.85.1"})
    lock.write(path)
    stop = FORK.Event()

    def rewrite() -> None:
        while not stop.is_set():
            lock.write(path)

    writer = FORK.Process(target=rewrite)
    writer.start()
    try:
        counts = [len(Lock.read(path).packages) for _ in range(300)]
    finally:
        stop.set()
        writer.join()
    assert set(counts) == {60}


def toolchain_with_versions(folder: Path, name: str) -> Toolchain:
    """A toolchain whose versions are already recorded beside its root (no tool runs)."""
    (folder / name).mkdir(parents=True)
    (folder / name / "versions.json").write_text(json.dumps({"rustc": f"rustc of {name}"}))
    return Toolchain(name, folder / name / "root")


def test_two_processes_recording_toolchains_at_once_lose_no_pin(tmp_path):
    project = Project(root=tmp_path / "project")
    project.root.mkdir()
    SOURCE_LOCK = Lock({SOURCE.package: SOURCE}, {})
    SOURCE_LOCK.write(project.lock_path)
    toolchains = {side: [toolchain_with_versions(tmp_path / "tc", f"{side}{n}")
                         for n in range(25)] for side in ("a", "b")}

    def record(i: int) -> None:
        for tc in toolchains["ab"[i]]:
            record_toolchain(tc, project, Lock.read(project.lock_path))

    assert run_in_processes(record, 2) == []
    lock = Lock.read(project.lock_path)
    assert len(lock.toolchain) == 50
    assert lock.packages == {SOURCE.package: SOURCE}


def test_editing_writes_back_only_a_change_and_updates_the_callers_copy(tmp_path):
    path = tmp_path / "rustkm.lock"
    Lock({}, {"a": "1"}).write(path)
    stale = Lock.read(path)
    with editing(path) as pins:  # another process pins meanwhile
        pins.toolchain["b"] = "2"
    with editing(path, stale) as pins:
        pins.toolchain["c"] = "3"
    assert stale.toolchain == {"a": "1", "b": "2", "c": "3"}
    assert Lock.read(path).toolchain == {"a": "1", "b": "2", "c": "3"}
    before = path.stat().st_mtime_ns
    with editing(path):
        pass
    assert path.stat().st_mtime_ns == before
    with pytest.raises(ZeroDivisionError), editing(path) as pins:
        pins.toolchain["d"] = "4"
        1 / 0  # noqa: B018 (a failure midway writes nothing)
    assert "d" not in Lock.read(path).toolchain


@needs_dpkg
def test_resolving_the_kernel_source_keeps_pins_written_after_the_caller_read_the_lock(
        tmp_path, fake_apt):
    tar_dir = tmp_path / "linux-source-7.2"
    tar_dir.mkdir()
    (tar_dir / "Makefile").write_text("VERSION = 7\nPATCHLEVEL = 2\nSUBLEVEL = 12\n")
    (tar_dir / "Kconfig").write_text("")
    subprocess.run(["tar", "-cJf", str(tmp_path / "src.tar.xz"), "-C", str(tmp_path),
                    "linux-source-7.2"], check=True)
    make_deb(fake_apt, "linux-source-7.2",
             {"usr/src/linux-source-7.2.tar.xz": (tmp_path / "src.tar.xz").read_bytes()})
    path = tmp_path / "rustkm.lock"
    Lock({}, {"debian-trixie/rustc": "rustc 1.85.1"}).write(path)
    read_earlier = Lock.read(path)
    meanwhile = Lock.read(path)  # what another process records in between
    meanwhile.toolchain["debian-sid/rustc"] = "rustc 1.97.1"
    meanwhile.write(path)

    source = debian_source(HOST, "7.2", read_earlier, path)

    assert source.version == "7.2.12"
    lock = Lock.read(path)
    assert lock.packages["linux-source-7.2"].version == "1.0-1"
    assert lock.toolchain == {"debian-trixie/rustc": "rustc 1.85.1",
                              "debian-sid/rustc": "rustc 1.97.1"}
    assert read_earlier == lock


@pytest.mark.parametrize("text,message", [
    ("", r"rustkm.lock is empty"),
    ("[toolchain\n", r"rustkm.lock is not valid TOML"),
    ("[toolchain]\nrustc = 1\n", r"rustkm.lock: toolchain.rustc must be a string, not a number"),
    ("toolchain = []\n", r"rustkm.lock: toolchain must be a table, not an array"),
    ("[packages.x]\n", r"rustkm.lock: unknown entry packages"),
    (('[package."stock/linux-source-7.2"]\npackage = "linux-source-7.2"\nversion = "7.2.13-1"\n'
     'suite = "sid"\n'), r'rustkm.lock: package."stock/linux-source-7.2" has no sha256'),
    ('[package.x]\npackage = "x"\nversion = 2\nsha256 = "ab"\nsuite = "sid"\n',
     r"rustkm.lock: package.x.version must be a string, not a number"),
    ((f'[package.x]\npackage = "x"\nversion = "1"\nsha256 = "{"ab" * 32}"\nsuite = "sid"\n'
     'url = "http://x"\n'), r"rustkm.lock: package.x.url is not a field of a package"),
    ('[package.x]\npackage = "x"\nversion = "1"\nsha256 = "abc"\nsuite = "sid"\n',
     r"rustkm.lock: package.x.sha256 is not a SHA256"),
    ("package = 3\n", r"rustkm.lock: package must be a table, not a number"),
    ('[package]\nx = "y"\n', r"rustkm.lock: package.x must be a table, not a string"),
])
def test_a_malformed_lock_is_an_error_naming_the_file_and_field(tmp_path, text, message):
    path = tmp_path / "rustkm.lock"
    path.write_text(text)
    with pytest.raises(RustkmError, match=message) as error:
        Lock.read(path)
    assert str(path) in str(error.value)
    assert "rustkm lock --update" in (error.value.hint or "")


def test_a_malformed_lock_stops_an_edit_instead_of_being_overwritten(tmp_path):
    path = tmp_path / "rustkm.lock"
    path.write_text("[toolchain\n")
    with pytest.raises(RustkmError, match="not valid TOML"), editing(path) as pins:
        pins.toolchain["x"] = "y"
    assert path.read_text() == "[toolchain\n"


def test_the_lock_is_written_readable_by_all_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "rustkm.lock"
    Lock({SOURCE.package: SOURCE}, {}).write(path)
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in tmp_path.iterdir() if p.name != "cache"] == ["rustkm.lock"]
    assert Lock.read(path).packages == {SOURCE.package: SOURCE}


def test_threads_editing_one_lock_lose_no_pin(tmp_path):
    path = tmp_path / "rustkm.lock"

    def pin(n: int) -> None:
        for i in range(10):
            with editing(path) as pins:
                pins.toolchain[f"{n}/{i}"] = str(os.getpid())

    threads = [threading.Thread(target=pin, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(Lock.read(path).toolchain) == 40


OLD_LAYOUT = f"""\
[toolchain]
"debian-trixie/rustc" = "rustc 1.85.1 (4eb161250 2025-03-15) (built from a source tarball)"
stock-release = "7.2.13+deb14-amd64"
stock-suite = "sid"
stock-toolchain-suite = "sid"

[package."linux-source-7.2"]
package = "linux-source-7.2"
version = "7.2.12-1~bpo13+1"
sha256 = "{"ab" * 32}"
suite = "trixie-backports"

[package."stock/linux-headers-7.2.13+deb14-amd64"]
package = "linux-headers-7.2.13+deb14-amd64"
version = "7.2.13-1"
sha256 = "{"cd" * 32}"
suite = "sid"

[package."stock/linux-source-7.2"]
package = "linux-source-7.2"
version = "7.2.13-1"
sha256 = "{"ef" * 32}"
suite = "sid"
"""


def test_a_lock_in_the_older_layout_is_read_as_the_debian_latest_lanes_pins(tmp_path):
    path = tmp_path / "rustkm.lock"
    path.write_text(OLD_LAYOUT)
    lock = Lock.read(path)
    assert lock.toolchain == {"debian-trixie/rustc": "rustc 1.85.1 (4eb161250 2025-03-15) "
                                                     "(built from a source tarball)"}
    assert lock.packages == {"linux-source-7.2": SOURCE}
    stock = lock.lanes["debian:latest"]
    assert stock.pins == {"release": "7.2.13+deb14-amd64", "suite": "sid",
                          "toolchain-suite": "sid"}
    assert stock.packages == {
        "linux-headers-7.2.13+deb14-amd64": LockedPackage(
            "linux-headers-7.2.13+deb14-amd64", "7.2.13-1", "cd" * 32, "sid"),
        "linux-source-7.2": LockedPackage("linux-source-7.2", "7.2.13-1", "ef" * 32, "sid")}
    assert lock.legacy


def test_the_first_edit_rewrites_an_older_lock_in_the_new_layout_losing_no_pin(tmp_path):
    path = tmp_path / "rustkm.lock"
    path.write_text(OLD_LAYOUT)
    migrated = Lock.read(path)
    with editing(path):
        pass  # nothing changed, but the layout is rewritten
    text = path.read_text()
    assert "stock-" not in text and '"stock/' not in text
    assert '[lanes."debian:latest"]\nrelease = "7.2.13+deb14-amd64"' in text
    assert '[lanes."debian:latest".package."linux-source-7.2"]' in text
    again = Lock.read(path)
    assert again == migrated and not again.legacy
    before = path.stat().st_mtime_ns
    with editing(path):
        pass
    assert path.stat().st_mtime_ns == before  # written once


def test_pins_already_in_a_lane_section_win_over_the_older_layouts(tmp_path):
    path = tmp_path / "rustkm.lock"
    path.write_text(OLD_LAYOUT + '\n[lanes."debian:latest"]\nrelease = "7.3-amd64"\n'
                                 'suite = "experimental"\n')
    stock = Lock.read(path).lanes["debian:latest"]
    assert stock.pins == {"release": "7.3-amd64", "suite": "experimental",
                          "toolchain-suite": "sid"}


def test_lanes_are_written_one_section_each_and_read_back(tmp_path):
    path = tmp_path / "rustkm.lock"
    lock = Lock({SOURCE.package: SOURCE}, {})
    lock.lane("debian:next").pins["release"] = "7.3-amd64"
    lock.lane("debian:next").packages["linux-source-7.3"] = LockedPackage(
        "linux-source-7.3", "7.3~rc7-1~exp1", "ab" * 32, "experimental")
    lock.lane("debian:latest")  # an empty section is not written
    lock.write(path)
    assert "debian:latest" not in path.read_text()
    assert Lock.read(path).lanes == {"debian:next": lock.lanes["debian:next"]}


@pytest.mark.parametrize("text,message", [
    ('[lanes]\nx = "y"\n', r"rustkm.lock: lanes.x must be a table, not a string"),
    ('[lanes."debian:next"]\nrelease = 3\n',
     r'rustkm.lock: lanes."debian:next".release must be a string, not a number'),
    ('[lanes."debian:next".package.x]\npackage = "x"\n',
     r'rustkm.lock: lanes."debian:next".package.x has no version'),
])
def test_a_malformed_lane_section_is_an_error_naming_the_field(tmp_path, text, message):
    path = tmp_path / "rustkm.lock"
    path.write_text(text)
    with pytest.raises(RustkmError, match=message):
        Lock.read(path)
