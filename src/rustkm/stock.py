"""The stock-kernel lane: Rust modules for a distribution's own kernel, without building one.

Debian's 7.2 kernels are built with CONFIG_RUST=y, but linux-headers ships none of the Rust
build metadata. This lane regenerates it exactly: the kernel's .config and Module.symvers from
linux-headers, the same version's linux-source, and a toolchain from the Debian suite whose
rustc prints exactly the kernel's CONFIG_RUSTC_VERSION_TEXT (Rust crate hashes, and so every
Rust symbol name, depend on that string); then `make modules_prepare` with the distribution's
compiler and KERNELRELEASE. The VM boots the distribution's own vmlinuz.

Lanes: debian:latest (sid's newest), debian:next (the newest of all, experimental included:
7.3~rc7 as `linux-headers-7.3-amd64`, its release named without an ABI number) and
debian:RELEASE, each pinned in its own section of rustkm.lock. Debian drops old uploads: a
moving lane whose pins have gone resolves again (and says so); an explicit release stops with
the command that re-pins it.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from rustkm.arch import Arch, host_arch
from rustkm.cache import cache_key, locked
from rustkm.debian import version_key
from rustkm.errors import RustkmError
from rustkm.guest_busybox import guest_busybox
from rustkm.kernel.build import KernelBuild, out_of_tree_make
from rustkm.kernel.config import parse_config
from rustkm.kernel.source import DebianArchive, KernelSource, extract_deb, fetch_source
from rustkm.lockfile import LanePins, Lock, LockedPackage, editing
from rustkm.log import say, step
from rustkm.toolchain import Toolchain, ensure_suite_toolchain, ensure_toolchain, store_dir

# Suites a matching toolchain comes from, and where `latest` looks, newest first.
SUITES = ("sid", "forky")
# Where `next` and an explicit release look: experimental holds only what was uploaded there
# (no toolchain of its own), so its kernels are built with a toolchain from SUITES.
NEXT_SUITES = ("experimental", *SUITES)
MOVING = ("latest", "next")
FLAVOUR = "amd64"  # the host's; a lane of another architecture uses its own (Arch.debian)
STOCK_MEMORY_MB = 1024


def _release_pattern(flavour: str) -> re.Pattern[str]:
    """7.2.13+deb14-amd64 (an ABI number), or 7.3-amd64 (experimental's 7.3 names, without
    one), from the name of its headers package."""
    return re.compile(r"^linux-headers-(\d+\.\d+(?:\.\d+\+deb\d+)?-" + flavour + ")$")


def _headers_search(flavour: str) -> str:
    return r"^linux-headers-[0-9.]+(\+deb[0-9]+)?-" + flavour + "$"


@dataclass(frozen=True)
class StockToolchainNeeds:
    """What the kernel's .config says it was built with."""

    rustc: str  # CONFIG_RUSTC_VERSION_TEXT, exactly
    cc: str  # CONFIG_CC_VERSION_TEXT
    bindgen: str  # CONFIG_BINDGEN_VERSION_TEXT

    @classmethod
    def from_config(cls, config: dict[str, str]) -> StockToolchainNeeds:
        def text(symbol: str) -> str:
            return config.get(symbol, "").strip('"')

        needs = cls(text("RUSTC_VERSION_TEXT"), text("CC_VERSION_TEXT"),
                    text("BINDGEN_VERSION_TEXT"))
        if config.get("RUST") != "y" or not needs.rustc:
            raise RustkmError("this kernel is not built with CONFIG_RUST=y: it cannot load Rust "
                              "modules", hint="run `rustkm doctor --config` on its .config")
        return needs

    @property
    def compiler(self) -> str:
        """The C compiler command, e.g. x86_64-linux-gnu-gcc-16."""
        return self.cc.split()[0]

    @property
    def compiler_package(self) -> str:
        return re.sub(r"^[a-z0-9_]+-linux-gnu-", "", self.compiler)

    @property
    def rustc_version(self) -> str:
        return self.rustc.split()[1]

    @property
    def packages(self) -> tuple[str, ...]:
        return self.packages_for(host_arch())

    def cross_package(self, arch: Arch) -> str:
        """The package of the kernel's C compiler on this host: gcc-15 for the host's own
        architecture, gcc-15-aarch64-linux-gnu (Debian's cross compiler) for arm64."""
        return self.compiler_package if arch.is_host else \
            f"{self.compiler_package}-{arch.triplet}"

    def packages_for(self, arch: Arch) -> tuple[str, ...]:
        """The toolchain of a lane of `arch`: the kernel's rustc and compiler (a cross one, and
        the same version natively for kbuild's host tools and the guest's helpers, with the
        target's static C library), QEMU for the target and busybox."""
        # dtc and fdtoverlay: arm64 guests boot from a device tree that overlays extend;
        # clippy: modules only another architecture builds are linted there.
        cross = () if arch.is_host else (self.cross_package(arch), f"libc6-dev-{arch.debian}-cross",
                                         "device-tree-compiler", "rust-clippy")
        return ("rustc", "rust-src", "bindgen", self.compiler_package, *cross, "make", "flex",
                "bison", "bc", "libelf-dev", "libssl-dev", "python3", "kmod", "libclang-dev",
                "clang", "llvm", "lld", "dwarves", "cpio", "xz-utils", host_arch().qemu_package,
                *(() if arch.is_host else (arch.qemu_package,)), "busybox-static",
                "ca-certificates")

    def host_compiler(self) -> str:
        """The native compiler of the kernel compiler's version, e.g. gcc-15."""
        return self.compiler_package


