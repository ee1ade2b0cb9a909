"""The pinned toolchain: a Debian root filesystem with rustc, bindgen, LLVM, QEMU and busybox,
entered with bubblewrap so that host paths stay the same inside; or the host's own tools."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rustkm.cache import cache_root, publish_once, write_atomic
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
    # rustkm debug and --gdb: gdb on the guest's gdb stub (with Python, for the kernel's
    # gdb scripts).
    "gdb "
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
# How long a network step may take before it is stopped as hung: creating a root filesystem
# (hundreds of packages), and one apt-get update or download.
MMDEBSTRAP_TIMEOUT = 30 * 60
APT_TIMEOUT = 10 * 60
# What apt writes inside the root filesystem (its lists, caches and logs).
_APT_STATE = ("var/lib/apt", "var/cache/apt", "var/log/apt")
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
        # The root filesystem turns read-only once the host paths are mounted in it (bwrap
        # makes their mount points first), but for apt's own state (package lists, archives);
        # /dev is a fresh minimal one (null, zero, random, tty...) plus /dev/kvm.
        cmd = [bwrap, "--bind", str(self.root), "/",
               *[arg for folder in _APT_STATE if (self.root / folder).is_dir()
                 for arg in ("--bind", str(self.root / folder), f"/{folder}")],
               "--dev", "/dev", "--dev-bind-try", "/dev/kvm", "/dev/kvm",
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
        return cmd + ["--remount-ro", "/", "--", *argv]

    def host_path(self, inside: Path, binds: Sequence[Path] = ()) -> Path:
        """Where a path a command saw inside this toolchain's sandbox (run with `binds`)
        is on the host: the bound folders are at their own paths, the rest is the root's."""
        if self.root is None or inside.is_relative_to("/tmp"):
            return inside
        for path in (store_dir(), *self.extra_binds, *binds):
            if inside.is_relative_to(path.resolve()):
                return inside
        return self.root / inside.relative_to("/")

    def run(self, argv: Sequence[str], cwd: Path | None = None,
            env: Mapping[str, str] | None = None, binds: Sequence[Path] = (),
            capture: bool = True, check: bool = True,
            timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        """Run a command to completion; raise RustkmError with its output if it fails, or if
        it runs longer than `timeout` seconds (it is then stopped, with all it started)."""
        full_env = None
        if self.root is None and env:
            full_env = {**os.environ, **env}
        cmd = self.wrap(argv, cwd, env, binds)
        # With a timeout, the command gets a process group of its own: stopping it stops
        # what it started too, so no grandchild keeps the output pipe (and us) waiting.
        child = subprocess.Popen(cmd, cwd=cwd, env=full_env, text=True, errors="replace",
                                 stdout=subprocess.PIPE if capture else None,
                                 stderr=subprocess.STDOUT if capture else None,
                                 process_group=0 if timeout is not None else None)
        try:
            out, _ = child.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_process(child, signal.SIGKILL)
            out, _ = child.communicate()
            raise RustkmError(f"{' '.join(argv)} did not finish within {_duration(timeout)} "
                              "and was stopped", details=(out or "")[-4000:],
                              hint="a stalled network or a hung tool; run again") from None
        except BaseException:
            stop_process(child, signal.SIGKILL)
            child.wait()
            raise
        proc = subprocess.CompletedProcess(cmd, child.returncode, out)
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
            write_atomic(record, json.dumps(found, indent=1))
        return found


def store_dir() -> Path:
    """Everything cached but the root filesystems; bound into the toolchain at the same path."""
    path = cache_root() / "store"
    path.mkdir(parents=True, exist_ok=True)
    return path


def rootfs_toolchain(suite: str = SUITE, variant: str = "") -> Toolchain:
    """The root filesystem of Debian `suite`; a `variant` (e.g. arm64: a lane that also needs
    cross tools) has one of its own beside it, so that lanes never replace each other's."""
    name = f"{suite}-{variant}" if variant else suite
    root = cache_root() / "toolchain" / name / "root"
    return Toolchain(name=f"debian-{name}", root=root)


def toolchain_named(name: str) -> Toolchain | None:
    """The root-filesystem toolchain `name` (debian-sid-arm64) if it exists here."""
    if not name.startswith("debian-"):
        return None
    tc = Toolchain(name=name, root=cache_root() / "toolchain" / name.removeprefix("debian-") /
                   "root")
    return tc if tc.root is not None and tc.root.is_dir() else None


# What a self-built kernel of another architecture adds to the toolchain: clang and rustc
# cross-build the kernel themselves; the guest's static helpers need a cross gcc and C library,
# the guest QEMU, and arm64's device trees dtc.
CROSS_PACKAGES = {"arm64": ("gcc-aarch64-linux-gnu", "libc6-dev-arm64-cross", "qemu-system-arm",
                            "device-tree-compiler")}


def ensure_toolchain(kind: str = "debian", arch: str = "") -> Toolchain:
    """The toolchain named `kind`, creating the root filesystem on first use; with `arch`
    (another architecture than the host's) one of its own with that architecture's tools."""
    if kind == "host":
        if arch:
            raise RustkmError(f"--toolchain host builds for the host's architecture only, not "
                              f"{arch}", hint="use the default Debian toolchain")
        return Toolchain(name="host", root=None)
    if kind != "debian":
        raise RustkmError(f"unknown toolchain {kind!r}", hint="use --toolchain debian or host")
    if arch:
        return ensure_suite_toolchain(SUITE, (*PACKAGES, *CROSS_PACKAGES[arch]),
                                      (f"{SUITE}-backports",), variant=arch)
    return ensure_suite_toolchain(SUITE, PACKAGES, (f"{SUITE}-backports",))


def ensure_suite_toolchain(suite: str, packages: Sequence[str],
                           extra_suites: Sequence[str] = (), variant: str = "") -> Toolchain:
    """A root filesystem of Debian `suite` with `packages`, made once (under a lock)."""
    tc = rootfs_toolchain(suite, variant)
    assert tc.root is not None
    home = tc.root.parent
    stamp = home / "complete"  # the package list the root filesystem has
    wanted = " ".join(packages) + "\n"

    def current(root: Path) -> bool:
        return root.is_dir() and stamp.is_file() and stamp.read_text() == wanted

    def create(private: Path) -> None:
        stamp.unlink(missing_ok=True)
        (home / "versions.json").unlink(missing_ok=True)
        _create_rootfs(mmdebstrap, private, suite, packages, extra_suites)
        # Before the rename that publishes the root filesystem: a builder killed in between
        # leaves no root, so the stamp alone is never taken for a toolchain.
        write_atomic(stamp, wanted)

    if current(tc.root):
        return tc
    mmdebstrap = _rootfs_tools()  # before anything is removed
    if tc.root.exists():
        say(f"replacing the toolchain at {tc.root}: its package list changed")
    publish_once(tc.root, f"the {suite} toolchain", create, ready=current)
    return tc


def _rootfs_tools() -> str:
    """mmdebstrap, once it is clear that a root filesystem can be made here."""
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
    return mmdebstrap


def _create_rootfs(mmdebstrap: str, partial: Path, suite: str, packages: Sequence[str],
                   extra_suites: Sequence[str]) -> None:
    """mmdebstrap into `partial` (a private path; the caller publishes it), stopped when it
    takes longer than MMDEBSTRAP_TIMEOUT."""
    mirror = host_mirror()
    cmd = [mmdebstrap, "--mode=root", "--variant=apt", "--components=main",
           "--include=" + ",".join(packages),
           "--aptopt=Acquire::Retries \"3\"", "--aptopt=Acquire::Check-Valid-Until \"false\"",
           *[f"--dpkgopt=path-exclude={p}" for p in _EXCLUDES],
           suite, str(partial),
           *[f"deb {mirror} {s} main" for s in (suite, *extra_suites)]]
    with step(f"creating the toolchain: Debian {suite} with {len(packages)} packages from {mirror}"):
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace", process_group=0)
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            stop_process(proc, signal.SIGTERM)  # mmdebstrap unmounts what it mounted in the root
            last_resort = threading.Timer(60, stop_process, (proc, signal.SIGKILL))
            last_resort.daemon = True
            last_resort.start()

        timer = threading.Timer(MMDEBSTRAP_TIMEOUT, expire)
        timer.daemon = True
        timer.start()
        tail: list[str] = []
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                tail = (tail + [line])[-40:]
                if line.startswith("I: ") and not os.environ.get("RUSTKM_QUIET"):
                    say(line.strip())
            rc = proc.wait()
        except BaseException:
            stop_process(proc, signal.SIGTERM)
            proc.wait()
            raise
        finally:
            timer.cancel()
        if expired.is_set():
            raise RustkmError(f"mmdebstrap did not finish creating the toolchain within "
                              f"{_duration(MMDEBSTRAP_TIMEOUT)} and was stopped",
                              details="".join(tail),
                              hint="check the network (a stalled mirror?), then run again")
        if rc != 0:
            raise RustkmError("mmdebstrap failed to create the toolchain root filesystem",
                              details="".join(tail),
                              hint="check the network and free disk space, then run again")


def stop_process(proc: subprocess.Popen[str], sig: int) -> None:
    """Send `sig` to a command, and to its process group when it leads one."""
    try:
        if os.getpgid(proc.pid) == proc.pid:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
    except ProcessLookupError:
        pass


def _duration(seconds: float | None) -> str:
    seconds = seconds or 0
    return f"{seconds / 60:g} minutes" if seconds >= 60 else f"{seconds:g} s"


