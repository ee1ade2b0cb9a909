"""Out-of-tree Rust module builds (Kbuild, M= and MO=) against a cached kernel build."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from rustkm import module_stamp
from rustkm.cache import cache_key, locked
from rustkm.errors import RustkmError
from rustkm.kernel.build import KernelBuild, ccache_env
from rustkm.kernel.gated import configured_out, explain_gates
from rustkm.kernel.probes import present_probes
from rustkm.kernel.rustcfg import krustflags
from rustkm.log import step
from rustkm.module_file import read_module_file
from rustkm.toolchain import Toolchain, store_dir

# A module build that runs longer is taken as hung (a stuck compiler or a make loop).
MODULE_BUILD_TIMEOUT = 15 * 60
_OBJ_M = re.compile(r"^\s*obj-m\s*[:+]?=\s*(.+)$", re.MULTILINE)


@dataclass(frozen=True)
class ModuleBuild:
    source: Path  # the module folder
    output: Path  # where Kbuild wrote the objects
    modules: tuple[Path, ...]  # the .ko files

    def ko(self, name: str) -> Path:
        for module in self.modules:
            if module.stem == name:
                return module
        raise RustkmError(f"{self.source} built no module {name!r}")


def module_names(folder: Path) -> list[str]:
    """The modules a folder's Kbuild (or Makefile) declares with obj-m."""
    for name in ("Kbuild", "Makefile"):
        path = folder / name
        if path.is_file():
            names = []
            for match in _OBJ_M.finditer(path.read_text()):
                names += [w[:-2] for w in match.group(1).split() if w.endswith(".o")]
            if names:
                return names
    raise RustkmError(f"{folder} has no Kbuild with an obj-m line",
                      hint="a module folder holds NAME.rs and a Kbuild saying `obj-m := NAME.o`")


def build_module(tc: Toolchain, kernel: KernelBuild, folder: Path,
                 extra_binds: tuple[Path, ...] = (), clippy: bool = False,
                 coverage: bool = False) -> ModuleBuild:
    """Build the module(s) of `folder`; with `clippy`, lint every Rust file with clippy too
    (the kernel's CLIPPY=1) and fail on any warning; with `coverage` (rustkm fuzz), on a
    kernel with KCOV, instrument the module's objects for it."""
    folder = folder.expanduser().resolve()
    if not folder.is_dir():
        raise RustkmError(f"module folder {folder} does not exist")
    names = module_names(folder)
    # A clippy or coverage build gets its own folder: it must not rewrite a .ko a running VM
    # test reads (and each keeps its objects, so neither rebuilds the other's).
    kcov = _kcov(kernel) if coverage else []
    flavour = "-clippy" if clippy else "-kcov" if kcov else ""
    output = store_dir() / "modules" / kernel.key / f"{folder.name}-{cache_key(str(folder))}{flavour}"
    output.mkdir(parents=True, exist_ok=True)
    # The target kernel's version and the module's presence probes as rustc cfgs: one source
    # builds on 7.2 and 7.3.
    probes = present_probes(tc, kernel, read_module_file(folder).probes)
    rustflags = " ".join([krustflags(kernel.source.version), *(f"--cfg {c}" for c in probes)])
    argv = ["make", "-C", str(kernel.build_dir), f"M={folder}", f"MO={output}",
            *kernel.module_make_args(), f"KRUSTFLAGS={rustflags}", *kcov,
            *(["CLIPPY=1"] if clippy else [])]
    modules = tuple(output / f"{name}.ko" for name in names)
    project = _project_root(folder)
    binds = [kernel.source.tree, folder.parent, project, *extra_binds]
    by_content = (folder, project)
    with locked(output, f"the build of {folder.name}"):
        # Current: make would change nothing (for clippy: the last run had no warnings, and
        # clippy would say the same of the same files, as cargo clippy replays its verdict).
        if module_stamp.current(output, folder, argv, modules, by_content):
            return ModuleBuild(folder, output, modules)
        (output / module_stamp.STAMP).unlink(missing_ok=True)
        if clippy:
            # Recompile so that clippy sees every file, not only the ones that changed.
            for obj in output.glob("*.o"):
                obj.unlink()
        started = time.time_ns()
        with step(f"building {folder.name}"):
            proc = tc.run(argv, cwd=folder, env=ccache_env(), binds=binds, check=False,
                          timeout=MODULE_BUILD_TIMEOUT)
        warned = clippy and "warning:" in (proc.stdout or "")
        if proc.returncode == 0 and not warned and all(m.is_file() for m in modules):
            module_stamp.record(output, folder, argv, modules, by_content,
                                lambda p: tc.host_path(p, binds), started,
                                also=(kernel.build_dir / "Module.symvers",
                                      kernel.build_dir / ".config"))
    if proc.returncode == 0 and warned:
        raise RustkmError(f"clippy has warnings for {folder}",
                          details=_compiler_messages(proc.stdout or ""))
    if proc.returncode != 0:
        hint = "fix the errors above (paths are your files), then run again"
        if gates := configured_out(proc.stdout or ""):
            # An item of the kernel crate this kernel's config leaves out: say which option.
            hint = explain_gates(gates, kernel.config, kernel.source.tree,
                                 stock=bool(kernel.image_path))
        raise RustkmError(f"the module in {folder} does not compile",
                          details=_compiler_messages(proc.stdout or ""), hint=hint)
    for module in modules:
        if not module.is_file():
            raise RustkmError(f"make succeeded but {module.name} was not produced",
                              details=(proc.stdout or "")[-2000:])
    return ModuleBuild(folder, output, modules)


def _kcov(kernel: KernelBuild) -> list[str]:
    """On a kernel with KCOV (the debug lane), the make variable that instruments a module's
    C and Rust objects (Kbuild leaves modules out unless asked), so that rustkm fuzz measures
    its coverage."""
    try:
        config = kernel.config.read_text(errors="replace").splitlines()
    except OSError:
        return []
    return ["KCOV_INSTRUMENT=y"] if "CONFIG_KCOV=y" in config else []


def _project_root(folder: Path) -> Path:
    """The project the module belongs to: shared code (kmods/lib) may live anywhere in it."""
    from rustkm.project import find_project

    return find_project(folder).root


def _compiler_messages(output: str) -> str:
    """rustc's and clang's messages as they printed them, without make's chatter."""
    kept = [line for line in output.splitlines()
            if not line.startswith(("make[", "make:")) and not re.match(r"^  [A-Z]+ ", line)]
    return "\n".join(kept).strip() or output[-3000:]
