"""Cache entries under concurrency: many processes and threads at once, killed builders, hung
commands. The real functions run; only the network is faked (a builder callable, or fake
`apt-get`/`apt-cache` programs on PATH that hand out local .deb files). No VM, no kernel."""

from __future__ import annotations

import os
import signal
import textwrap
import threading
import time
from pathlib import Path

import pytest
from racing import FORK, install_fake_apt, make_deb, needs_dpkg, reads_during, run_in_processes

from rustkm import module as module_stage
from rustkm import toolchain as toolchain_stage
from rustkm.cache import publish_once, sha256_file, write_atomic
from rustkm.errors import RustkmError
from rustkm.initramfs import InitramfsSpec, build_initramfs, write_initramfs
from rustkm.kernel import source as source_stage
from rustkm.kernel.build import KernelBuild, _object_counts, record_steps
from rustkm.kernel.source import DebianArchive, KernelSource, extract_deb
from rustkm.lockfile import LockedPackage
from rustkm.module import build_module
from rustkm.toolchain import Toolchain, ensure_suite_toolchain

HOST = Toolchain("host", None)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RUSTKM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


# Initramfs images (issue item 10)

def initramfs_spec(tmp_path: Path) -> InitramfsSpec:
    busybox, agent = tmp_path / "busybox", tmp_path / "agent"
    busybox.write_bytes(os.urandom(3 << 20))  # big enough for writes to overlap
    agent.write_bytes(b"#!/bin/sh\n")
    return InitramfsSpec(busybox=busybox, files=(("/rustkm/agent", agent),))


