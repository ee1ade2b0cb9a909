"""`rustkm new NAME`: a module folder with a minimal module, its Kbuild, a VM test, and a
rust-project.json so that editors (rust-analyzer) resolve `kernel::`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rustkm.errors import RustkmError
from rustkm.module_file import MODULE_FILE

if TYPE_CHECKING:
    from rustkm.kernel.build import KernelBuild
    from rustkm.toolchain import Toolchain

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,54}$")
# The crates a kernel module is compiled with (the kernel's rust/ and the sysroot): a module
# crate of the same name cannot tell itself from its dependency (rustc E0519).
_CRATE_NAMES = frozenset({"alloc", "bindings", "build_error", "compiler_builtins", "core", "ffi",
                          "kernel", "macros", "pin_init", "pin_init_internal", "proc_macro",
                          "proc_macro2", "quote", "std", "syn", "uapi", "zerocopy",
                          "zerocopy_derive"})
# Names MODULE_RS takes from the prelude; the module's own type must not shadow them.
_TEMPLATE_NAMES = frozenset({"Drop", "Err", "Module", "Ok", "Result", "ThisModule"})

MODULE_TOML = """\
# rustkm's settings for this module (all optional).

# Lanes (kernels) where the module does not apply, with the reason `rustkm matrix` and
# pytest show:
# [lanes]
# skip = { "debian:*" = "needs CONFIG_KUNIT, which Debian's kernels leave out" }

# Presence probes: each one is compiled against the target kernel's Rust crates, and when it
# compiles the module is built with `--cfg rustkm_has_NAME`. A path probes an item; code
# probes anything that must compile (a method, a signature):
# [probes]
# coherent_dma_address = { code = "fn f(c: &kernel::dma::Coherent<[u8]>) { let _ = c.dma_address(); }" }
# configfs = "kernel::configfs::Subsystem"
"""

MODULE_RS = """\
// SPDX-License-Identifier: GPL-2.0

//! {name}: a minimal Rust kernel module.
//!
//! Loading it logs "{name}: loaded"; unloading it, "{name}: unloaded". Its unit tests (the
//! `tests` module below) run inside the kernel with KUnit: `rustkm kunit` or `pytest`.
//!
//! One source for several kernels (`rustkm matrix --lanes default,debian:next`): rustkm
//! compiles the module with `--cfg rustkm_kernel_ge_X_Y` for every release up to the target
//! kernel's, so an item whose spelling changed takes both, e.g.
//! `#[cfg(rustkm_kernel_ge_7_3)]` above 7.3's and `#[cfg(not(rustkm_kernel_ge_7_3))]` above
//! 7.2's (see kmods/lib/compat.rs in rustkm for shared ones). Where a version says too little,
//! a presence probe in rustkm-module.toml asks the target kernel's own Rust crates whether an
//! item exists and sets `--cfg rustkm_has_NAME` when it does.

use kernel::prelude::*;

module! {{
    type: {type_name},
    name: "{name}",
    authors: ["{author}"],
    description: "{name}: a Rust kernel module",
    license: "GPL",
}}

struct {type_name};

impl kernel::Module for {type_name} {{
    fn init(_module: &'static ThisModule) -> Result<Self> {{
        pr_info!("{{}}\\n", state(true));
        Ok({type_name})
    }}
}}

impl Drop for {type_name} {{
    fn drop(&mut self) {{
        pr_info!("{{}}\\n", state(false));
    }}
}}

/// What the module logs when it is loaded (`true`) or unloaded.
fn state(loaded: bool) -> &'static str {{
    if loaded {{
        "loaded"
    }} else {{
        "unloaded"
    }}
}}

/// Unit tests that run inside the kernel (KUnit) once the module is loaded in a VM; each
/// `#[test]` is a pytest result. Without CONFIG_KUNIT they compile away.
#[kunit_tests({name})]
mod tests {{
    use super::*;

