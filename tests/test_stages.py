"""Fast tests of the pure parts of the stages: fragments, lock file, apt output, cpio, mirror."""

import os
import stat
from pathlib import Path

import pytest

from rustkm.cache import cache_key
from rustkm.debian import host_mirror
from rustkm.errors import RustkmError
from rustkm.initramfs import Newc
from rustkm.kernel.build import KernelBuild, build_key, discard_interrupted, ensure_kernel
from rustkm.kernel.config import (
    BASE_FRAGMENTS,
    Fragment,
    bundled_fragment,
    load_fragment,
    merge,
    missing,
    parse_config,
    render,
)
from rustkm.kernel.source import KernelSource, kernel_version, parse_apt_show, parse_madison
from rustkm.lockfile import Lock, LockedPackage
from rustkm.module import module_names
from rustkm.toolchain import Toolchain

DATA = Path(__file__).parent / "data"


def test_fragments_parse_set_and_unset_options():
    values = parse_config("CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=\"str\"\nCONFIG_D=12\n"
                          "# a comment\nnot a config line\n")
    assert values == {"A": "y", "B": "n", "C": '"str"', "D": "12"}


def test_later_fragments_win_and_overrides_are_reported():
    merged, overrides = merge([Fragment("one", "CONFIG_A=y\nCONFIG_B=y\n"),
                               Fragment("two", "# CONFIG_B is not set\nCONFIG_C=m\n")])
    assert merged == {"A": "y", "B": "n", "C": "m"}
    assert [(o.symbol, o.old, o.new, o.old_fragment, o.new_fragment) for o in overrides] == \
        [("B", "y", "n", "one", "two")]


def test_render_round_trips_through_parse():
    values = {"RUST": "y", "MODVERSIONS": "n", "NR_CPUS": "4"}
    assert parse_config(render(values)) == values


def test_missing_names_what_did_not_stick():
    final = {"RUST": "n", "MODULES": "y"}
    assert missing({"RUST": "y", "MODULES": "y", "MODVERSIONS": "n"}, final) == {
        "RUST": ("y", "n")}


def test_bundled_fragments_ask_for_rust_and_no_modversions():
    merged, overrides = merge([bundled_fragment(n) for n in BASE_FRAGMENTS])
    assert merged["RUST"] == "y" and merged["MODVERSIONS"] == "n" and merged["MODULES"] == "y"
    assert overrides == []


def test_debug_fragment_asks_for_the_debug_options():
    debug = bundled_fragment("debug").values
    for option in ("KASAN", "PROVE_LOCKING", "DEBUG_ATOMIC_SLEEP", "DEBUG_KMEMLEAK",
                   "RUST_DEBUG_ASSERTIONS", "RUST_OVERFLOW_CHECKS"):
        assert debug[option] == "y"


def test_unknown_fragment_is_a_clear_error(tmp_path):
    with pytest.raises(RustkmError, match="unknown config fragment 'nope'"):
        load_fragment("nope")
    with pytest.raises(RustkmError, match="does not exist"):
        load_fragment(str(tmp_path / "missing.config"))


def test_a_cached_kernel_from_another_checkout_is_reused_with_this_ones_fragments(tmp_path):
    # Another clone at another path built the same config: its stamp names its own fragment
    # file and build folder, both gone. The key hashes content, so the build is ours to reuse.
    tc, source = Toolchain("debian", None), KernelSource(tmp_path / "src", "7.2.12", "debian:x")
    here = tmp_path / "here.config"
    here.write_text("CONFIG_INPUT=y\n")
    fragments = [bundled_fragment("rust"), load_fragment(str(here))]
    build_dir = tmp_path / "kernels" / build_key(tc, source, fragments)
    build_dir.mkdir(parents=True)
    KernelBuild(build_dir.name, build_dir, source, "debian", "7.2.12",
                ("rust", str(tmp_path / "gone/lkmpg.config"))).save()
    stamp = build_dir / "rustkm-build.json"
    stamp.write_text(stamp.read_text().replace(str(build_dir), str(tmp_path / "gone/kernels")))

    build = ensure_kernel(tc, source, fragments, kernels_dir=tmp_path / "kernels")
    assert build.build_dir == build_dir
    assert build.fragments == ("rust", str(here))
    assert all(load_fragment(name) for name in build.fragments)


