"""Kernel source: Debian's linux-source-X.Y package (resolved once, locked, cached) or a local tree."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from rustkm.arch import host_arch
from rustkm.cache import locked, publish_once, sha256_file, write_atomic
from rustkm.debian import host_mirror
from rustkm.errors import RustkmError
from rustkm.lockfile import Lock, LockedPackage, editing
from rustkm.log import say, step
from rustkm.toolchain import APT_TIMEOUT, Toolchain, store_dir

DEFAULT_SERIES = "7.2"


@dataclass(frozen=True)
class KernelSource:
    tree: Path
    version: str  # the kernel's own version, from its Makefile
    origin: str  # what it came from, for cache keys and `kernel info`


def kernel_version(tree: Path) -> str:
    """VERSION.PATCHLEVEL.SUBLEVEL from a kernel tree's top Makefile."""
    makefile = tree / "Makefile"
    if not makefile.is_file() or not (tree / "Kconfig").is_file():
        raise RustkmError(f"{tree} is not a Linux source tree (no Makefile and Kconfig there)",
                          hint="point --source at the top of a kernel checkout")
    fields = dict(re.findall(r"^(VERSION|PATCHLEVEL|SUBLEVEL)\s*=\s*(\d*)", makefile.read_text(),
                             re.MULTILINE))
    if "VERSION" not in fields:
        raise RustkmError(f"{makefile} names no VERSION")
    return f"{fields['VERSION']}.{fields.get('PATCHLEVEL') or 0}.{fields.get('SUBLEVEL') or 0}"


def local_source(path: Path) -> KernelSource:
    tree = path.expanduser().resolve()
    if not tree.is_dir():
        raise RustkmError(f"kernel source {path} does not exist")
    version = kernel_version(tree)
    if (tree / ".config").exists() or (tree / "include/config").exists():
        raise RustkmError(f"{tree} has been configured or built in place",
                          hint=f"rustkm builds out of tree (O=); run `make -C {tree} mrproper` first")
    return KernelSource(tree, version, f"local:{tree}")


def parse_madison(text: str) -> list[tuple[str, str]]:
    """(version, suite) pairs from `apt-cache madison` output, in the order apt lists them."""
    found = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) >= 3 and parts[2].endswith("Packages"):
            suite = parts[2].split()[1].split("/")[0]
            found.append((parts[1], suite))
    return found


