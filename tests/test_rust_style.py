"""Every Rust module in the project is rustfmt clean and clippy clean (the kernel's CLIPPY=1)."""

from pathlib import Path

import pytest

from rustkm.module import build_module

ROOT = Path(__file__).parents[1]
RUST_FILES = sorted(str(p) for p in (*ROOT.glob("kmods/**/*.rs"), *ROOT.glob("tests/kmods/**/*.rs")))
MODULE_DIRS = sorted({p.parent for p in (*ROOT.glob("kmods/**/Kbuild"),
                                         *ROOT.glob("tests/kmods/**/Kbuild"))})


def test_rustfmt_clean(rustkm_kernel):
    tc, _ = rustkm_kernel
    result = tc.run(["rustfmt", "--edition", "2021", "--check", *RUST_FILES], check=False,
                    binds=[ROOT])
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("folder", MODULE_DIRS, ids=[str(d.relative_to(ROOT)) for d in MODULE_DIRS])
def test_clippy_clean(rustkm_kernel, folder):
    tc, kernel = rustkm_kernel
    build_module(tc, kernel, folder, clippy=True)
