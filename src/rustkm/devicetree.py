"""Device-tree overlays for guests that boot from a device tree (arm64's QEMU virt).

virt builds its device tree when it starts. rustkm asks QEMU for it (`-machine dumpdtb`, with
the guest's CPU, memory and CPU count, which shape it), compiles each overlay given as source
(`dtc -@`, the overlay syntax LKMPG's dt-overlay.dts uses) or takes it compiled (.dtbo),
applies them in order with `fdtoverlay`, and the guest boots the result (`-dtb`). The merged
tree is cached by everything that makes it: QEMU's version, the machine options and the
overlays' bytes; a malformed overlay is refused with dtc's or fdtoverlay's own message.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from rustkm.cache import publish_once
from rustkm.errors import RustkmError
from rustkm.toolchain import Toolchain, store_dir


def overlay_sources(paths: Sequence[str | Path]) -> list[tuple[str, bytes]]:
    """(file name, bytes) of each overlay, refused clearly when missing or of another kind."""
    found = []
    for given in paths:
        path = Path(given)
        if path.suffix not in (".dts", ".dtbo"):
            raise RustkmError(f"device-tree overlay {path}: expected a .dts source or a compiled "
                              ".dtbo", hint="e.g. kmods/lkmpg/devicetree/dt-overlay.dts")
        try:
            found.append((path.name, path.read_bytes()))
        except OSError as e:
            raise RustkmError(f"device-tree overlay {path}: {e.strerror}") from None
    return found


def merged_dtb(tc: Toolchain, machine: Sequence[str], qemu_version: str,
               overlays: Sequence[str | Path]) -> Path:
    """The guest's device tree with `overlays` applied. `machine`: QEMU's command line up to
    what shapes the tree (emulator, -M, -cpu, -m, -smp), without sockets or devices."""
    sources = overlay_sources(overlays)
    digest = hashlib.sha256()
    for part in (qemu_version, *machine):
        digest.update(part.encode() + b"\0")
    for name, data in sources:
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    target = store_dir() / "devicetree" / f"{digest.hexdigest()[:16]}.dtb"
    return publish_once(target, "the guest's device tree with its overlays",
                        lambda private: _merge(tc, list(machine), sources, private))


def _merge(tc: Toolchain, machine: list[str], sources: list[tuple[str, bytes]],
           dtb: Path) -> None:
    folder = dtb.parent
    base = folder / "base.dtb"
    dumped = tc.run([*machine, "-machine", f"dumpdtb={base}"], binds=[folder], check=False,
                    timeout=60)
    if not base.is_file():
        raise RustkmError("QEMU did not write the guest's device tree (-machine dumpdtb)",
                          details=dumped.stdout or "")
    compiled = []
    for number, (name, data) in enumerate(sources):
        if name.endswith(".dtbo"):
            dtbo = folder / f"{number}-{name}"
            dtbo.write_bytes(data)
        else:
            source = folder / f"{number}-{name}"
            source.write_bytes(data)
            dtbo = source.with_suffix(".dtbo")
            result = tc.run(["dtc", "-@", "-q", "-I", "dts", "-O", "dtb", "-o", str(dtbo),
                             str(source)], binds=[folder], check=False)
            if result.returncode != 0:
                raise RustkmError(f"device-tree overlay {name} does not compile",
                                  details=_named(result.stdout or "", source, name),
                                  hint="dtc's message above names the line")
        compiled.append(str(dtbo))
    result = tc.run(["fdtoverlay", "-i", str(base), "-o", str(dtb), *compiled], binds=[folder],
                    check=False)
    if result.returncode != 0 or not dtb.is_file():
        raise RustkmError("the device-tree overlays do not apply to the guest's device tree",
                          details=result.stdout or "",
                          hint="an overlay's target (a label or path such as &{/}) must exist "
                               "in QEMU virt's tree")


def _named(text: str, path: Path, name: str) -> str:
    """dtc's messages with the private copy's path replaced by the overlay's own name."""
    return text.replace(str(path), name).strip()