def test_80_concurrent_initramfs_writers_never_show_a_reader_half_an_archive(tmp_path, cache):
    spec = initramfs_spec(tmp_path)
    expected = build_initramfs(spec)
    folder = cache / "store" / "initramfs"
    folder.mkdir(parents=True)
    done = threading.Event()
    seen: list[str] = []

    def reader() -> None:
        while not done.is_set():
            for path in folder.glob("*.cpio"):
                try:
                    data = path.read_bytes()
                except FileNotFoundError:
                    continue
                if data != expected:
                    seen.append(f"{path.name}: {len(data)} of {len(expected)} bytes")

    def four_processes_of_20_threads(i: int) -> None:
        barrier, failures = threading.Barrier(20), []

        def write() -> None:
            barrier.wait()
            try:
                write_initramfs(spec)
            except Exception as e:  # noqa: BLE001 (counted below)
                failures.append(e)

        threads = [threading.Thread(target=write) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if failures:
            raise RuntimeError(f"{len(failures)} of 20 writes failed: {failures[0]!r}")

    watcher = threading.Thread(target=reader)
    watcher.start()
    try:
        errors = run_in_processes(four_processes_of_20_threads, 4)
    finally:
        done.set()
        watcher.join()
    assert errors == []
    assert seen == []
    assert [p.read_bytes() == expected for p in folder.iterdir()] == [True]  # no temporaries


# publish_once (issue item 12)

def slow_builder(log: Path):
    """A builder that writes its entry in pieces and notes each call in `log`."""
    def build(private: Path) -> None:
        with log.open("a") as f:
            f.write(f"{os.getpid()}\n")
        with private.open("wb") as f:
            for _ in range(10):
                f.write(b"x" * 1000)
                f.flush()
                time.sleep(0.02)
    return build


def test_two_processes_publishing_one_entry_build_it_once_and_both_get_it_whole(tmp_path):
    dest, log = tmp_path / "entry", tmp_path / "builds"

    def publish(i: int) -> None:
        got = publish_once(dest, "the entry", slow_builder(log))
        assert got.read_bytes() == b"x" * 10000

    assert run_in_processes(publish, 2) == []
    assert len(log.read_text().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["builds", "entry", "entry.lock"]


def test_a_killed_builders_private_folder_is_removed_by_the_next_builder(tmp_path):
    dest, started = tmp_path / "tree", tmp_path / "started"

    def build_then_hang(private: Path) -> None:
        private.mkdir()
        (private / "half").write_text("half of it")
        started.write_text("")
        time.sleep(600)

    killed = FORK.Process(target=publish_once, args=(dest, "the tree", build_then_hang))
    killed.start()
    while not started.exists():
        time.sleep(0.01)
    [leftover] = [p for p in tmp_path.iterdir() if p.name.startswith("tree.partial-")]
    os.kill(killed.pid, signal.SIGKILL)
    killed.join()

    def build(private: Path) -> None:
        private.mkdir()
        (private / "whole").write_text("all of it")

    assert publish_once(dest, "the tree", build) == dest
    assert [p.name for p in dest.iterdir()] == ["whole"]
    assert not leftover.exists()
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]


def test_a_failed_build_leaves_nothing_and_the_next_call_builds_again(tmp_path):
    dest = tmp_path / "file"

    def fail(private: Path) -> None:
        private.write_text("half")
        raise RustkmError("the network went away")

    with pytest.raises(RustkmError, match="network went away"):
        publish_once(dest, "the file", fail)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.lock"]
    publish_once(dest, "the file", lambda private: private.write_text("whole"))
    assert dest.read_text() == "whole"


def test_an_entry_that_is_not_ready_is_replaced(tmp_path):
    # e.g. a folder an older rustkm extracted without its completion marker
    dest = tmp_path / "headers"
    dest.mkdir()
    (dest / "half-extracted").write_text("")

    def extract(private: Path) -> None:
        private.mkdir()
        (private / ".rustkm-complete").write_text("")

    publish_once(dest, "the headers", extract, ready=lambda d: (d / ".rustkm-complete").exists())
    assert [p.name for p in dest.iterdir()] == [".rustkm-complete"]


def test_builds_finishing_at_once_lose_no_step_count(tmp_path):
    counts = tmp_path / "object-counts.json"
    record_steps(counts, "resumed", 1500)

    def record(i: int) -> None:
        for n in range(25):
            record_steps(counts, f"kernel-{i}-{n}", 1000 + n)
        record_steps(counts, "resumed", 200 + i)  # a resumed build's fewer steps

    errors: list[str] = []
    seen = reads_during(lambda: len(_object_counts(counts)),
                        lambda: errors.extend(run_in_processes(record, 4)))
    assert errors == []
    final = _object_counts(counts)
    assert len(final) == 101 and final["resumed"] == 1500
    assert all(final[f"kernel-{i}-{n}"] == 1000 + n for i in range(4) for n in range(25))
    assert seen and min(seen) >= 1  # a reader never saw an empty or torn file


def test_write_atomic_replaces_a_file_whole_for_every_reader(tmp_path):
    path = tmp_path / "stamp.json"
    versions = [bytes([65 + i]) * (1 << 20) for i in range(4)]
    write_atomic(path, versions[0])

    def writer(i: int) -> None:
        for n in range(40):
            write_atomic(path, versions[n % 4])

    errors: list[str] = []
    reads = reads_during(lambda: path.read_bytes() in versions,
                         lambda: errors.extend(run_in_processes(writer, 2)))
    assert errors == []
    assert reads and all(reads)
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in tmp_path.iterdir()] == ["stamp.json"]


# Downloads and .deb extraction (issue item 9), with apt faked on PATH

@pytest.fixture
def fake_apt(tmp_path, monkeypatch):
    return install_fake_apt(tmp_path, monkeypatch)


@needs_dpkg
def test_two_processes_downloading_one_package_both_get_it_checked(fake_apt, cache):
    deb = make_deb(fake_apt, "linux-headers-test", {"usr/src/h": os.urandom(1 << 20)})
    pkg = DebianArchive(HOST).resolve("linux-headers-test")
    assert pkg.sha256 == sha256_file(deb)

    def download(i: int) -> None:
        got = DebianArchive(HOST).download(pkg)
        assert sha256_file(got) == pkg.sha256

    assert run_in_processes(download, 2) == []
    debs = cache / "store" / "debs"
    assert sorted(p.name for p in debs.iterdir() if not p.name.endswith(".lock")) == [
        f"linux-headers-test_1.0-1_{pkg.sha256[:12]}.deb"]