def upstream_version(debian_version: str) -> str:
    """1.97.1 from 1.97.1+dfsg1-1, 0.72.1 from 0.72.1-1+b3 (no epoch, no Debian revision)."""
    version = debian_version.split(":", 1)[-1]
    return re.split(r"[+~-]", version, maxsplit=1)[0]


def release_key(release: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", release))


@dataclass(frozen=True)
class StockChoice:
    """A stock kernel found in the archive: its release, suite and headers' version."""

    release: str  # e.g. 7.2.13+deb14-amd64 or 7.3-amd64
    suite: str
    version: str  # the Debian version of its packages, e.g. 7.3~rc7-1~exp1


def lane_name(spec: str, arch: Arch | None = None) -> str:
    """debian:SPEC, or debian:SPEC@ARCH for another architecture than the host's (its own
    section of rustkm.lock)."""
    return f"debian:{spec}" if arch is None or arch.is_host else f"debian:{spec}@{arch.name}"


def search_suites(spec: str) -> tuple[str, ...]:
    return SUITES if spec == "latest" else NEXT_SUITES


def available_kernels(archives: dict[str, DebianArchive],
                      flavour: str = FLAVOUR) -> list[StockChoice]:
    """Every stock kernel (release, suite, version) the archives list, in no order."""
    found = []
    release = _release_pattern(flavour)
    for suite, archive in archives.items():
        for name in archive.package_names(_headers_search(flavour)):
            match = release.match(name)
            if match:
                found += [StockChoice(match.group(1), suite, version)
                          for version, _ in archive.versions(name)]
    return found


def choose_kernel(found: list[StockChoice], spec: str, suites: tuple[str, ...],
                  flavour: str = FLAVOUR) -> StockChoice:
    """The newest kernel (by Debian version) of the named release, or of all of them when
    `spec` is latest or next."""
    if not found:
        raise RustkmError(f"no Debian {flavour} kernel headers found in {', '.join(suites)}")
    wanted = found if spec in MOVING else [c for c in found if c.release == spec]
    if not wanted:
        releases = sorted({c.release for c in found}, key=release_key)
        raise RustkmError(f"Debian has no kernel {spec} in {', '.join(suites)}",
                          hint=f"available: {', '.join(releases)}")
    # Newest first; between equal versions, the suite listed first.
    return max(reversed(wanted), key=lambda c: (version_key(c.version), -suites.index(c.suite)))


def _pin(lane: LanePins, archive: DebianArchive, package: str,
         version: str | None) -> LockedPackage:
    pinned = lane.packages.get(package)
    if pinned is None or (version is not None and pinned.version != version):
        pinned = archive.resolve(package, version)
        lane.packages[package] = pinned
    return pinned


def choose_toolchain_suite(archives: dict[str, DebianArchive],
                           needs: StockToolchainNeeds, arch: Arch | None = None) -> str:
    """The first suite whose rustc and C compiler (a cross compiler for another
    architecture) have the kernel's versions."""
    seen = []
    compiler = needs.cross_package(arch or host_arch())
    for suite, archive in archives.items():
        rustc = [v for v, _ in archive.versions("rustc")]
        compilers = archive.versions(compiler)
        seen.append(f"{suite}: rustc {', '.join(rustc) or 'none'}, "
                    f"{compiler} {'yes' if compilers else 'no'}")
        if any(upstream_version(v) == needs.rustc_version for v in rustc) and compilers:
            return suite
    raise RustkmError(
        f"no reachable Debian suite has the toolchain this kernel was built with "
        f"({needs.rustc}; {needs.cc})",
        details="\n".join(seen),
        hint="a module built with another rustc would not load (its Rust symbol names carry "
             "a hash of the rustc version); pick another kernel release")


def check_toolchain(tc: Toolchain, needs: StockToolchainNeeds) -> None:
    rustc = tc.run(["rustc", "--version"]).stdout.strip()
    if rustc != needs.rustc:
        raise RustkmError(
            "the toolchain's rustc is not the one the kernel was built with",
            details=f"kernel: {needs.rustc}\ntoolchain: {rustc}",
            hint="modules built with it would refer to Rust symbols the kernel does not export; "
                 "`rustkm lock --update` may move to a matching kernel")
    cc = tc.run([needs.compiler, "--version"]).stdout.splitlines()[0].strip()
    if cc != needs.cc:
        say(f"stock kernel: C compiler differs slightly (kernel: {needs.cc}; toolchain: {cc})")
    bindgen = tc.run(["bindgen", "--version"]).stdout.strip()
    if needs.bindgen and bindgen != needs.bindgen:
        say(f"stock kernel: bindgen differs (kernel: {needs.bindgen}; toolchain: {bindgen})")


@dataclass(frozen=True)
class StockPins:
    """What a stock lane is pinned to: the packages to fetch and the toolchain's suite."""

    release: str
    suite: str
    headers: LockedPackage
    binary: LockedPackage
    source: LockedPackage
    toolchain_suite: str | None  # None until the headers' .config has been read

    @property
    def series(self) -> str:
        return series_of(self.release)


def series_of(release: str) -> str:
    """7.3 from 7.3-amd64, 7.2 from 7.2.13+deb14-amd64 (linux-source-SERIES)."""
    match = re.match(r"\d+\.\d+", release)
    if not match:
        raise RustkmError(f"{release!r} is not a kernel release")
    return match.group(0)


def pin_stock_lane(spec: str, lock: Lock, lock_path: Path | None,
                   archives: dict[str, DebianArchive], update: bool = False,
                   arch: Arch | None = None) -> StockPins:
    """The packages of stock lane debian:SPEC, from its section of the lock, or resolved
    (and recorded there) when it has none, when `update`, or when a pinned package has left
    the archive and the lane is a moving one (latest, next). An explicit release whose
    pinned packages are gone is an error naming them and the command that re-pins."""
    lane = lane_name(spec, arch)
    # Everything is pinned under the lock on rustkm.lock, from the read to the write: two
    # processes (pytest-xdist workers) pin the same versions and lose none of each other's.
    with editing(lock_path, lock) as pins:
        section = pins.lane(lane)
        pinned = None if update else _pinned(section, spec)
        if pinned is not None:
            gone = [p for p in (pinned.headers, pinned.binary, pinned.source)
                    if not _still_there(archives[p.suite] if p.suite in archives
                                        else archives[pinned.suite], p)]
            what = ", ".join(f"{p.package} {p.version}" for p in gone)
            where = lock_path.name if lock_path else "rustkm.lock"
            if gone and spec not in MOVING:
                raise RustkmError(
                    f"lane {lane}: Debian no longer has {what} (pinned in {where})",
                    hint=f"`rustkm lock --update --kernel {lane}` pins what the archive has "
                         "now (a release without an ABI number, such as 7.3-amd64, moves to "
                         "its newest upload), or use a moving lane: debian:latest, debian:next")
            if gone:
                say(f"lane {lane}: Debian no longer has {what} (pinned in {where}): "
                    "resolving the lane again")
                pinned = None
        if pinned is None:
            pinned = _resolve(spec, section, archives, lane, (arch or host_arch()).debian)
        return pinned


def _pinned(section: LanePins, spec: str) -> StockPins | None:
    release, suite = section.pins.get("release"), section.pins.get("suite")
    if not release or not suite or (spec not in MOVING and release != spec):
        return None
    try:
        series = series_of(release)
    except RustkmError:
        return None
    packages = [section.packages.get(f"{kind}-{release}") for kind in ("linux-headers",
                                                                         "linux-binary")]
    source = section.packages.get(f"linux-source-{series}")
    if packages[0] is None or packages[1] is None or source is None:
        return None
    return StockPins(release, suite, packages[0], packages[1], source,
                     section.pins.get("toolchain-suite"))


def _still_there(archive: DebianArchive, pkg: LockedPackage) -> bool:
    """A package whose .deb is in the cache needs nothing from the archive; otherwise its
    pinned version must still be listed."""
    if archive.cached(pkg).exists():
        return True
    return any(version == pkg.version for version, _ in archive.versions(pkg.package))


def _resolve(spec: str, section: LanePins, archives: dict[str, DebianArchive],
             lane: str, flavour: str = FLAVOUR) -> StockPins:
    suites = search_suites(spec)
    choice = choose_kernel(available_kernels({s: archives[s] for s in suites}, flavour), spec,
                           suites, flavour)
    archive = archives[choice.suite]
    before = section.pins.get("release"), section.packages.get(f"linux-headers-{choice.release}")
    section.packages.clear()
    headers = _pin(section, archive, f"linux-headers-{choice.release}", choice.version)
    binary = _pin(section, archive, f"linux-binary-{choice.release}", headers.version)
    series = series_of(choice.release)
    source = _pin(section, archive, f"linux-source-{series}",
                  _source_version(archive, series, headers.version, choice))
    section.pins.clear()
    section.pins.update(release=choice.release, suite=choice.suite)
    was = f" (was {before[0]} {before[1].version})" if before[0] and before[1] else ""
    if before[1] is None or before[1].version != headers.version:
        say(f"lane {lane}: pinned Debian's {choice.release} {headers.version} "
            f"({choice.suite}){was}")
    return StockPins(choice.release, choice.suite, headers, binary, source, None)


def _archives(apt_tc: Toolchain, arch: Arch) -> dict[str, DebianArchive]:
    return {suite: DebianArchive.for_suite(apt_tc, suite, arch.debian) for suite in NEXT_SUITES}


def lock_stock_lane(spec: str, lock_path: Path, update: bool = False,
                    arch: Arch | None = None) -> StockPins:
    """`rustkm lock [--update] --kernel debian:SPEC`: the lane's pins, resolved again with
    `update` (a moving lane to the newest kernel, a release to its newest upload)."""
    arch = arch or host_arch()
    return pin_stock_lane(spec, Lock.read(lock_path), lock_path,
                          _archives(ensure_toolchain(), arch), update, arch)


def prepare_stock_kernel(spec: str, lock: Lock, lock_path: Path | None,
                         update: bool = False,
                         arch: Arch | None = None) -> tuple[Toolchain, KernelBuild]:
    """`spec`: 'latest' (sid's newest stock kernel), 'next' (the newest one, experimental
    included) or a release such as 7.2.13+deb14-amd64 or 7.3-amd64. Each is a lane of its own
    (debian:SPEC, debian:SPEC@ARCH on another architecture) with its own section in
    rustkm.lock. Another architecture's modules are cross-built with Debian's cross compiler
    of the kernel's gcc version; its guest boots under QEMU's TCG."""
    arch = arch or host_arch()
    apt_tc = ensure_toolchain()
    archives = _archives(apt_tc, arch)
    host_archives = archives if arch.is_host else _archives(apt_tc, host_arch())
    pinned = pin_stock_lane(spec, lock, lock_path, archives, update, arch)
    release, archive = pinned.release, archives[pinned.suite]
    home = store_dir() / "stock" / release
    headers = extract_deb(apt_tc, archive.download(pinned.headers), home / "headers")
    header_tree = headers / "usr" / "src" / f"linux-headers-{release}"
    config = parse_config((header_tree / ".config").read_text())
    needs = StockToolchainNeeds.from_config(config)

    toolchain_suite = pinned.toolchain_suite
    if toolchain_suite is None:
        toolchain_suite = choose_toolchain_suite({s: host_archives[s] for s in SUITES}, needs,
                                                 arch)
        with editing(lock_path, lock) as pins:
            section = pins.lane(lane_name(spec, arch))
            if section.pins.get("release") == release:
                section.pins["toolchain-suite"] = toolchain_suite

    tc = ensure_suite_toolchain(toolchain_suite, needs.packages_for(arch),
                                variant="" if arch.is_host else arch.name)
    check_toolchain(tc, needs)
    image = extract_deb(apt_tc, archive.download(pinned.binary), home / "image")
    vmlinuz = _find_vmlinuz(image, release)
    key = cache_key(needs.rustc, needs.cc, pinned.source, pinned.headers)
    build = _prepare_metadata(tc, lambda: fetch_source(archive, pinned.source, pinned.series),
                              release, needs, header_tree, vmlinuz, key, arch)
    if not arch.is_host:
        busybox = guest_busybox(lane_name(spec, arch), lock, lock_path, archive, apt_tc, arch)
        build = replace(build, busybox=str(busybox))
    return tc, build


def _source_version(archive: DebianArchive, series: str, version: str,
                    choice: StockChoice) -> str:
    """linux-source-SERIES of the headers' own Debian version (one source package builds
    both), else of the same upstream version."""
    versions = [v for v, _ in archive.versions(f"linux-source-{series}")]
    if version in versions:
        return version
    same = [v for v in versions if upstream_version(v) == upstream_version(version)]
    if not same:
        raise RustkmError(f"Debian {choice.suite} has no linux-source-{series} {version} for "
                          f"kernel {choice.release}",
                          hint="image, headers and source must be one version")
    return max(same, key=version_key)


def _find_vmlinuz(image: Path, release: str) -> Path:
    for candidate in (image / "usr/lib/modules" / release / "vmlinuz",
                      image / "boot" / f"vmlinuz-{release}"):
        if candidate.is_file():
            return candidate
    raise RustkmError(f"the linux-binary package of {release} holds no vmlinuz where expected",
                      hint=f"look under {image}")


def _prepare_metadata(tc: Toolchain, get_source: Callable[[], KernelSource], release: str,
                      needs: StockToolchainNeeds, header_tree: Path, vmlinuz: Path,
                      key: str, arch: Arch) -> KernelBuild:
    """The finished Rust metadata (KERNELRELEASE, the kernel's own compiler), made once; the
    source is fetched only when it is made."""
    build_dir = store_dir() / "stock" / release / f"build-{key}"
    if KernelBuild.finished(build_dir):
        return KernelBuild.load(build_dir)
    source = get_source()
    if arch.is_host:
        make_vars: tuple[str, ...] = (f"CC={needs.compiler}", f"HOSTCC={needs.compiler}",
                                      f"KERNELRELEASE={release}")
    else:
        # kbuild's host programs (fixdep, modpost) with the same gcc version, built natively.
        make_vars = (f"ARCH={arch.kernel}", f"CROSS_COMPILE={arch.triplet}-",
                     f"CC={needs.compiler}", f"HOSTCC={needs.host_compiler()}",
                     f"KERNELRELEASE={release}")
    build = KernelBuild(key=f"stock-{key}", build_dir=build_dir, source=source,
                        toolchain=tc.name, release=release, fragments=(), make_vars=make_vars,
                        image_path=str(vmlinuz), memory_mb=STOCK_MEMORY_MB, arch=arch.name)
    # Built in place, under its lock: kbuild writes the O= folder's own path into the
    # Makefile it generates there, so a folder built elsewhere and renamed is not usable.
    # The stamp, written last (atomically), is what publishes it; a folder without one is
    # what a failed or killed attempt left, and is started again.
    with locked(build_dir, f"the Rust metadata for {release}"):
        if KernelBuild.finished(build_dir):
            return KernelBuild.load(build_dir)
        if build_dir.exists():
            shutil.rmtree(build_dir)
        build_dir.mkdir(parents=True)
        shutil.copy(header_tree / ".config", build_dir / ".config")
        argv = out_of_tree_make(source.tree, build_dir, *make_vars)
        with step(f"regenerating the Rust metadata of {release} (modules_prepare)"):
            tc.run([*argv, "olddefconfig"], cwd=build_dir, binds=[source.tree])
            final = parse_config((build_dir / ".config").read_text())
            if final.get("RUST") != "y":
                raise RustkmError(f"CONFIG_RUST did not survive olddefconfig for {release}",
                                  hint="the toolchain differs from the kernel's; see "
                                       "`rustkm doctor --config` on the headers' .config")
            tc.run([*argv, "-j2", "modules_prepare"], cwd=build_dir, binds=[source.tree])
        # modpost needs the distribution's exports: without them every symbol is "undefined".
        shutil.copy(header_tree / "Module.symvers", build_dir / "Module.symvers")
        build.save()
    return KernelBuild.load(build_dir)
