"""What a module created in the guest: the files that appear when it is loaded.

The guest's device nodes, /proc (processes aside), /sys/kernel, /sys/devices, /sys/class,
/sys/bus and debugfs are listed before and after insmod; the new regular files and device
nodes are the module's (its /sys/module/NAME/parameters included). The module's own
bookkeeping in /sys/module/NAME (sections, notes, holders, refcnt...) is the kernel's, not the
module's code, and is left out.
"""

from __future__ import annotations

import os
import shlex
import tempfile

from rustkm.cache import cache_key
from rustkm.machine import Machine
from rustkm.toolchain import store_dir

# /sys/class and /sys/bus hold class attributes (a class's own export files, as vinput's) and
# driver attributes (bind, unbind, new_id); the rest of them are links into /sys/devices.
_ROOTS = ("/dev", "/proc", "/sys/kernel", "/sys/devices", "/sys/module", "/sys/kernel/debug",
          "/sys/class", "/sys/bus")
_PRUNE = ("/proc/[0-9]*", "/proc/self", "/proc/thread-self", "/proc/kcore", "/proc/kmsg",
          "/sys/module/*/sections", "/sys/module/*/notes", "/sys/module/*/holders")
_KERNELS_OWN = ("refcnt", "initstate", "coresize", "initsize", "taint", "srcversion",
                "version", "uevent")
LIST_COMMAND = (
    f"find {' '.join(_ROOTS)} -xdev \\( "
    + " -o ".join(f"-path {shlex.quote(p)}" for p in _PRUNE)
    + " \\) -prune -o \\( -type f -o -type c -o -type b \\) -print 2>/dev/null; true")


def listing(vm: Machine) -> set[str]:
    return {line for line in vm.succeed(LIST_COMMAND, timeout=120).splitlines() if line}


def listing_before(vm: Machine) -> set[str]:
    """The listing of a guest with nothing loaded yet. A guest restored from a snapshot lists
    what every guest restored from it lists (walking /sys takes some 13 s on the debug lane),
    so it is kept per snapshot, published whole."""
    if not vm.snapshot_key or not vm.boot_how.startswith("restored"):
        return listing(vm)
    # Keyed by the listing command too: a listing made with other roots would not compare.
    cached = store_dir() / "fuzz-listings" / f"{vm.snapshot_key}-{cache_key(LIST_COMMAND)}"
    try:
        return {line for line in cached.read_text().splitlines() if line}
    except OSError:
        pass
    found = listing(vm)
    cached.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cached.parent, prefix=".partial-")
    with os.fdopen(fd, "w") as out:
        out.write("\n".join(sorted(found)) + "\n")
    os.replace(tmp, cached)
    return found


def new_files(before: set[str], after: set[str], modules: list[str]) -> list[str]:
    """The files the modules created, device nodes first, then /proc, debugfs and sysfs."""
    found = []
    for path in sorted(after - before):
        parts = path.split("/")
        if len(parts) == 5 and parts[1:3] == ["sys", "module"] and parts[4] in _KERNELS_OWN:
            continue  # /sys/module/NAME/refcnt and the like
        if path.startswith("/sys/module/") and parts[3] not in {m.replace("-", "_")
                                                                 for m in modules}:
            continue  # a module loaded as a dependency of another's, not under test
        found.append(path)
    return sorted(found, key=lambda p: (_rank(p), p))


def _rank(path: str) -> int:
    for rank, prefix in enumerate(("/dev/", "/proc/", "/sys/kernel/debug/")):
        if path.startswith(prefix):
            return rank
    return 3