def test_a_killed_builds_half_made_targets_are_discarded(tmp_path):
    # kbuild writes .NAME.cmd after the whole recipe; a target newer than it was cut short.
    (tmp_path / "kernel").mkdir()
    done, cut, fresh = (tmp_path / "kernel" / n for n in ("fork.o", "exit.o", "cpu.o"))
    for target, cmd_first in ((done, False), (cut, True)):
        cmd = target.with_name(f".{target.name}.cmd")
        first, second = (cmd, target) if cmd_first else (target, cmd)
        first.write_text("x")
        second.write_text("x")
        os.utime(second, ns=(first.stat().st_mtime_ns + 10**9,) * 2)
    fresh.write_text("no .cmd yet: make redoes it anyway")
    assert discard_interrupted(tmp_path) == [cut]
    assert done.exists() and fresh.exists() and not cut.exists()


def test_madison_lists_versions_newest_first_with_their_suite():
    text = (DATA / "apt/madison-linux-source-7.2.txt").read_text()
    versions = parse_madison(text)
    assert versions[0] == ("7.2.12-1~bpo13+1", "trixie-backports")
    assert len(versions) >= 2


def test_apt_show_gives_sha256_of_the_first_stanza():
    fields = parse_apt_show((DATA / "apt/show-linux-source-7.2.txt").read_text())
    assert fields["Version"] == "7.2.12-1~bpo13+1"
    assert len(fields["SHA256"]) == 64


def test_lock_round_trip(tmp_path):
    path = tmp_path / "rustkm.lock"
    lock = Lock({"linux-source-7.2": LockedPackage("linux-source-7.2", "7.2.12-1~bpo13+1",
                                                   "ab" * 32, "trixie-backports")},
                {"rustc": "rustc 1.85.1"})
    lock.write(path)
    again = Lock.read(path)
    assert again.packages == lock.packages and again.toolchain == lock.toolchain
    assert Lock.read(tmp_path / "absent.lock").packages == {}


def test_the_committed_lock_pins_linux_source():
    lock = Lock.read(Path(__file__).parents[1] / "rustkm.lock")
    assert lock.packages["linux-source-7.2"].version.startswith("7.2.")


def test_cache_keys_are_stable_and_sensitive():
    assert cache_key("a", {"x": 1}) == cache_key("a", {"x": 1})
    assert cache_key("a", {"x": 1}) != cache_key("a", {"x": 2})


def test_host_mirror_reads_deb822_and_one_line_sources(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d/debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: x\n\n"
        "Types: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm\n")
    assert host_mirror(tmp_path) == "http://mirror.example/debian"
    (tmp_path / "sources.list").write_text("deb [arch=amd64] http://other.example/debian bookworm main\n")
    assert host_mirror(tmp_path) == "http://other.example/debian"
    assert host_mirror(tmp_path / "nothing") == "http://deb.debian.org/debian"


def test_kernel_version_reads_the_makefile(tmp_path):
    (tmp_path / "Kconfig").write_text("")
    (tmp_path / "Makefile").write_text("VERSION = 7\nPATCHLEVEL = 2\nSUBLEVEL = 12\nEXTRAVERSION =\n")
    assert kernel_version(tmp_path) == "7.2.12"
    with pytest.raises(RustkmError, match="not a Linux source tree"):
        kernel_version(tmp_path / "nowhere")


def test_module_names_come_from_kbuild(tmp_path):
    (tmp_path / "Kbuild").write_text("obj-m := one.o\nobj-m += two.o\none-y := a.o b.o\n")
    assert module_names(tmp_path) == ["one", "two"]
    with pytest.raises(RustkmError, match="no Kbuild"):
        module_names(tmp_path / "empty")


def parse_newc(data: bytes) -> list[tuple[str, int, bytes]]:
    entries, offset = [], 0
    while True:
        assert data[offset:offset + 6] == b"070701"
        fields = [int(data[offset + 6 + 8 * i: offset + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = fields[1], fields[6], fields[11]
        name_start = offset + 110
        name = data[name_start:name_start + namesize - 1].decode()
        body = name_start + namesize + (-(110 + namesize) % 4)
        entries.append((name, mode, data[body:body + size]))
        offset = body + size + (-size % 4)
        if name == "TRAILER!!!":
            return entries


def test_newc_archive_is_parseable_deterministic_and_has_parents():
    def make() -> bytes:
        archive = Newc()
        archive.file("/a/b/file", b"hello", 0o755)
        archive.symlink("/bin/sh", "busybox")
        archive.chardev("/dev/console", 5, 1)
        return archive.to_bytes()

    data = make()
    assert data == make()
    entries = {name: (mode, body) for name, mode, body in parse_newc(data)}
    assert stat.S_ISDIR(entries["a"][0]) and stat.S_ISDIR(entries["a/b"][0])
    assert entries["a/b/file"] == (stat.S_IFREG | 0o755, b"hello")
    assert entries["bin/sh"] == (stat.S_IFLNK | 0o777, b"busybox")
    assert stat.S_ISCHR(entries["dev/console"][0])
    assert len(data) % 4 == 0
