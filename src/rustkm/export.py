"""`rustkm export`: a kernel's module-build metadata as a standalone folder (or tarball).

With it, plain `make -C DIR/build M=$PWD` builds Rust modules for that kernel outside rustkm:
for instance for the Debian kernel installed on your own machine. The folder names its exact
toolchain and refuses, up front, a rustc whose version text differs (the Rust symbol names a
module refers to carry a hash of it, so such a module would not load).
"""

from __future__ import annotations

import os
import shutil
import tarfile
from pathlib import Path

from rustkm.errors import RustkmError
from rustkm.kernel.build import KernelBuild
from rustkm.kernel.config import parse_config
from rustkm.log import step

# What an out-of-tree build reads from the source tree (not the .c files of the kernel).
_SOURCE_PARTS = ("Makefile", "Kbuild", "Kconfig", "scripts", "include", "rust", "arch/x86")
_SOURCE_SKIP = ("*.rst", "*.txt")
# What it reads from the build folder: generated headers, configs, tools, Rust metadata;
# not the kernel's own objects.
_BUILD_SKIP = ("*.o", "*.a", "vmlinux", "vmlinux.*", "*.cmd", ".tmp_*", "*.ko", "bzImage")


def check_destination(out: Path, tar: bool = False) -> Path:
    """The folder to export to, refused up front (before any kernel work) unless it is new or
    empty and can be made; with `tar`, OUT.tar.gz must not exist either."""
    out = out.expanduser().resolve()
    try:
        if out.exists() and not out.is_dir():
            raise RustkmError(f"{out} is a file, not a folder", hint="name a new folder")
        if out.is_dir() and any(out.iterdir()):
            raise RustkmError(f"{out} exists and is not empty", hint="name a new folder")
    except PermissionError:
        raise RustkmError(f"{out} cannot be read (permission denied)") from None
    parent = next(p for p in out.parents if p.exists())
    if not parent.is_dir():
        raise RustkmError(f"{out} cannot be made: {parent} is a file",
                          hint="name a folder whose parents are folders")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise RustkmError(f"{out} cannot be made: {parent} is not writable")
    packed = out.with_name(out.name + ".tar.gz")
    if tar and packed.exists():
        raise RustkmError(f"{packed} exists", hint="move it away, or name another folder")
    return out


def export_metadata(build: KernelBuild, out: Path, toolchain_versions: dict[str, str]) -> Path:
    out = check_destination(out)
    config = parse_config(build.config.read_text())
    rustc = config.get("RUSTC_VERSION_TEXT", "").strip('"')
    with step(f"exporting the module-build metadata of {build.release} to {out}"):
        source = out / "source"
        for part in _SOURCE_PARTS:
            src = build.source.tree / part
            if src.is_dir():
                shutil.copytree(src, source / part, symlinks=True,
                                ignore=shutil.ignore_patterns(*_SOURCE_SKIP))
            elif src.is_file():
                (source / part).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, source / part)
        objtree = out / "build"
        shutil.copytree(build.build_dir, objtree, symlinks=True,
                        ignore=shutil.ignore_patterns(*_BUILD_SKIP))
        (objtree / "Makefile").write_text(_makefile(rustc, build.make_vars))
        (out / "TOOLCHAIN").write_text(
            f"kernel release: {build.release}\nrustc: {rustc}\n"
            + "".join(f"{tool}: {version}\n" for tool, version in toolchain_versions.items()))
    return out


def _makefile(rustc: str, make_vars: tuple[str, ...]) -> str:
    # The variables go on the kernel Makefile's command line: assigned in a wrapper, they
    # would lose to the kernel's own assignments in its sub-makes.
    variables = " ".join(make_vars) if make_vars else "LLVM=1"
    return f"""# Written by `rustkm export`. Build a module with: make -C <this folder> M=$PWD
RUSTKM_RUSTC := {rustc}
RUSTKM_HAVE := $(shell $(or $(RUSTC),rustc) --version 2>/dev/null)
ifneq ($(RUSTKM_HAVE),$(RUSTKM_RUSTC))
$(error this kernel's Rust metadata needs "$(RUSTKM_RUSTC)", but rustc is "$(RUSTKM_HAVE)"; \
see ../TOOLCHAIN)
endif
RUSTKM_OBJTREE := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
RUSTKM_FIRST := $(or $(firstword $(MAKECMDGOALS)),modules)
.PHONY: $(RUSTKM_FIRST) $(MAKECMDGOALS)
$(RUSTKM_FIRST):
\t$(MAKE) -C $(RUSTKM_OBJTREE)/../source O=$(RUSTKM_OBJTREE) {variables} $(MAKECMDGOALS)
$(filter-out $(RUSTKM_FIRST),$(MAKECMDGOALS)):
\t@:
"""


def tarball(folder: Path) -> Path:
    target = folder.with_name(folder.name + ".tar.gz")
    with step(f"packing {target.name}"), tarfile.open(target, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    return target
