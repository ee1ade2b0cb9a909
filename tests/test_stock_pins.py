"""Stock lanes: which Debian kernel debian:latest, debian:next and debian:RELEASE resolve to,
each pinned in its own section of rustkm.lock, and what happens when Debian drops a pinned
package. apt answers from real excerpts of Debian's Packages indexes (tests/data/debian:
sid's 7.2.13 with an ABI number, experimental's 7.3~rc7 without one), nothing else is faked."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rustkm.debian import version_key
from rustkm.errors import RustkmError
from rustkm.kernel.source import DebianArchive
from rustkm.lockfile import Lock, LockedPackage
from rustkm.stock import (
    NEXT_SUITES,
    StockChoice,
    available_kernels,
    choose_kernel,
    pin_stock_lane,
    series_of,
)
from rustkm.toolchain import Toolchain

DATA = Path(__file__).parent / "data/debian"
INDEX = {"experimental": DATA / "Packages-experimental-linux", "sid": DATA / "Packages-sid-linux",
         "forky": None}


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RUSTKM_CACHE", str(tmp_path / "cache"))


def stanzas(path: Path | None) -> list[dict[str, str]]:
    if path is None:
        return []
    found = []
    for text in path.read_text().split("\n\n"):
        fields = dict(re.findall(r"^([A-Za-z0-9-]+): (.*)$", text, re.MULTILINE))
        if fields:
            found.append(fields)
    return found


class IndexArchive(DebianArchive):
    """DebianArchive whose apt-cache answers from a Packages excerpt, as apt-cache would
    with that suite alone in its sources (what DebianArchive.for_suite sets up)."""

    def __init__(self, suite: str, packages: list[dict[str, str]]) -> None:
        super().__init__(Toolchain("host", None), name=f"Debian {suite}")
        self.suite, self.packages, self.calls = suite, packages, 0

    def apt_cache(self, *args: str) -> str:
        self.calls += 1
        verb, rest = args[0], args[1:]
        if verb == "search":
            regex = re.compile(rest[-1])
            return "".join(f"{p['Package']} - {p.get('Description', '')}\n"
                           for p in self.packages if regex.search(p["Package"]))
        if verb == "madison":
            ours = sorted((p for p in self.packages if p["Package"] == rest[0]),
                          key=lambda p: version_key(p["Version"]), reverse=True)
            return "".join(f" {p['Package']} | {p['Version']} | http://deb.debian.org/debian "
                           f"{self.suite}/main amd64 Packages\n" for p in ours)
        if verb == "show":
            name, version = rest[0].split("=")
            for p in self.packages:
                if (p["Package"], p["Version"]) == (name, version):
                    return "".join(f"{k}: {v}\n" for k, v in p.items())
            return ""
        raise AssertionError(f"unexpected apt-cache {args}")


def archives(drop: tuple[str, ...] = ()) -> dict[str, IndexArchive]:
    """Debian as the excerpts show it, without the packages named in `drop` (gone)."""
    return {suite: IndexArchive(suite, [p for p in stanzas(INDEX[suite])
                                        if p["Package"] not in drop])
            for suite in NEXT_SUITES}


def test_both_spellings_of_a_release_are_found_and_nothing_else():
    found = available_kernels(archives())
    assert sorted(found, key=lambda c: c.suite) == [
        StockChoice("7.3-amd64", "experimental", "7.3~rc7-1~exp1"),
        StockChoice("7.2.13+deb14-amd64", "sid", "7.2.13-1")]


@pytest.mark.parametrize("spec,release", [
    ("latest", "7.2.13+deb14-amd64"), ("next", "7.3-amd64"),
    ("7.2.13+deb14-amd64", "7.2.13+deb14-amd64"), ("7.3-amd64", "7.3-amd64")])
def test_which_kernel_a_stock_lane_resolves_to(spec, release, tmp_path):
    lock = Lock({}, {})
    pinned = pin_stock_lane(spec, lock, tmp_path / "rustkm.lock", archives())
    assert pinned.release == release
    section = Lock.read(tmp_path / "rustkm.lock").lanes[f"debian:{spec}"]
    assert section.pins["release"] == release
    assert sorted(section.packages) == sorted(
        [f"linux-headers-{release}", f"linux-binary-{release}",
         f"linux-source-{series_of(release)}"])
    assert len({p.version for p in section.packages.values()}) == 1  # one upload of linux


def test_next_is_experimentals_7_3_with_its_real_hashes(tmp_path):
    pinned = pin_stock_lane("next", Lock({}, {}), tmp_path / "rustkm.lock", archives())
    assert (pinned.suite, pinned.series, pinned.headers.version) == (
        "experimental", "7.3", "7.3~rc7-1~exp1")
    assert pinned.binary.package == "linux-binary-7.3-amd64"
    assert pinned.source.package == "linux-source-7.3"
    assert re.fullmatch(r"[0-9a-f]{64}", pinned.binary.sha256)


def test_next_falls_back_to_sid_when_experimental_has_no_kernel(tmp_path):
    gone = archives(drop=("linux-headers-7.3-amd64",))
    assert pin_stock_lane("next", Lock({}, {}), None, gone).release == "7.2.13+deb14-amd64"


def test_the_newest_debian_version_wins_whatever_the_release_name_looks_like():
    # A 7.3 in sid later (a final release sorts after experimental's ~rc) and a 7.2.14.
    found = [StockChoice("7.3-amd64", "experimental", "7.3~rc7-1~exp1"),
             StockChoice("7.3-amd64", "sid", "7.3.1-1"),
             StockChoice("7.2.14+deb14-amd64", "sid", "7.2.14-1")]
    assert choose_kernel(found, "next", NEXT_SUITES).version == "7.3.1-1"
    assert choose_kernel(found[:1] + found[2:], "next", NEXT_SUITES).version == "7.3~rc7-1~exp1"
    assert choose_kernel(found, "7.2.14+deb14-amd64", NEXT_SUITES).suite == "sid"


def test_an_unknown_release_lists_the_available_ones():
    with pytest.raises(RustkmError, match="Debian has no kernel 7.1-amd64") as error:
        pin_stock_lane("7.1-amd64", Lock({}, {}), None, archives())
    assert "7.2.13+deb14-amd64, 7.3-amd64" in (error.value.hint or "")


def test_two_stock_lanes_keep_their_own_pins(tmp_path):
    path = tmp_path / "rustkm.lock"
    pin_stock_lane("latest", Lock.read(path), path, archives())
    pin_stock_lane("next", Lock.read(path), path, archives())
    lock = Lock.read(path)
    assert lock.lanes["debian:latest"].pins["release"] == "7.2.13+deb14-amd64"
    assert lock.lanes["debian:next"].pins["release"] == "7.3-amd64"
    assert "[lanes.\"debian:next\".package.\"linux-source-7.3\"]" in path.read_text()


def test_a_pinned_lane_asks_the_archive_nothing_while_its_debs_are_cached(tmp_path):
    path = tmp_path / "rustkm.lock"
    first = pin_stock_lane("next", Lock.read(path), path, archives())
    for pkg in (first.headers, first.binary, first.source):
        DebianArchive.cached(pkg).parent.mkdir(parents=True, exist_ok=True)
        DebianArchive.cached(pkg).write_bytes(b"")
    later = archives()
    assert pin_stock_lane("next", Lock.read(path), path, later) == first
    assert sum(a.calls for a in later.values()) == 0


def pinned_then_gone(tmp_path: Path, spec: str, old: str, release: str) -> Path:
    """A lock whose lane `spec` pins an upload of `release` that Debian no longer has."""
    path = tmp_path / "rustkm.lock"
    lock = Lock({}, {})
    section = lock.lane(f"debian:{spec}")
    section.pins.update(release=release, suite="experimental" if "~" in old else "sid",
                        **{"toolchain-suite": "sid"})
    for name in (f"linux-headers-{release}", f"linux-binary-{release}",
                 f"linux-source-{series_of(release)}"):
        section.packages[name] = LockedPackage(name, old, "ab" * 32, section.pins["suite"])
    lock.write(path)
    return path


@pytest.mark.parametrize("spec,old,release,now", [
    ("next", "7.3~rc6-1~exp1", "7.3-amd64", "7.3~rc7-1~exp1"),
    ("latest", "7.2.12-1", "7.2.12+deb14-amd64", "7.2.13-1")])
def test_a_moving_lane_whose_pins_left_the_archive_moves_and_says_so(tmp_path, capsys, spec,
                                                                     old, release, now):
    path = pinned_then_gone(tmp_path, spec, old, release)
    pinned = pin_stock_lane(spec, Lock.read(path), path, archives())
    assert pinned.headers.version == now
    said = capsys.readouterr().err
    assert (f"lane debian:{spec}: Debian no longer has linux-headers-{release} {old}, "
            f"linux-binary-{release} {old}, linux-source-{series_of(release)} {old} "
            "(pinned in rustkm.lock): resolving the lane again") in said
    assert f"lane debian:{spec}: pinned Debian's {pinned.release} {now}" in said
    section = Lock.read(path).lanes[f"debian:{spec}"]
    assert {p.version for p in section.packages.values()} == {now}
    assert "toolchain-suite" not in section.pins  # chosen again for the new kernel's rustc


def test_an_explicit_release_whose_pins_left_the_archive_is_an_error(tmp_path):
    path = pinned_then_gone(tmp_path, "7.3-amd64", "7.3~rc6-1~exp1", "7.3-amd64")
    before = path.read_text()
    with pytest.raises(RustkmError, match=r"lane debian:7.3-amd64: Debian no longer has "
                                          r"linux-headers-7.3-amd64 7.3~rc6-1~exp1, .*\(pinned "
                                          r"in rustkm.lock\)") as e:
        pin_stock_lane("7.3-amd64", Lock.read(path), path, archives())
    assert "rustkm lock --update --kernel debian:7.3-amd64" in (e.value.hint or "")
    assert path.read_text() == before
    # The update the message names moves the pin to the upload Debian has now.
    pinned = pin_stock_lane("7.3-amd64", Lock.read(path), path, archives(), update=True)
    assert pinned.headers.version == "7.3~rc7-1~exp1"


@pytest.mark.parametrize("older,newer", [
    ("7.2.13-1", "7.3~rc7-1~exp1"), ("7.3~rc7-1~exp1", "7.3~rc8-1~exp1"),
    ("7.3~rc9-1", "7.3~rc10-1"), ("7.3~rc7-1~exp1", "7.3-1"), ("7.3-1", "7.3.1-1"),
    ("7.2.12-1~bpo13+1", "7.2.12-1"), ("7.2.12-1", "7.2.12-1+b1"), ("9.9-9", "1:0.1-1"),
    ("1.0~~", "1.0~"), ("1.0", "1.0a"), ("1.0a", "1.0+")])
def test_debian_versions_order_as_dpkg_orders_them(older, newer):
    assert version_key(older) < version_key(newer)
    assert version_key(newer) == version_key(newer)
