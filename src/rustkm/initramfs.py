"""A newc (SVR4, no CRC) cpio writer and the guest's initramfs: busybox, init, agent, modules."""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from rustkm.cache import write_atomic
from rustkm.errors import RustkmError
from rustkm.toolchain import Toolchain, store_dir

GUEST_MODULE_DIR = "/lib/modules/rustkm"
AGENT = "/rustkm/agent"  # built from guest/agent.c by guest_tools


@dataclass(frozen=True)
class Entry:
    path: str  # absolute path in the guest
    mode: int  # st_mode, type bits included
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)


class Newc:
    """Builds a cpio archive in memory; same entries, same bytes (mtime 0, uid 0, ino by order)."""

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}

    def add(self, entry: Entry) -> None:
        if not entry.path.startswith("/"):
            raise ValueError(f"guest path must be absolute: {entry.path}")
        parts = entry.path.strip("/").split("/")
        for i in range(1, len(parts)):
            parent = "/" + "/".join(parts[:i])
            self._entries.setdefault(parent, Entry(parent, stat.S_IFDIR | 0o755))
        self._entries[entry.path] = entry

    def directory(self, path: str, mode: int = 0o755) -> None:
        self.add(Entry(path, stat.S_IFDIR | mode))

    def file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        self.add(Entry(path, stat.S_IFREG | mode, data))

    def symlink(self, path: str, target: str) -> None:
        self.add(Entry(path, stat.S_IFLNK | 0o777, target.encode()))

    def chardev(self, path: str, major: int, minor: int, mode: int = 0o600) -> None:
        self.add(Entry(path, stat.S_IFCHR | mode, rdev=(major, minor)))

    def to_bytes(self) -> bytes:
        out = bytearray()
        ordered = sorted(self._entries.values(), key=lambda e: e.path)
        for ino, entry in enumerate(ordered, start=1):
            nlink = 2 if stat.S_ISDIR(entry.mode) else 1
            _append(out, entry.path.lstrip("/"), entry.mode, ino, nlink, entry.data, entry.rdev)
        _append(out, "TRAILER!!!", 0, 0, 1, b"", (0, 0))
        return bytes(out)


def _append(out: bytearray, name: str, mode: int, ino: int, nlink: int, data: bytes,
            rdev: tuple[int, int]) -> None:
    encoded = name.encode() + b"\0"
    fields = (ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1], len(encoded), 0)
    out += b"070701" + b"".join(b"%08X" % f for f in fields)
    out += encoded
    out += b"\0" * (-len(out) % 4)
    out += data
    out += b"\0" * (-len(out) % 4)


@dataclass(frozen=True)
class InitramfsSpec:
    """What goes into the guest: modules by name, and extra files (guest path -> host path)."""

    modules: tuple[Path, ...] = ()
    files: tuple[tuple[str, Path], ...] = ()
    busybox: Path | None = None
    extra_init: str = ""
    agent_port: str = "/dev/ttyS1"
    agent_virtio: str = ""  # the name of a virtio-serial port to prefer, when QEMU offers one
    # Modules /init loads first, in this order: a stock kernel's own virtio drivers.
    early_modules: tuple[Path, ...] = ()
    _cached: dict[str, bytes] = field(default_factory=dict, compare=False, hash=False)


def guest_file(name: str) -> bytes:
    return (resources.files("rustkm") / "guest" / name).read_bytes()


def build_initramfs(spec: InitramfsSpec) -> bytes:
    if spec.busybox is None or not spec.busybox.is_file():
        raise RustkmError(f"busybox not found at {spec.busybox}",
                          hint="the toolchain provides busybox-static; run `rustkm setup`")
    archive = Newc()
    for folder in ("/proc", "/sys", "/dev", "/tmp", "/run", "/root", "/sbin", "/usr/bin",
                   "/usr/sbin", GUEST_MODULE_DIR):
        archive.directory(folder)
    archive.chardev("/dev/console", 5, 1)
    archive.chardev("/dev/null", 1, 3, 0o666)
    archive.file("/bin/busybox", spec.busybox.read_bytes(), 0o755)
    archive.symlink("/bin/sh", "busybox")
    archive.file("/init", guest_file("init"), 0o755)
    early = " ".join(f"/rustkm/early/{m.name}" for m in spec.early_modules)
    config = (f"AGENT_PORT={spec.agent_port}\nAGENT_VIRTIO={spec.agent_virtio}\n"
              f"EARLY_MODULES='{early}'\n" + spec.extra_init)
    archive.file("/rustkm/config", config.encode(), 0o644)
    if spec.early_modules:
        archive.directory("/rustkm/early")
    for module in spec.early_modules:
        archive.file(f"/rustkm/early/{module.name}", module.read_bytes())
    for module in spec.modules:
        if not module.is_file():
            raise RustkmError(f"module {module} does not exist", hint="build it: rustkm build")
        archive.file(f"{GUEST_MODULE_DIR}/{module.name}", module.read_bytes())
    for guest_path, host_path in spec.files:
        if not host_path.is_file():
            raise RustkmError(f"{host_path} (for {guest_path} in the guest) does not exist")
        mode = host_path.stat().st_mode & 0o777
        archive.file(guest_path, host_path.read_bytes(), mode)
    if not any(guest_path == AGENT for guest_path, _ in spec.files):
        raise RustkmError(f"the guest needs its agent at {AGENT}",
                          hint="boot() adds it from rustkm.guest_tools.guest_tools()")
    return archive.to_bytes()


def write_initramfs(spec: InitramfsSpec) -> Path:
    """The archive for `spec` under the cache, written once per distinct content."""
    data = build_initramfs(spec)
    digest = hashlib.sha256(data).hexdigest()[:16]
    folder = store_dir() / "initramfs"
    folder.mkdir(exist_ok=True)
    path = folder / f"{digest}.cpio"
    if path.exists():
        os.utime(path)  # its last use, for the bound below
    else:
        write_atomic(path, data)  # same content from any writer: the last rename wins
        _bound(folder, keep=path)
    return path


IMAGES_LIMIT = 512 << 20


def _bound(folder: Path, keep: Path, limit: int = IMAGES_LIMIT) -> None:
    """Remove the least recently used images beyond `limit` bytes in all. A VM booting from
    one has QEMU holding it open; a removed file stays readable to it."""
    images = []
    for image in folder.glob("*.cpio"):
        try:
            images.append((image.stat().st_mtime, image.stat().st_size, image))
        except FileNotFoundError:
            continue
    total = sum(size for _, size, _ in images)
    for _, size, image in sorted(images):
        if total <= limit:
            break
        if image != keep:
            image.unlink(missing_ok=True)
            total -= size


def toolchain_busybox(tc: Toolchain) -> Path:
    root = tc.root or Path("/")
    for candidate in ("usr/bin/busybox", "bin/busybox"):
        if (root / candidate).is_file():
            return root / candidate
    raise RustkmError("no busybox in the toolchain", hint="apt-get install busybox-static")
