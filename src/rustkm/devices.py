"""QEMU devices a VM gets on top of rustkm's own: `-device` strings, checked before boot.

A device is written as QEMU's `-device` option takes it, `DRIVER[,PROP=VALUE...]` (commas in a
value doubled) or its JSON form, e.g. `edu`, `qemu-xhci,id=xhci`. Its driver
must be one this QEMU has: the names come from `qemu-system-x86_64 -device help`, run once
per QEMU version in the toolchain and cached. Properties are QEMU's to judge: a value it
rejects ends the boot with QEMU's own message (see Machine).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Sequence

from rustkm.cache import cache_key, write_atomic
from rustkm.errors import RustkmError
from rustkm.toolchain import Toolchain, store_dir

# Devices whose whole state QEMU saves in a snapshot (they have a VMState; checked in QEMU's
# sources). Any other device makes a VM boot cold: `edu`, for one, has no VMState, so a guest
# restored with it would find its PCI configuration (BAR address, MSI) reset under it.
SNAPSHOT_SAFE = frozenset({"qemu-xhci", "usb-kbd", "usb-mouse", "usb-tablet", "e1000",
                           "virtio-rng-pci", "tmp105"})
_NAME = re.compile(r'^name "([^"]+)"', re.MULTILINE)


def split_options(spec: str) -> list[str]:
    """QEMU's option syntax: fields separated by commas, a doubled comma is a comma."""
    fields, current, i = [], "", 0
    while i < len(spec):
        if spec[i] == ",":
            if spec[i + 1:i + 2] == ",":
                current += ","
                i += 2
                continue
            fields.append(current)
            current = ""
        else:
            current += spec[i]
        i += 1
    fields.append(current)
    return fields


def device_driver(spec: str) -> str:
    """The driver (device type) a `-device` string names; RustkmError if it names none."""
    if not spec.strip() or "\0" in spec or "\n" in spec:
        raise RustkmError(f"device {spec!r} is not a QEMU -device string",
                          hint="write it as QEMU takes it: DRIVER[,PROP=VALUE...], e.g. "
                               "edu or qemu-xhci,id=xhci")
    if spec.lstrip().startswith("{"):
        try:
            parsed = json.loads(spec)
        except json.JSONDecodeError as e:
            raise RustkmError(f"device {spec!r}: not valid JSON ({e.msg})") from None
        driver = parsed.get("driver") if isinstance(parsed, dict) else None
        if not isinstance(driver, str) or not driver:
            raise RustkmError(f"device {spec!r}: its JSON has no \"driver\" string")
        return driver
    fields = split_options(spec)
    if any(f in ("help", "?") or f.endswith(("=help", "=?")) for f in fields):
        raise RustkmError(f"device {spec!r} asks QEMU for help instead of adding a device",
                          hint="see a device's properties with `qemu-system-x86_64 -device "
                               "DRIVER,help` in the toolchain")
    first = fields[0]
    if "=" not in first:
        return first
    named = [f.split("=", 1)[1] for f in fields if f.startswith("driver=")]
    if len(named) != 1 or not named[0]:
        raise RustkmError(f"device {spec!r} names no driver",
                          hint="start it with the driver's name: DRIVER[,PROP=VALUE...]")
    return named[0]


def parse_help(text: str) -> frozenset[str]:
    """The device names in `qemu-system-x86_64 -device help` output."""
    return frozenset(_NAME.findall(text))


def qemu_device_names(tc: Toolchain, qemu: str = "qemu-system-x86_64") -> frozenset[str]:
    """Every device this QEMU (`qemu`, the guest architecture's emulator) knows, cached per
    QEMU version."""
    version = tc.versions().get("qemu", "")
    key = cache_key(tc.name, version) if qemu == "qemu-system-x86_64" else \
        cache_key(tc.name, version, qemu)
    path = store_dir() / "qemu-devices" / f"{key}.json"
    try:
        names = json.loads(path.read_text())
        if isinstance(names, list) and names:
            return frozenset(str(n) for n in names)
    except (OSError, ValueError):
        pass
    result = tc.run([qemu, "-nodefaults", "-device", "help"], check=False, timeout=60)
    found = parse_help(result.stdout or "")
    if not found:
        raise RustkmError(f"`{qemu} -device help` listed no devices",
                          details=(result.stdout or "")[-2000:])
    write_atomic(path, json.dumps(sorted(found)))
    return found


def check_devices(specs: Sequence[str], known: Iterable[str]) -> None:
    """Refuse a device whose driver QEMU lacks, with QEMU's names (the closest first)."""
    names = sorted(set(known))
    for spec in specs:
        driver = device_driver(spec)
        if driver in names:
            continue
        close = difflib.get_close_matches(driver, names, n=5, cutoff=0.6)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise RustkmError(f"QEMU has no device {driver!r} (in --device/devices= {spec!r})",
                          details="QEMU's devices (qemu-system-x86_64 -device help):\n"
                                  + ", ".join(names),
                          hint=hint + "a device is given as QEMU's -device takes it: "
                                      "DRIVER[,PROP=VALUE...]")


def snapshot_obstacle(specs: Sequence[str]) -> str | None:
    """Why a VM with these devices must boot cold, or None if a snapshot can carry them."""
    unsafe = [d for d in (device_driver(s) for s in specs) if d not in SNAPSHOT_SAFE]
    if not unsafe:
        return None
    return (f"device(s) {', '.join(sorted(set(unsafe)))} have no state in QEMU's snapshots "
            "(no VMState), so a restored guest would find them reset")