    #[test]
    fn logs_loaded_then_unloaded() {{
        assert_eq!(state(true), "loaded");
        assert_eq!(state(false), "unloaded");
    }}
}}
"""

TEST_PY = '''\
"""{name} in a throwaway VM."""

import pytest

pytestmark = pytest.mark.rustkm(modules=["."])


def test_loads_and_unloads(vm):
    vm.insmod("{name}")
    vm.wait_for_console_text(r"{name}: loaded")
    assert "{name}" in vm.succeed("cat /proc/modules")
    vm.rmmod("{name}")
    vm.wait_for_console_text(r"{name}: unloaded")
'''


def type_name(name: str) -> str:
    """The module's Rust type: hello_world -> HelloWorld (result -> ResultModule)."""
    camel = "".join(part.capitalize() for part in name.split("_") if part)
    return f"{camel}Module" if camel in _TEMPLATE_NAMES or not camel else camel


def scaffold(name: str, parent: Path, author: str = "rustkm user") -> Path:
    if not _NAME.match(name):
        raise RustkmError(f"{name!r} is not a usable module name",
                          hint="lower case letters, digits and _, starting with a letter "
                               "(it is a Rust crate and a C identifier)")
    if name in _CRATE_NAMES:
        raise RustkmError(f"{name!r} is the name of a crate every module depends on",
                          hint="rustc cannot build a crate named like its dependency: "
                               f"pick another name, e.g. my_{name}")
    if not author.isascii() or not author.isprintable():
        raise RustkmError(f"author {author!r} is not printable ASCII, which module! takes",
                          hint="e.g. --author 'Jane Doe <jane@example.org>'")
    parent = parent.expanduser().resolve()
    existing = next(p for p in (parent, *parent.parents) if p.exists())
    if not existing.is_dir():
        raise RustkmError(f"{parent} cannot hold a module folder: {existing} is a file",
                          hint="pass --dir a folder (it is created if missing)")
    folder = parent / name
    if folder.exists():
        raise RustkmError(f"{folder} already exists", hint="pick another name or --dir")
    folder.mkdir(parents=True)
    quoted = author.replace("\\", "\\\\").replace('"', '\\"')  # a Rust string literal's body
    (folder / f"{name}.rs").write_text(
        MODULE_RS.format(name=name, type_name=type_name(name), author=quoted))
    (folder / "Kbuild").write_text(f"obj-m := {name}.o\n")
    (folder / MODULE_FILE).write_text(MODULE_TOML)
    (folder / f"test_{name}.py").write_text(TEST_PY.format(name=name))
    (folder / "README.md").write_text(f"# {name}\n\nBuild: `rustkm build {folder.name}`. "
                                      f"Test in a VM: `pytest {folder.name}` (its VM tests "
                                      f"and its KUnit cases), or the KUnit suite alone: "
                                      f"`rustkm kunit {folder.name}`.\n")
    return folder


def write_rust_project(folder: Path, tc: Toolchain, kernel: KernelBuild) -> Path:
    """rust-project.json from `kernel`'s own generator, with paths valid on the host."""
    tc.run(["make", "-C", str(kernel.build_dir), f"M={folder}", *kernel.module_make_args(),
            "rust-analyzer"], cwd=folder, binds=[kernel.source.tree])
    path = folder / "rust-project.json"
    project = json.loads(path.read_text())
    sysroot = project.get("sysroot", "")
    if tc.root is not None and sysroot.startswith("/"):
        # The sysroot and the std crates' sources under it are inside the toolchain, whose
        # /usr is TOOLCHAIN_ROOT/usr on the host.
        project = _rebased(project, sysroot, tc.root)
    path.write_text(json.dumps(project, indent=1) + "\n")
    return path


def _rebased(value: Any, inside: str, root: Path) -> Any:
    """`value` (JSON) with every path under `inside` moved below `root`."""
    if isinstance(value, dict):
        return {k: _rebased(v, inside, root) for k, v in value.items()}
    if isinstance(value, list):
        return [_rebased(v, inside, root) for v in value]
    if isinstance(value, str) and (value == inside or value.startswith(inside.rstrip("/") + "/")):
        return str(root / value.lstrip("/"))
    return value
