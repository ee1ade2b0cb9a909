"""The stock-kernel lane: Rust modules for a distribution's own kernel, without building one.

Debian's 7.2 kernels are built with CONFIG_RUST=y, but linux-headers ships none of the Rust
build metadata. This lane regenerates it exactly: the kernel's .config and Module.symvers from
linux-headers, the same version's linux-source, and a toolchain from the Debian suite whose
rustc prints exactly the kernel's CONFIG_RUSTC_VERSION_TEXT (Rust crate hashes, and so every
Rust symbol name, depend on that string); then `make modules_prepare` with the distribution's
compiler and KERNELRELEASE. The VM boots the distribution's own vmlinuz.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from rustkm.cache import cache_key, locked, publish_once
from rustkm.errors import RustkmError
from rustkm.kernel.build import KernelBuild, out_of_tree_make
from rustkm.kernel.config import parse_config
from rustkm.kernel.source import DebianArchive, fetch_source
from rustkm.lockfile import Lock, LockedPackage, editing
from rustkm.log import say, step
from rustkm.toolchain import Toolchain, ensure_suite_toolchain, ensure_toolchain, store_dir

# Suites searched for the kernel and for a matching toolchain, newest first.
SUITES = ("sid", "forky")
FLAVOUR = "amd64"
STOCK_MEMORY_MB = 1024
_LOCK_PREFIX = "stock/"
_RELEASE = re.compile(r"^linux-headers-(\d+\.\d+\.\d+\+deb\d+-" + FLAVOUR + ")$")


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
        return ("rustc", "rust-src", "bindgen", self.compiler_package, "make", "flex", "bison",
                "bc", "libelf-dev", "libssl-dev", "python3", "kmod", "libclang-dev", "clang",
                "llvm", "lld", "dwarves", "cpio", "xz-utils", "qemu-system-x86",
                "busybox-static", "ca-certificates")


def upstream_version(debian_version: str) -> str:
    """1.97.1 from 1.97.1+dfsg1-1, 0.72.1 from 0.72.1-1+b3 (no epoch, no Debian revision)."""
    version = debian_version.split(":", 1)[-1]
    return re.split(r"[+~-]", version, maxsplit=1)[0]


def release_key(release: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", release))


def _find_release(archives: dict[str, DebianArchive], wanted: str) -> tuple[str, str]:
    """(release, suite) of the named kernel release, or of the newest when wanted == latest."""
    found: dict[str, str] = {}
    for suite, archive in archives.items():
        for name in archive.package_names(r"^linux-headers-[0-9.]+\+deb[0-9]+-" + FLAVOUR + "$"):
            match = _RELEASE.match(name)
            if match:
                found.setdefault(match.group(1), suite)
    if not found:
        raise RustkmError(f"no Debian {FLAVOUR} kernel headers found in {', '.join(archives)}")
    if wanted == "latest":
        release = max(found, key=release_key)
        return release, found[release]
    if wanted not in found:
        raise RustkmError(f"Debian has no kernel {wanted} in {', '.join(archives)}",
                          hint=f"available: {', '.join(sorted(found, key=release_key))}")
    return wanted, found[wanted]


def _pin(lock: Lock, archive: DebianArchive, package: str, version: str | None) -> LockedPackage:
    key = _LOCK_PREFIX + package
    pinned = lock.packages.get(key)
    if pinned is None or (version is not None and pinned.version != version):
        pinned = archive.resolve(package, version)
        lock.packages[key] = pinned
    return pinned


def _extract_deb(tc: Toolchain, deb: Path, dest: Path) -> Path:
    def extract(private: Path) -> None:
        private.mkdir()
        tc.run(["dpkg-deb", "-x", str(deb), str(private)], binds=[deb.parent, private])
        (private / ".rustkm-complete").write_text(deb.name + "\n")

    return publish_once(dest, f"the contents of {deb.name}", extract,
                        ready=lambda d: (d / ".rustkm-complete").exists())


def choose_toolchain_suite(archives: dict[str, DebianArchive],
                           needs: StockToolchainNeeds) -> str:
    """The first suite whose rustc and C compiler have the kernel's versions."""
    seen = []
    for suite, archive in archives.items():
        rustc = [v for v, _ in archive.versions("rustc")]
        compilers = archive.versions(needs.compiler_package)
        seen.append(f"{suite}: rustc {', '.join(rustc) or 'none'}, "
                    f"{needs.compiler_package} {'yes' if compilers else 'no'}")
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


