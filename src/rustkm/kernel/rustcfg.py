"""rustc `--cfg` flags naming the target kernel's version, so that one module source builds on
several kernels (the kernel's Rust API changes with every release).

For a 7.3 kernel a module is compiled with `--cfg rustkm_kernel_ge_6_1` up to
`--cfg rustkm_kernel_ge_7_3`: `#[cfg(rustkm_kernel_ge_7_3)]` picks 7.3's spelling of an item,
`#[cfg(not(rustkm_kernel_ge_7_3))]` the older one. The version is the target tree's own (its
Makefile), so a stock kernel's lane and a self-built one of the same series agree; a release
candidate counts as its release (7.3-rc7 is 7.3).
"""

from __future__ import annotations

import re

from rustkm.errors import RustkmError

PREFIX = "rustkm_kernel_ge"
FIRST_RUST = (6, 1)  # the first release with Rust support
# The last minor release of each finished major series (6.19 was followed by 7.0); a major
# not listed is taken to end at x.LAST_MINOR_DEFAULT (an extra name is harmless: no code
# asks about a release that never existed).
LAST_MINOR = {6: 19}
LAST_MINOR_DEFAULT = 20


def series(version: str) -> tuple[int, int]:
    """(7, 3) from 7.3.0, 7.3, 7.3.0-rc7 or 7.3~rc7."""
    match = re.match(r"^(\d+)\.(\d+)", version)
    if not match:
        raise RustkmError(f"cannot read a kernel version from {version!r}")
    return int(match.group(1)), int(match.group(2))


def kernel_cfgs(version: str) -> list[str]:
    """The cfg names that hold for a kernel of `version`, oldest first."""
    major, minor = series(version)
    names = []
    for m in range(FIRST_RUST[0], major + 1):
        first = FIRST_RUST[1] if m == FIRST_RUST[0] else 0
        last = minor if m == major else LAST_MINOR.get(m, LAST_MINOR_DEFAULT)
        names += [f"{PREFIX}_{m}_{n}" for n in range(first, last + 1)]
    return names


def krustflags(version: str) -> str:
    """The value of make's KRUSTFLAGS (kbuild appends it to every rustc command line)."""
    return " ".join(f"--cfg {name}" for name in kernel_cfgs(version))