@needs_dpkg
def test_a_download_with_another_sha256_is_refused_and_leaves_nothing(fake_apt, cache):
    make_deb(fake_apt, "linux-headers-test", {"usr/src/h": b"one"})
    pkg = DebianArchive(HOST).resolve("linux-headers-test")
    changed = LockedPackage(pkg.package, pkg.version, "0" * 64, pkg.suite)
    with pytest.raises(RustkmError, match="the lock says 0000"):
        DebianArchive(HOST).download(changed)
    assert [p.name for p in (cache / "store" / "debs").iterdir() if ".lock" not in p.name] == []


@needs_dpkg
def test_processes_extracting_one_deb_at_once_all_see_it_whole(tmp_path):
    files = {f"usr/src/linux-headers-x/f{i}": b"x" * 100 for i in range(1500)}
    deb = make_deb(tmp_path, "linux-headers-x", files)
    dest = tmp_path / "stock" / "headers"

    def extract(i: int) -> None:
        got = extract_deb(HOST, deb, dest)
        for _ in range(2):  # and it stays whole while the others finish
            assert len(list((got / "usr/src/linux-headers-x").iterdir())) == 1500
            assert (got / ".rustkm-complete").exists()
            time.sleep(0.3)

    assert run_in_processes(extract, 3) == []


# Timeouts (issue item 13)

def test_a_command_past_its_timeout_is_stopped_with_what_it_started():
    start = time.monotonic()
    with pytest.raises(RustkmError, match=r"sh -c sleep 60 & sleep 60 did not finish within "
                                          r"0\.5 s and was stopped"):
        HOST.run(["sh", "-c", "sleep 60 & sleep 60"], timeout=0.5)
    assert time.monotonic() - start < 10  # the background sleep held no pipe open


def test_a_hung_apt_get_update_ends_in_an_error_naming_it(fake_apt, monkeypatch):
    monkeypatch.setattr(source_stage, "APT_TIMEOUT", 0.5)
    monkeypatch.setenv("FAKE_APT_HANG", "update")
    with pytest.raises(RustkmError, match="apt-get -q update did not finish within 0.5 s"):
        DebianArchive(HOST).versions("linux-source-7.2")


def test_a_hung_module_build_ends_in_an_error_naming_it(tmp_path, monkeypatch):
    monkeypatch.setattr(module_stage, "MODULE_BUILD_TIMEOUT", 1)
    kernel_dir, folder = tmp_path / "kernel", tmp_path / "hello"
    kernel_dir.mkdir()
    (kernel_dir / "Makefile").write_text("all:\n\tsleep 60\n")
    folder.mkdir()
    (folder / "Kbuild").write_text("obj-m := hello.o\n")
    kernel = KernelBuild("k", kernel_dir, KernelSource(tmp_path, "7.2.0", "test"), "host",
                         "7.2.0", ())
    with pytest.raises(RustkmError, match=r"make -C .*kernel M=.*hello .*did not finish "
                                          r"within 1 s and was stopped"):
        build_module(HOST, kernel, folder)


@pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/bin/bwrap").exists(),
                    reason="the toolchain is made as root, with bubblewrap")
def test_a_hung_mmdebstrap_ends_in_an_error_and_leaves_no_toolchain(tmp_path, monkeypatch,
                                                                    cache):
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    (bin_dir / "mmdebstrap").write_text(textwrap.dedent("""\
        #!/bin/sh
        echo "I: pretending to download"
        mkdir -p "$(echo "$@" | tr ' ' '\\n' | grep partial)"
        sleep 600
        """))
    (bin_dir / "mmdebstrap").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setattr(toolchain_stage, "MMDEBSTRAP_TIMEOUT", 1)
    start = time.monotonic()
    with pytest.raises(RustkmError, match="mmdebstrap did not finish creating the toolchain "
                                          "within 1 s"):
        ensure_suite_toolchain("testing", ["busybox-static"])
    assert time.monotonic() - start < 30
    assert sorted(p.name for p in (cache / "toolchain" / "testing").iterdir()) == ["root.lock"]
