"""A module folder's rustkm-module.toml: the lanes where the module does not apply, and the
presence probes whose results reach its Rust code as `--cfg` flags.

    [lanes]
    skip = { "debian:*" = "needs CONFIG_KUNIT" }

    [probes]
    coherent_dma_address = "kernel::dma::CoherentAllocation::dma_address"
    param_copy = { code = "fn f(p: &kernel::module_param::ModuleParamAccess<i32>) -> i32 { p.value() }" }
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from rustkm.errors import RustkmError

MODULE_FILE = "rustkm-module.toml"
_PROBE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
# Module parameters as insmod takes them, values without spaces or shell characters.
_PARAMS = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*=[A-Za-z0-9_.,:+-]+\s*)*$")
_RUST_PATH = re.compile(r"^(::)?[A-Za-z_][A-Za-z0-9_]*(::[A-Za-z_][A-Za-z0-9_]*)*$")
_EXAMPLE = ('[lanes]\nskip = { "debian:*" = "needs CONFIG_KUNIT" }\n[probes]\n'
            'NAME = "kernel::some::Item"  # or NAME = { code = "fn f() { ... }" }\n'
            '[fuzz]\nioctls = [0x40046601, "_IOWR(\'E\', 2, 4)"]\n'
            'setup = "echo x > /sys/..."  # guest commands before insmod\n'
            'devices = ["edu"]  # QEMU devices the module drives\n'
            'params = "delay_ms=20"  # for every insmod of the module')


@dataclass(frozen=True)
class Probe:
    """One presence probe: `path` (an item, or an associated function of a type) or `code`
    (Rust items that must compile). Its cfg is `rustkm_has_NAME`."""
    name: str
    path: str = ""
    code: str = ""

    @property
    def cfg(self) -> str:
        return f"rustkm_has_{self.name}"


@dataclass(frozen=True)
class ModuleFile:
    skip: dict[str, str] = field(default_factory=dict)
    probes: tuple[Probe, ...] = ()
    ioctls: tuple[int | str, ...] = ()  # [fuzz] ioctls: commands for rustkm fuzz
    fuzz_setup: str = ""  # [fuzz] setup: guest shell commands run before the module loads
    fuzz_devices: tuple[str, ...] = ()  # [fuzz] devices: QEMU -device strings for its guests
    fuzz_params: str = ""  # [fuzz] params: "name=value ..." for every insmod of the module


def read_module_file(folder: Path) -> ModuleFile:
    """The folder's rustkm-module.toml, checked (a typo is an error, not a silent no-op); an
    empty ModuleFile when the folder has none."""
    path = folder / MODULE_FILE
    if not path.is_file():
        return ModuleFile()
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise RustkmError(f"{path} cannot be read: {e}") from None
    unknown = [k for k in data if k not in ("lanes", "probes", "fuzz")]
    lanes = data.get("lanes", {})
    if unknown or not isinstance(lanes, dict) or [k for k in lanes if k != "skip"]:
        raise RustkmError(f"{path}: only [lanes] skip, [probes] and [fuzz] ioctls are understood",
                          hint=_EXAMPLE)
    skip = lanes.get("skip", {})
    if not isinstance(skip, dict) or not all(isinstance(v, str) for v in skip.values()):
        raise RustkmError(f"{path}: [lanes] skip must be a table of PATTERN = \"reason\"",
                          hint=_EXAMPLE)
    fuzz = data.get("fuzz", {})
    ioctls = fuzz.get("ioctls", []) if isinstance(fuzz, dict) else None
    setup = fuzz.get("setup", "") if isinstance(fuzz, dict) else None
    devices = fuzz.get("devices", []) if isinstance(fuzz, dict) else None
    params = fuzz.get("params", "") if isinstance(fuzz, dict) else None
    if not isinstance(fuzz, dict) or \
            [k for k in fuzz if k not in ("ioctls", "setup", "devices", "params")] \
            or not isinstance(params, str) or not _PARAMS.match(params) \
            or not isinstance(ioctls, list) or not all(isinstance(c, (int, str)) for c in ioctls) \
            or not isinstance(setup, str) or not isinstance(devices, list) \
            or not all(isinstance(d, str) and d.strip() for d in devices):
        raise RustkmError(f"{path}: [fuzz] takes ioctls = [NUMBER or \"_IOR('T', NR, SIZE)\", ...], "
                          "setup = \"guest shell commands run before the module loads\" and "
                          "devices = [\"QEMU -device string\", ...] and params = "
                          "\"name=value ...\" (for every insmod)", hint=_EXAMPLE)
    return ModuleFile(skip=dict(skip), probes=_probes(path, data.get("probes", {})),
                      ioctls=tuple(ioctls), fuzz_setup=setup, fuzz_devices=tuple(devices),
                      fuzz_params=" ".join(params.split()))


def _probes(path: Path, table: object) -> tuple[Probe, ...]:
    if not isinstance(table, dict):
        raise RustkmError(f"{path}: probes must be a table ([probes])", hint=_EXAMPLE)
    probes = []
    for name, spec in table.items():
        where = f"{path}: probe {name!r}"
        if not _PROBE_NAME.match(name):
            raise RustkmError(f"{where}: a probe name is lower case letters, digits and '_', "
                              "starting with a letter (its cfg is rustkm_has_NAME)")
        if isinstance(spec, str):
            if not _RUST_PATH.match(spec):
                raise RustkmError(f"{where}: {spec!r} is not a Rust path",
                                  hint="e.g. \"kernel::dma::CoherentAllocation::dma_address\"; "
                                       "for anything else give { code = \"...\" }")
            probes.append(Probe(name, path=spec))
        elif isinstance(spec, dict) and list(spec) == ["code"] and isinstance(spec["code"], str) \
                and spec["code"].strip():
            probes.append(Probe(name, code=spec["code"]))
        else:
            raise RustkmError(f"{where} must be a Rust path (a string) or {{ code = \"...\" }}",
                              hint=_EXAMPLE)
    return tuple(probes)


def module_lane_skip(folder: Path, lane: str) -> str:
    """Why the module in `folder` does not apply to `lane` ("" when it does), from its
    rustkm-module.toml: [lanes] skip = {"debian:*" = "needs CONFIG_KUNIT"}; a pattern that
    starts with ! skips every lane it does not match ("!*@arm64": arm64 lanes only)."""
    return lane_skip_reason(read_module_file(folder).skip, lane)


def lane_skip_reason(skip: dict[str, str], lane: str) -> str:
    """The reason of the first pattern of `skip` that skips `lane` ("" when none does): an
    fnmatch pattern skips the lanes it matches, one that starts with ! those it does not."""
    for pattern, reason in skip.items():
        negated = pattern.startswith("!")
        if fnmatch.fnmatchcase(lane, pattern.removeprefix("!")) != negated:
            return reason
    return ""
