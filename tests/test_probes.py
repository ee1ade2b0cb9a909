"""Presence probes (rustkm-module.toml [probes]): each one that compiles against the target
kernel's Rust crates becomes `--cfg rustkm_has_NAME` on the module's rustc command lines."""

import json

import pytest

from rustkm.errors import RustkmError
from rustkm.kernel import probes as probes_mod
from rustkm.kernel.probes import present_probes, probe_sources
from rustkm.module import build_module
from rustkm.module_file import Probe, read_module_file
from rustkm.toolchain import store_dir

PROBES = """
[probes]
mutex = "kernel::sync::Mutex"
pr_info = "kernel::pr_info"
no_such_item = "kernel::no_such_module::Thing"
mutex_lock = { code = "fn f(m: &kernel::sync::Mutex<u32>) -> u32 { *m.lock() }" }
no_such_method = { code = "fn f(m: &kernel::sync::Mutex<u32>) -> u32 { m.no_such_method() }" }
"""

# Compiles only when every probe came out as the kernel has it: the build is the proof.
MODULE = """// SPDX-License-Identifier: GPL-2.0
//! Checks the presence probes of its rustkm-module.toml at compile time.
use kernel::prelude::*;

#[cfg(not(rustkm_has_mutex))]
compile_error!("kernel::sync::Mutex exists: rustkm_has_mutex should be set");
#[cfg(not(rustkm_has_pr_info))]
compile_error!("kernel::pr_info exists: rustkm_has_pr_info should be set");
#[cfg(not(rustkm_has_mutex_lock))]
compile_error!("Mutex::lock exists: rustkm_has_mutex_lock should be set");
#[cfg(rustkm_has_no_such_item)]
compile_error!("rustkm_has_no_such_item should not be set");
#[cfg(rustkm_has_no_such_method)]
compile_error!("rustkm_has_no_such_method should not be set");

module! {
    type: Probed,
    name: "probed",
    authors: ["rustkm"],
    description: "presence probes",
    license: "GPL",
}

struct Probed;

impl kernel::Module for Probed {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(Probed)
    }
}
"""


def test_probes_are_read_from_the_module_file(tmp_path):
    (tmp_path / "rustkm-module.toml").write_text(PROBES)
    found = read_module_file(tmp_path).probes
    assert [p.name for p in found] == ["mutex", "pr_info", "no_such_item", "mutex_lock",
                                       "no_such_method"]
    assert found[0] == Probe("mutex", path="kernel::sync::Mutex")
    assert found[3].code.startswith("fn f(")
    assert found[0].cfg == "rustkm_has_mutex"
    assert read_module_file(tmp_path / "nowhere").probes == ()


@pytest.mark.parametrize("text, message", [
    ('[probes]\nBad = "kernel::x"\n', "a probe name is lower case"),
    ('[probes]\nx = "kernel::x; evil()"\n', "is not a Rust path"),
    ('[probes]\nx = 3\n', "must be a Rust path"),
    ('[probes]\nx = { code = "" }\n', "must be a Rust path"),
    ('[probes]\nx = { code = "fn f() {}", extra = 1 }\n', "must be a Rust path"),
    ('probes = 3\n', "probes must be a table"),
    ('[probe]\nx = "kernel::x"\n', "only \\[lanes\\] skip, \\[probes\\]"),
    ('[lanes]\nskip = 3\n', "skip must be a table"),
    ('[probes\n', "cannot be read"),
])
def test_a_bad_module_file_is_refused_naming_the_problem(tmp_path, text, message):
    (tmp_path / "rustkm-module.toml").write_text(text)
    with pytest.raises(RustkmError, match=message):
        read_module_file(tmp_path)


def test_each_probe_is_its_own_crate_beside_a_control():
    sources = probe_sources([Probe("a", path="kernel::sync::Mutex"),
                             Probe("b", code="fn f() {}")])
    assert list(sources) == ["rustkm_probe_control", "rustkm_probe_a", "rustkm_probe_b"]
    assert "use kernel::sync::Mutex as rustkm_probed;" in sources["rustkm_probe_a"]
    assert sources["rustkm_probe_b"].endswith("fn f() {}\n")


@pytest.fixture
def probed_module(tmp_path):
    folder = tmp_path / "probed"
    folder.mkdir()
    (folder / "probed.rs").write_text(MODULE)
    (folder / "Kbuild").write_text("obj-m := probed.o\n")
    (folder / "rustkm-module.toml").write_text(PROBES)
    return folder


def test_a_module_builds_with_the_probes_its_kernel_has(rustkm_kernel, probed_module):
    tc, kernel = rustkm_kernel
    build = build_module(tc, kernel, probed_module)
    assert build.ko("probed").is_file()
    probes = read_module_file(probed_module).probes
    assert present_probes(tc, kernel, probes) == [
        "rustkm_has_mutex", "rustkm_has_pr_info", "rustkm_has_mutex_lock"]
    # The cached entry says why an absent probe is absent: rustc's own error.
    entries = list((store_dir() / "probes" / kernel.key).glob("*.json"))
    why = [json.loads(e.read_text())["why"] for e in entries]
    assert any("no_such_method" in w.get("no_such_method", "") for w in why), why


def test_a_kernel_that_cannot_compile_even_the_control_is_an_error(rustkm_kernel, monkeypatch):
    tc, kernel = rustkm_kernel
    monkeypatch.setattr(probes_mod, "_HEADER", "this is not Rust\n")
    with pytest.raises(RustkmError, match="must compile on any kernel did not"):
        present_probes(tc, kernel, [Probe("mutex", path="kernel::sync::Mutex")])
