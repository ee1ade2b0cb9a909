"""The stock-kernel lane: what Debian's kernel config asks of a toolchain, and a refusal."""

import gzip
from pathlib import Path

import pytest

from rustkm.errors import RustkmError
from rustkm.kernel.config import parse_config
from rustkm.stock import StockToolchainNeeds, check_toolchain, release_key, upstream_version

DEBIAN_CONFIG = Path(__file__).parent / "data/debian/config-7.2.13+deb14-amd64.gz"


def debian_needs() -> StockToolchainNeeds:
    return StockToolchainNeeds.from_config(parse_config(gzip.decompress(
        DEBIAN_CONFIG.read_bytes()).decode()))


def test_needs_read_from_debians_real_kernel_config():
    needs = debian_needs()
    assert needs.rustc == "rustc 1.97.1 (8bab26f4f 2026-07-14) (built from a source tarball)"
    assert needs.rustc_version == "1.97.1"
    assert needs.compiler == "x86_64-linux-gnu-gcc-16"
    assert needs.compiler_package == "gcc-16"
    assert needs.bindgen == "bindgen 0.72.1"
    assert "gcc-16" in needs.packages and "rust-src" in needs.packages


def test_a_kernel_without_rust_is_refused():
    with pytest.raises(RustkmError, match="not built with CONFIG_RUST=y"):
        StockToolchainNeeds.from_config({"RUST": "n", "CC_VERSION_TEXT": '"gcc"'})


@pytest.mark.parametrize("debian,upstream", [
    ("1.97.1+dfsg1-1", "1.97.1"), ("0.72.1-1+b3", "0.72.1"), ("1:7.2.13-1", "7.2.13"),
    ("7.2.12-1~bpo13+1", "7.2.12")])
def test_upstream_version(debian, upstream):
    assert upstream_version(debian) == upstream


def test_releases_order_numerically():
    releases = ["7.2.9+deb14-amd64", "7.2.13+deb14-amd64", "7.10.1+deb14-amd64"]
    assert max(releases, key=release_key) == "7.10.1+deb14-amd64"


def test_a_toolchain_with_another_rustc_is_refused_with_both_versions():
    from rustkm.toolchain import rootfs_toolchain

    trixie = rootfs_toolchain()
    if trixie.root is None or not (trixie.root.parent / "complete").exists():
        pytest.skip("the trixie toolchain is not set up: run rustkm setup")
    with pytest.raises(RustkmError) as refused:
        check_toolchain(trixie, debian_needs())
    message = str(refused.value)
    assert "rustc 1.97.1" in message and "rustc 1.85.1" in message
    assert "not the one the kernel was built with" in message