def prepare_stock_kernel(spec: str, lock: Lock, lock_path: Path | None,
                         update: bool = False) -> tuple[Toolchain, KernelBuild]:
    """`spec`: 'latest' or a release such as 7.2.13+deb14-amd64."""
    apt_tc = ensure_toolchain()
    archives = {suite: DebianArchive.for_suite(apt_tc, suite) for suite in SUITES}
    # Everything is pinned under the lock on rustkm.lock, from the read to the write: two
    # processes (pytest-xdist workers) pin the same versions and lose none of each other's.
    with editing(lock_path, lock) as pins:
        pinned_release = pins.toolchain.get("stock-release")
        wanted = pinned_release if (spec == "latest" and pinned_release and not update) else spec
        if pinned_release and wanted == pinned_release and not update:
            release, suite = pinned_release, pins.toolchain.get("stock-suite", SUITES[0])
        else:
            release, suite = _find_release(archives, wanted)
        archive = archives[suite]
        pins.toolchain["stock-release"] = release
        pins.toolchain["stock-suite"] = suite

        headers_pkg = _pin(pins, archive, f"linux-headers-{release}", None)
        binary_pkg = _pin(pins, archive, f"linux-binary-{release}", headers_pkg.version)
        home = store_dir() / "stock" / release
        headers = _extract_deb(apt_tc, archive.download(headers_pkg), home / "headers")
        header_tree = headers / "usr" / "src" / f"linux-headers-{release}"
        config = parse_config((header_tree / ".config").read_text())
        needs = StockToolchainNeeds.from_config(config)

        series = ".".join(release.split(".")[:2])
        source_pkg = pins.packages.get(f"{_LOCK_PREFIX}linux-source-{series}")
        toolchain_suite = pins.toolchain.get("stock-toolchain-suite")
        upstream = release.split("+")[0]
        if source_pkg is None or upstream_version(source_pkg.version) != upstream or update:
            source_pkg = _pin(pins, archive, f"linux-source-{series}",
                              _source_version(archive, series, upstream, suite, release))
        if toolchain_suite is None or update:
            toolchain_suite = choose_toolchain_suite(archives, needs)
        pins.toolchain["stock-toolchain-suite"] = toolchain_suite

    tc = ensure_suite_toolchain(toolchain_suite, needs.packages)
    check_toolchain(tc, needs)
    source = fetch_source(archive, source_pkg, series)
    image = _extract_deb(apt_tc, archive.download(binary_pkg), home / "image")
    vmlinuz = _find_vmlinuz(image, release)
    build = _prepare_metadata(tc, source, release, needs, header_tree, vmlinuz,
                              cache_key(needs.rustc, needs.cc, source_pkg, headers_pkg))
    return tc, build


def _source_version(archive: DebianArchive, series: str, upstream: str, suite: str,
                    release: str) -> str:
    versions = [v for v, _ in archive.versions(f"linux-source-{series}")
                if upstream_version(v) == upstream]
    if not versions:
        raise RustkmError(f"Debian {suite} has no linux-source-{series} {upstream} for kernel "
                          f"{release}", hint="image, headers and source must be one version")
    return versions[0]


def _find_vmlinuz(image: Path, release: str) -> Path:
    for candidate in (image / "usr/lib/modules" / release / "vmlinuz",
                      image / "boot" / f"vmlinuz-{release}"):
        if candidate.is_file():
            return candidate
    raise RustkmError(f"the linux-binary package of {release} holds no vmlinuz where expected",
                      hint=f"look under {image}")


def _prepare_metadata(tc: Toolchain, source, release: str,  # type: ignore[no-untyped-def]
                      needs: StockToolchainNeeds, header_tree: Path, vmlinuz: Path,
                      key: str) -> KernelBuild:
    build_dir = store_dir() / "stock" / release / f"build-{key}"
    make_vars = (f"CC={needs.compiler}", f"HOSTCC={needs.compiler}",
                 f"KERNELRELEASE={release}")
    build = KernelBuild(key=f"stock-{key}", build_dir=build_dir, source=source,
                        toolchain=tc.name, release=release, fragments=(), make_vars=make_vars,
                        image_path=str(vmlinuz), memory_mb=STOCK_MEMORY_MB)

    if KernelBuild.finished(build_dir):
        return KernelBuild.load(build_dir)
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
