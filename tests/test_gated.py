"""`rustkm build` of a module using a kernel Rust item this kernel's config leaves out: the
option rustc's #[cfg(...)] note names, its value, why Kconfig leaves it off, the line to add."""

import subprocess
import sys
from pathlib import Path

import pytest

from rustkm.errors import RustkmError
from rustkm.kernel.gated import Gate, configured_out, explain_gates
from rustkm.module import build_module

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).parents[1]


def test_both_forms_of_rustcs_note_give_the_gates():
    output = (DATA / "rustc-configured-out.txt").read_text()
    assert configured_out(output) == [
        Gate("firmware", "RUST_FW_LOADER_ABSTRACTIONS", "y or m",
             "CONFIG_RUST_FW_LOADER_ABSTRACTIONS"),
        Gate("drm", "DRM", "y", 'CONFIG_DRM = "y"'),
    ]


def test_ordinary_errors_name_no_gate():
    assert configured_out("error[E0425]: cannot find value `x` in this scope\n") == []
    assert configured_out("note: found an item that was configured out\n") == []


def test_a_gate_is_named_once_however_often_rustc_repeats_it():
    output = (DATA / "rustc-configured-out.txt").read_text()
    assert len(configured_out(output + output)) == 2


def test_the_explanation_names_the_option_its_value_and_the_fragment_line(tmp_path):
    config = tmp_path / ".config"
    config.write_text("CONFIG_RUST=y\n# CONFIG_DRM is not set\n")
    gates = configured_out((DATA / "rustc-configured-out.txt").read_text())
    text = explain_gates(gates, config, tree=None)
    assert "kernel::drm is configured out of this kernel" in text
    assert f'#[cfg(CONFIG_DRM = "y")], and CONFIG_DRM is n in {config}' in text
    assert "CONFIG_RUST_FW_LOADER_ABSTRACTIONS is not set" in text
    assert "add to a config fragment: CONFIG_DRM=y" in text
    assert "add to a config fragment: CONFIG_RUST_FW_LOADER_ABSTRACTIONS=y" in text
    stock = explain_gates(gates, config, tree=None, stock=True)
    assert "stock kernel, whose config cannot change" in stock


MODULE = """// SPDX-License-Identifier: GPL-2.0
//! Uses the firmware loader abstraction, which the default kernel leaves out.
use kernel::prelude::*;

module! {
    type: Gated,
    name: "gated",
    authors: ["rustkm"],
    description: "needs CONFIG_RUST_FW_LOADER_ABSTRACTIONS",
    license: "GPL",
}

struct Gated;

impl kernel::Module for Gated {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let _ = core::mem::size_of::<kernel::firmware::Firmware>();
        Ok(Gated)
    }
}
"""


@pytest.fixture
def gated_module(tmp_path):
    folder = tmp_path / "gated"
    folder.mkdir()
    (folder / "gated.rs").write_text(MODULE)
    (folder / "Kbuild").write_text("obj-m := gated.o\n")
    return folder


def test_building_such_a_module_says_which_option_to_add(rustkm_kernel, gated_module):
    tc, kernel = rustkm_kernel
    with pytest.raises(RustkmError) as caught:
        build_module(tc, kernel, gated_module)
    hint = caught.value.hint or ""
    assert "kernel::firmware is configured out of this kernel" in hint
    assert "CONFIG_RUST_FW_LOADER_ABSTRACTIONS is n" in hint
    # Kconfig's reason, from the kernel's own tree.
    assert "RUST_FW_LOADER_ABSTRACTIONS is n (wanted y)" in hint
    assert "add to a config fragment: CONFIG_RUST_FW_LOADER_ABSTRACTIONS=y" in hint
    assert "found an item that was configured out" in (caught.value.details or "")


def test_rustkm_build_prints_it(rustkm_kernel, gated_module):
    result = subprocess.run([sys.executable, "-m", "rustkm.cli", "build", str(gated_module)],
                            cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 1
    assert "hint: kernel::firmware is configured out of this kernel" in result.stdout + \
        result.stderr
