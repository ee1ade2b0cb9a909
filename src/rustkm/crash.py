"""Crash dumps: at a guest panic, the guest's memory as an ELF core file beside what reads it.

A kernel with pvpanic-pci, the fw_cfg sysfs driver (probed from the command line: the guest
has no ACPI) and VMCOREINFO (the debug lane's) boots with QEMU's `pvpanic-pci` and `vmcoreinfo`
devices and `-action panic=pause`: at a panic, the kernel's panic notifier has QEMU stop the
guest where it is (`panic=-1` would reboot it, and QEMU exit). rustkm then saves the memory
with QMP `dump-guest-memory` into a dump folder: `vmcore`, the modules the guest had, and
`crash.json` naming the vmlinux with the kernel's debug information. `rustkm crash FOLDER`
opens it in drgn, which finds the kernel's layout in the VMCOREINFO note.

Dump folders live in the cache (`crashes/`), published whole (a `.partial` folder renamed),
and only the newest few are kept: each is as large as the guest's memory.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rustkm.errors import RustkmError
from rustkm.toolchain import store_dir

# The options a kernel needs for dumps that drgn can read (the debug fragment sets them).
CRASH_OPTIONS = ("PVPANIC_PCI", "FW_CFG_SYSFS_CMDLINE", "VMCORE_INFO")
# QEMU's x86 fw_cfg: selector at port 0x510, data at 0x511, DMA at 0x514.
FW_CFG_WORD = "qemu_fw_cfg.ioport=0xc@0x510:0:1:4"
DEVICES = ("pvpanic-pci", "vmcoreinfo")
QEMU_ARGS = ("-action", "panic=pause")
KEEP = 5  # dump folders kept in the cache, newest first
MANIFEST = "crash.json"
DRGN_PACKAGE = "drgn"


def missing_options(config_text: str) -> list[str]:
    present = set(config_text.splitlines())
    return [f"CONFIG_{o}" for o in CRASH_OPTIONS if f"CONFIG_{o}=y" not in present]


def dumps_wanted(supported: bool, missing: list[str]) -> bool:
    """RUSTKM_CRASH_DUMPS: unset or `auto` dumps where the kernel can, `0` never, `1` always
    (refused, naming the missing options, on a kernel that cannot)."""
    value = os.environ.get("RUSTKM_CRASH_DUMPS", "auto")
    if value not in ("auto", "0", "1"):
        raise RustkmError(f"RUSTKM_CRASH_DUMPS={value!r} is not a setting",
                          hint="auto (the default: where the kernel can), 1 or 0")
    if value == "1" and not supported:
        raise RustkmError("RUSTKM_CRASH_DUMPS=1, but this kernel cannot give dumps that drgn "
                          f"reads: {', '.join(missing) or 'it is a stock kernel'} missing",
                          hint="the debug lane has them: --kernel debug")
    return supported and value != "0"


@dataclass(frozen=True)
class DumpContext:
    """What a dump folder records beside the memory."""
    vm: str
    vmlinux: Path | None
    release: str
    modules: tuple[Path, ...]


def crash_root() -> Path:
    return store_dir() / "crashes"


def save_dump(qmp: Any, context: DumpContext, console_tail: str) -> Path:
    """The paused guest's memory, its modules and a manifest, published as one folder."""
    root = crash_root()
    root.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = f"{stamp}-{context.vm}-{os.getpid()}"
    partial = root / f"{name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    (partial / "modules").mkdir(parents=True)
    try:
        qmp.execute("dump-guest-memory", paging=False, protocol=f"file:{partial / 'vmcore'}")
        for ko in context.modules:
            if ko.is_file():
                shutil.copy2(ko, partial / "modules" / ko.name)
        manifest = {"vm": context.vm, "release": context.release,
                    "vmlinux": str(context.vmlinux) if context.vmlinux else None,
                    "modules": [ko.name for ko in context.modules],
                    "time": stamp, "console": console_tail}
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        folder = root / name
        partial.rename(folder)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    prune(root, KEEP)
    return folder


def saved(root: Path | None = None) -> list[Path]:
    """The dump folders, newest first (folders being written are not listed)."""
    root = root or crash_root()
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if p.is_dir() and not p.name.endswith(".partial")
                   and (p / MANIFEST).is_file()), key=lambda p: p.name, reverse=True)


def newest_dump() -> Path | None:
    folders = saved()
    return folders[0] if folders else None


def prune(root: Path, keep: int) -> None:
    """Keep the `keep` newest dump folders (and any being written right now)."""
    for old in saved(root)[keep:]:
        shutil.rmtree(old, ignore_errors=True)


@dataclass(frozen=True)
class Dump:
    folder: Path
    vmcore: Path
    vmlinux: Path
    modules: tuple[Path, ...]


def open_dump(path: Path) -> Dump:
    """A dump folder (or its vmcore) checked for what drgn needs."""
    folder = path.parent if path.is_file() else path
    if not path.exists():
        raise RustkmError(f"no crash dump at {path}",
                          hint=f"dumps are saved in {crash_root()} when a guest panics")
    manifest_path = folder / MANIFEST
    vmcore = folder / "vmcore"
    if not manifest_path.is_file() or not vmcore.is_file():
        raise RustkmError(f"{folder} is not a rustkm crash dump (no {MANIFEST} and vmcore)",
                          hint=f"dumps are saved in {crash_root()} when a guest panics")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as e:
        raise RustkmError(f"{manifest_path} is damaged: {e}") from None
    vmlinux = Path(manifest.get("vmlinux") or "")
    if not manifest.get("vmlinux") or not vmlinux.is_file():
        raise RustkmError(f"the kernel of this dump ({manifest.get('release') or 'unknown'}) "
                          f"has no vmlinux at {vmlinux or 'a known place'} any more",
                          hint="rebuild that lane's kernel (rustkm kernel build --debug): its "
                               "vmlinux, with debug information, is what drgn reads symbols "
                               "from")
    modules = tuple(sorted((folder / "modules").glob("*.ko")))
    return Dump(folder, vmcore, vmlinux, modules)


def drgn_argv(dump: Dump, code: str | None, script: list[str]) -> list[str]:
    """drgn on the dump with vmlinux and the modules' symbols."""
    import sys

    argv = [sys.executable, "-m", "drgn", "-q", "-c", str(dump.vmcore), "-s", str(dump.vmlinux)]
    for ko in dump.modules:
        argv += ["-s", str(ko)]
    if code is not None:
        argv += ["-e", code]
    return argv + script


def require_drgn() -> None:
    import importlib.util

    if importlib.util.find_spec("drgn") is None:
        raise RustkmError("drgn is not installed in rustkm's Python",
                          hint=f"pip install {DRGN_PACKAGE} (setup.sh's .venv has it: "
                               "pip install -e '.[dev]')")
