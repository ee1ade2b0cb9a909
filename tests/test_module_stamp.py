"""A module build whose stamp matches skips make; anything the stamp cannot vouch for runs it.
Real builds against the lane's kernel: a Rust crate with a `#[path]` file outside its folder
and a C half (kernel headers among its inputs)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from rustkm import module_stamp
from rustkm.errors import RustkmError
from rustkm.module import build_module
from rustkm.toolchain import Toolchain

MAIN = """// SPDX-License-Identifier: GPL-2.0
//! The stamp tests' module.
use kernel::prelude::*;

#[path = "../lib/shared.rs"]
mod shared;

module! {
    type: Stamped,
    name: "stamped",
    authors: ["rustkm"],
    description: "stamp test",
    license: "GPL",
}

struct Stamped;

impl kernel::Module for Stamped {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("{}\\n", shared::WORD);
        Ok(Stamped)
    }
}
"""
GLUE = """#include <linux/kernel.h>
int rustkm_stamp_glue(void);
int rustkm_stamp_glue(void) { return 1; }
"""


@pytest.fixture
def module(tmp_path: Path) -> Path:
    folder = tmp_path / "stamped"
    folder.mkdir()
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib/shared.rs").write_text('pub(crate) const WORD: &str = "first word";\n')
    (folder / "Kbuild").write_text("obj-m := stamped.o\nstamped-y := stamped_main.o glue.o\n")
    (folder / "stamped_main.rs").write_text(MAIN)
    (folder / "glue.c").write_text(GLUE)
    time.sleep(0.2)
    return folder


@pytest.fixture
def makes(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The make commands the builds ran."""
    ran: list[list[str]] = []
    real = Toolchain.run

    def spy(self: Toolchain, argv, *args, **kwargs):  # type: ignore[no-untyped-def]
        if argv and argv[0] == "make":
            ran.append(list(argv))
        return real(self, argv, *args, **kwargs)

    monkeypatch.setattr(Toolchain, "run", spy)
    return ran


def saved(path: Path) -> None:
    """A file saved now, a moment before the next build. A file saved within a tenth of a
    second of a build's start may have been saved during it (file times are coarse): that
    build records no stamp."""
    os.utime(path)
    time.sleep(0.2)


def test_a_current_build_skips_make_and_every_change_runs_it(rustkm_kernel, module, makes):
    tc, kernel = rustkm_kernel
    first = build_module(tc, kernel, module)
    ko = first.ko("stamped")
    assert len(makes) == 1 and (first.output / module_stamp.STAMP).is_file()
    inputs = json.loads((first.output / module_stamp.STAMP).read_text())["inputs"]
    assert str(module.parent / "lib/shared.rs") in inputs  # the #[path] file, via Kbuild
    assert any(p.endswith("include/linux/kernel.h") for p in inputs)  # the C half's header
    built = ko.stat().st_mtime_ns

    assert build_module(tc, kernel, module).modules == first.modules
    assert len(makes) == 1 and ko.stat().st_mtime_ns == built

    saved(module / "stamped_main.rs")  # saved again, not changed: still current
    build_module(tc, kernel, module)
    assert len(makes) == 1

    (module.parent / "lib/shared.rs").write_text('pub(crate) const WORD: &str = "other word";\n')
    saved(module.parent / "lib/shared.rs")
    build_module(tc, kernel, module)
    assert len(makes) == 2 and b"other word" in ko.read_bytes()

    (module / "notes.txt").write_text("a new file in the folder\n")
    saved(module / "notes.txt")
    build_module(tc, kernel, module)
    build_module(tc, kernel, module)
    assert len(makes) == 3  # once for the new file, then current again

    ko.unlink()
    build_module(tc, kernel, module)
    assert len(makes) == 4 and ko.is_file()


def test_a_damaged_stamp_or_one_for_another_command_means_make(rustkm_kernel, module, makes):
    tc, kernel = rustkm_kernel
    build = build_module(tc, kernel, module)
    stamp = build.output / module_stamp.STAMP
    stamp.write_text("{not json")
    build_module(tc, kernel, module)
    assert len(makes) == 2
    data = json.loads(stamp.read_text())
    data["argv"] = [*data["argv"], "KRUSTFLAGS=--cfg other"]
    stamp.write_text(json.dumps(data))
    build_module(tc, kernel, module)
    assert len(makes) == 3


def test_a_clean_clippy_verdict_is_kept_a_warning_never_is(rustkm_kernel, module, makes):
    tc, kernel = rustkm_kernel
    build_module(tc, kernel, module, clippy=True)
    build_module(tc, kernel, module, clippy=True)
    assert len(makes) == 1  # the same files: clippy would say the same
    main = module / "stamped_main.rs"
    main.write_text(main.read_text().replace("Ok(Stamped)", "let _ = 2u32 as u32;\n        Ok(Stamped)"))
    saved(main)
    for _ in range(2):
        with pytest.raises(RustkmError, match="clippy has warnings"):
            build_module(tc, kernel, module, clippy=True)
    assert len(makes) == 3


def test_a_source_edited_while_make_runs_gets_no_stamp(rustkm_kernel, module, makes,
                                                       monkeypatch: pytest.MonkeyPatch):
    tc, kernel = rustkm_kernel
    real = Toolchain.run

    def edit_during_make(self: Toolchain, argv, *args, **kwargs):  # type: ignore[no-untyped-def]
        done = real(self, argv, *args, **kwargs)
        with (module / "stamped_main.rs").open("a") as f:
            f.write("// edited while make ran\n")
        return done

    monkeypatch.setattr(Toolchain, "run", edit_during_make)
    build = build_module(tc, kernel, module)
    assert not (build.output / module_stamp.STAMP).exists()
    monkeypatch.undo()
    saved(module / "stamped_main.rs")
    ran: list[str] = []
    monkeypatch.setattr(Toolchain, "run", lambda self, argv, *a, **k:
                        ran.append(argv[0]) or real(self, argv, *a, **k))
    build_module(tc, kernel, module)
    assert ran == ["make"] and (build.output / module_stamp.STAMP).is_file()


def test_sandbox_paths_map_to_the_host(tmp_path: Path):
    root = tmp_path / "root"
    bound = tmp_path / "project"
    tc = Toolchain("t", root)
    assert tc.host_path(Path("/usr/include/stdio.h"), [bound]) == root / "usr/include/stdio.h"
    assert tc.host_path(bound / "a.rs", [bound]) == bound / "a.rs"
    assert tc.host_path(Path("/tmp/x.c"), []) == Path("/tmp/x.c")
    assert Toolchain("host", None).host_path(Path("/usr/x.h")) == Path("/usr/x.h")