def parse_apt_show(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            break  # first stanza only
        if ":" in line and not line.startswith(" "):
            key, value = line.split(":", 1)
            fields[key] = value.strip()
    return fields


class DebianArchive:
    """apt inside the toolchain root filesystem. By default it sees the toolchain's own
    sources (trixie, trixie-backports); `for_suite` sees one other suite through a separate
    sources list and package lists, leaving the toolchain's apt untouched."""

    def __init__(self, toolchain: Toolchain, apt_options: tuple[str, ...] = (),
                 name: str = "the toolchain") -> None:
        self.tc = toolchain
        self.options = list(apt_options)
        self.name = name
        self._updated = False

    @classmethod
    def for_suite(cls, toolchain: Toolchain, suite: str, arch: str = "") -> DebianArchive:
        """Debian `suite`'s packages for `arch` (a Debian architecture such as arm64; "" is
        the toolchain's own), with package lists of their own."""
        foreign = bool(arch) and arch != host_arch().debian
        folder = store_dir() / "apt" / (f"{suite}-{arch}" if foreign else suite)
        (folder / "lists" / "partial").mkdir(parents=True, exist_ok=True)
        sources = folder / "sources.list"
        line = f"deb {host_mirror()} {suite} main\n"
        # Another process's apt may be reading it: an empty list would make apt drop lists.
        if not sources.is_file() or sources.read_text() != line:
            write_atomic(sources, line)
        options: tuple[str, ...] = ("-o", f"Dir::Etc::SourceList={folder / 'sources.list'}",
                                    "-o", "Dir::Etc::SourceParts=-",
                                    "-o", f"Dir::State::Lists={folder / 'lists'}",
                                    "-o", "Acquire::Check-Valid-Until=false")
        if foreign:
            options += ("-o", f"APT::Architecture={arch}", "-o", f"APT::Architectures={arch}")
            return cls(toolchain, options, name=f"Debian {suite} {arch}")
        return cls(toolchain, options, name=f"Debian {suite}")

    def update(self) -> None:
        if not self._updated:
            # apt takes its own lock on the lists and fails at once if another rustkm process
            # (a pytest-xdist worker, say) holds it: wait our turn instead.
            lists = store_dir() / "apt" / self.name.replace(" ", "-")
            with locked(lists, f"apt's package lists ({self.name})"), \
                    step(f"apt-get update ({self.name})"):
                self.tc.run(["apt-get", "-q", *self.options, "update"], timeout=APT_TIMEOUT)
            self._updated = True

    def apt_cache(self, *args: str) -> str:
        self.update()
        return self.tc.run(["apt-cache", *self.options, *args], check=False).stdout or ""

    def versions(self, package: str) -> list[tuple[str, str]]:
        return parse_madison(self.apt_cache("madison", package))

    def package_names(self, regex: str) -> list[str]:
        out = self.apt_cache("search", "--names-only", regex)
        return sorted(line.split(" - ")[0].strip() for line in out.splitlines() if " - " in line)

    def resolve(self, package: str, version: str | None = None) -> LockedPackage:
        available = self.versions(package)
        if not available:
            raise RustkmError(f"{self.name} has no package {package}",
                              hint="check the kernel series (e.g. 7.2) and the network")
        if version is None:
            version, suite = available[0]
        else:
            suites = [s for v, s in available if v == version]
            if not suites:
                listed = ", ".join(v for v, _ in available)
                raise RustkmError(
                    f"{package} {version} (locked) has left the Debian archive; it has {listed}",
                    hint="run `rustkm lock --update` to move the lock to an available version")
            suite = suites[0]
        show = parse_apt_show(self.apt_cache("show", f"{package}={version}"))
        return LockedPackage(package=package, version=version, sha256=show["SHA256"], suite=suite)

    @staticmethod
    def cached(pkg: LockedPackage) -> Path:
        """Where the .deb of `pkg` is kept in the cache (whether it is there or not)."""
        name = f"{pkg.package}_{pkg.version.replace(':', '%3a')}_{pkg.sha256[:12]}.deb"
        return store_dir() / "debs" / name

    def download(self, pkg: LockedPackage) -> Path:
        """The .deb in the cache, downloaded and checked against the locked SHA256."""
        target = self.cached(pkg)
        target.parent.mkdir(exist_ok=True)

        def intact(deb: Path) -> bool:
            return deb.exists() and sha256_file(deb) == pkg.sha256

        if intact(target):
            return target
        if target.exists():
            say(f"{target.name} in the cache is corrupt or partial: fetching it again")
        self.resolve(pkg.package, pkg.version)  # says clearly when the version is gone
        return publish_once(target, f"the download of {pkg.package} {pkg.version}",
                            lambda private: self._download(pkg, private), ready=intact)

    def _download(self, pkg: LockedPackage, deb: Path) -> None:
        """apt-get download into the private folder of `deb`, then check the SHA256."""
        folder = deb.parent
        with step(f"downloading {pkg.package} {pkg.version}"):
            self.tc.run(["apt-get", "-q", *self.options, "download",
                         f"{pkg.package}={pkg.version}"], cwd=folder, timeout=APT_TIMEOUT)
        got = next(folder.glob("*.deb"), None)
        if got is None:
            raise RustkmError(f"apt-get download {pkg.package}={pkg.version} left no .deb",
                              details="\n".join(p.name for p in folder.iterdir()))
        digest = sha256_file(got)
        if digest != pkg.sha256:
            raise RustkmError(f"{got.name} has SHA256 {digest}, the lock says {pkg.sha256}",
                              hint="the archive changed under a locked version; "
                                   "run `rustkm lock --update` if you trust it")
        got.rename(deb)


def debian_source(tc: Toolchain, series: str, lock: Lock, lock_path: Path | None,
                  update: bool = False) -> KernelSource:
    package = f"linux-source-{series}"
    archive = DebianArchive(tc)
    pinned = None if update else lock.packages.get(package)
    if pinned is None:
        # Pinned under the lock on rustkm.lock: a process pinning at the same time either
        # finds this pin there, or its own pins are kept beside it.
        with editing(lock_path, lock) as pins:
            pinned = None if update else pins.packages.get(package)
            if pinned is None:
                pinned = archive.resolve(package)
                say(f"resolved {package} to {pinned.version} ({pinned.suite})")
                pins.packages[package] = pinned
    return fetch_source(archive, pinned, series)


def fetch_source(archive: DebianArchive, pinned: LockedPackage, series: str) -> KernelSource:
    """The extracted tree of a pinned linux-source package, from the cache when there."""
    tree = store_dir() / "src" / f"linux-{pinned.version.replace(':', '_')}"
    publish_once(tree, f"the kernel source {pinned.version}",
                 lambda private: _extract(archive.tc, archive.download(pinned), private, series),
                 ready=lambda t: (t / ".rustkm-complete").exists())
    return KernelSource(tree, kernel_version(tree), f"debian:{pinned.package}={pinned.version}")


def _extract(tc: Toolchain, deb: Path, partial: Path, series: str) -> None:
    partial.mkdir()
    inner = f"./usr/src/linux-source-{series}.tar.xz"
    script = (f"dpkg-deb --fsys-tarfile '{deb}' | tar -xO '{inner}' "
              f"| tar -xJ --strip-components=1 -C '{partial}'")
    with step(f"extracting {deb.name}"):
        tc.run(["bash", "-c", "set -o pipefail; " + script],
               binds=[deb.parent, partial])
    (partial / ".rustkm-complete").write_text(deb.name + "\n")


def extract_deb(tc: Toolchain, deb: Path, dest: Path) -> Path:
    """The .deb's contents at `dest`; those of another version there (a release name without
    an ABI number, such as 7.3-amd64, is reused by every upload) are replaced."""
    def extract(private: Path) -> None:
        private.mkdir()
        tc.run(["dpkg-deb", "-x", str(deb), str(private)], binds=[deb.parent, private])
        (private / ".rustkm-complete").write_text(deb.name + "\n")

    def ready(folder: Path) -> bool:
        try:
            return (folder / ".rustkm-complete").read_text().strip() == deb.name
        except OSError:
            return False

    return publish_once(dest, f"the contents of {deb.name}", extract, ready=ready)
