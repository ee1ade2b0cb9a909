"""The pinned toolchain: a Debian root filesystem with rustc, bindgen, LLVM, QEMU and busybox,
entered with bubblewrap so that host paths stay the same inside; or the host's own tools."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rustkm.cache import cache_root, locked
from rustkm.debian import host_mirror
from rustkm.errors import RustkmError
from rustkm.log import say, step

SUITE = "trixie"
PACKAGES = (  # noqa: SIM905 (a split string keeps the comments per group)
    # Rust for Linux: the exact minimum versions of Linux 7.2 are trixie's.
    "rustc rust-src rustfmt rust-clippy bindgen libclang-dev clang lld llvm "
    # The kernel build.
    "make flex bison bc libelf-dev libssl-dev cpio python3 kmod xz-utils gcc libc6-dev ccache "
    # The guest: QEMU and a static busybox for the initramfs.
    "qemu-system-x86 busybox-static "
    # apt can fetch the kernel source package from inside.
    "ca-certificates"
).split()
# Tools whose version the lock records, with the command that prints it.
VERSION_COMMANDS = {
    "rustc": ["rustc", "--version"],
    "bindgen": ["bindgen", "--version"],
    "clang": ["clang", "--version"],
    "ld.lld": ["ld.lld", "--version"],
    "qemu": ["qemu-system-x86_64", "--version"],
    "busybox": ["busybox"],
}
INSIDE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_EXCLUDES = ["/usr/share/doc/*", "/usr/share/man/*", "/usr/share/info/*", "/usr/share/locale/*"]


@dataclass(frozen=True)
class Toolchain:
    """A way to run build tools. `root` is None for the host's own tools."""

    name: str
    root: Path | None
    extra_binds: tuple[Path, ...] = field(default=())

    def wrap(self, argv: Sequence[str], cwd: Path | None = None,
             env: Mapping[str, str] | None = None, binds: Sequence[Path] = ()) -> list[str]:
        """The command line that runs `argv` with this toolchain."""
        if self.root is None:
            return list(argv)
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            raise RustkmError("bubblewrap (bwrap) is not installed on the host",
                              hint="apt-get install bubblewrap")
        cmd = [bwrap, "--bind", str(self.root), "/", "--dev-bind", "/dev", "/dev",
               "--proc", "/proc", "--bind", "/tmp", "/tmp",
               "--ro-bind", "/etc/resolv.conf", "/etc/resolv.conf",
               "--die-with-parent", "--unshare-pid", "--clearenv",
               "--setenv", "PATH", INSIDE_PATH, "--setenv", "HOME", "/root",
               "--setenv", "LANG", "C.UTF-8",
               # make 4.4 names its jobserver FIFO in /tmp after its PID; PIDs repeat across
               # sandboxes (--unshare-pid) that share /tmp, so concurrent builds would collide.
               "--setenv", "MAKEFLAGS", "--jobserver-style=pipe"]
        seen: set[Path] = set()
        for path in (store_dir(), *self.extra_binds, *binds, *([cwd] if cwd else [])):
            path = path.resolve()
            if path in seen or not path.exists() or str(path).startswith("/tmp"):
                continue
            seen.add(path)
            cmd += ["--bind", str(path), str(path)]
        for key, value in (env or {}).items():
            cmd += ["--setenv", key, value]
        if cwd:
            cmd += ["--chdir", str(cwd.resolve())]
        return cmd + ["--", *argv]

    def run(self, argv: Sequence[str], cwd: Path | None = None,
            env: Mapping[str, str] | None = None, binds: Sequence[Path] = (),
            capture: bool = True, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a command to completion; raise RustkmError with its output if it fails."""
        full_env = None
        if self.root is None and env:
            full_env = {**os.environ, **env}
        proc = subprocess.run(self.wrap(argv, cwd, env, binds), cwd=cwd, env=full_env,
                              text=True, errors="replace",
                              stdout=subprocess.PIPE if capture else None,
                              stderr=subprocess.STDOUT if capture else None, check=False)
        if check and proc.returncode != 0:
            raise RustkmError(f"{' '.join(argv)} failed with exit status {proc.returncode}",
                              details=(proc.stdout or "")[-4000:])
        return proc

    def versions(self) -> dict[str, str]:
        """First line of each tool's version output (remembered beside a root filesystem)."""
        record = self.root.parent / "versions.json" if self.root else None
        if record is not None and record.exists():
            return dict(json.loads(record.read_text()))
        found = {}
        for tool, argv in VERSION_COMMANDS.items():
            proc = self.run(argv, check=False)
            lines = [line for line in (proc.stdout or "").splitlines() if line.strip()]
            found[tool] = lines[0].strip() if lines and proc.returncode in (0, 1) else "missing"
        if record is not None:
            record.write_text(json.dumps(found, indent=1))
        return found


def store_dir() -> Path:
    """Everything cached but the root filesystems; bound into the toolchain at the same path."""
    path = cache_root() / "store"
    path.mkdir(parents=True, exist_ok=True)
    return path


def rootfs_toolchain(suite: str = SUITE) -> Toolchain:
    root = cache_root() / "toolchain" / suite / "root"
    return Toolchain(name=f"debian-{suite}", root=root)


def ensure_toolchain(kind: str = "debian") -> Toolchain:
    """The toolchain named `kind`, creating the root filesystem on first use."""
    if kind == "host":
        return Toolchain(name="host", root=None)
    if kind != "debian":
        raise RustkmError(f"unknown toolchain {kind!r}", hint="use --toolchain debian or host")
    return ensure_suite_toolchain(SUITE, PACKAGES, (f"{SUITE}-backports",))


def ensure_suite_toolchain(suite: str, packages: Sequence[str],
                           extra_suites: Sequence[str] = ()) -> Toolchain:
    """A root filesystem of Debian `suite` with `packages`, made once (under a lock)."""
    tc = rootfs_toolchain(suite)
    assert tc.root is not None
    stamp = tc.root.parent / "complete"
    wanted = " ".join(packages) + "\n"
    if stamp.exists() and stamp.read_text() == wanted:
        return tc
    with locked(tc.root.parent / "setup", f"the {suite} toolchain"):
        if not (stamp.exists() and stamp.read_text() == wanted):
            stamp.unlink(missing_ok=True)
            (tc.root.parent / "versions.json").unlink(missing_ok=True)
            _create_rootfs(tc.root, suite, packages, extra_suites)
            stamp.write_text(wanted)
    return tc


def _create_rootfs(root: Path, suite: str, packages: Sequence[str],
                   extra_suites: Sequence[str]) -> None:
    mmdebstrap = shutil.which("mmdebstrap")
    if mmdebstrap is None:
        raise RustkmError("mmdebstrap is not installed on the host; it creates the toolchain",
                          hint="run ./setup.sh as root, or: apt-get install mmdebstrap bubblewrap")
    if shutil.which("bwrap") is None:
        raise RustkmError("bubblewrap (bwrap) is not installed on the host",
                          hint="apt-get install bubblewrap")
    if os.geteuid() != 0:
        raise RustkmError(
            "creating the toolchain root filesystem needs root on this version of rustkm",
            hint="run `sudo rustkm setup` once, or use `--toolchain host` with your own tools")
    mirror = host_mirror()
    partial = root.with_name("root.partial")
    if root.exists():
        say(f"replacing the toolchain at {root}: its package list changed")
        shutil.rmtree(root)
    if partial.exists():
        say(f"removing an unfinished toolchain at {partial}")
        shutil.rmtree(partial)
    partial.parent.mkdir(parents=True, exist_ok=True)
    cmd = [mmdebstrap, "--mode=root", "--variant=apt", "--components=main",
           "--include=" + ",".join(packages),
           "--aptopt=Acquire::Retries \"3\"", "--aptopt=Acquire::Check-Valid-Until \"false\"",
           *[f"--dpkgopt=path-exclude={p}" for p in _EXCLUDES],
           suite, str(partial),
           *[f"deb {mirror} {s} main" for s in (suite, *extra_suites)]]
    with step(f"creating the toolchain: Debian {suite} with {len(packages)} packages from {mirror}"):
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace")
        tail: list[str] = []
        assert proc.stdout is not None
        for line in proc.stdout:
            tail = (tail + [line])[-40:]
            if line.startswith("I: ") and not os.environ.get("RUSTKM_QUIET"):
                say(line.strip())
        if proc.wait() != 0:
            shutil.rmtree(partial, ignore_errors=True)
            raise RustkmError("mmdebstrap failed to create the toolchain root filesystem",
                              details="".join(tail),
                              hint="check the network and free disk space, then run again")
    partial.rename(root)


