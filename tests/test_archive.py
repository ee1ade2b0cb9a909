"""Downloads from Debian's archive: checked against the locked SHA256, a corrupt or partial
file in the cache is fetched again, and a locked version that left the archive is explained."""

import pytest

from rustkm.errors import RustkmError
from rustkm.kernel.source import DebianArchive
from rustkm.toolchain import rootfs_toolchain

# A small package of the stock lane's suite (a headers .deb is under 2 MB).
SUITE = "sid"


@pytest.fixture(scope="module")
def archive():
    tc = rootfs_toolchain()
    if tc.root is None or not (tc.root.parent / "complete").exists():
        pytest.skip("the toolchain is not set up: run rustkm setup")
    return DebianArchive.for_suite(tc, SUITE)


@pytest.fixture(scope="module")
def small_package(archive):
    names = archive.package_names(r"^linux-headers-[0-9.]+\+deb[0-9]+-common$")
    assert names, f"no kernel headers in {SUITE}"
    return archive.resolve(names[-1])


def test_a_corrupt_cached_download_is_fetched_again(archive, small_package):
    deb = archive.download(small_package)
    good = deb.read_bytes()
    deb.write_bytes(good[: len(good) // 2])  # as a download cut off half way
    again = archive.download(small_package)
    assert again == deb and again.read_bytes() == good


def test_a_locked_version_that_left_the_archive_says_what_to_do(archive, small_package):
    with pytest.raises(RustkmError) as gone:
        archive.resolve(small_package.package, "0.0.1-1")
    message = str(gone.value)
    assert "has left the Debian archive" in message and small_package.version in message
    assert "rustkm lock --update" in message


def test_an_unknown_package_is_named(archive):
    with pytest.raises(RustkmError, match="has no package linux-source-0.1"):
        archive.resolve("linux-source-0.1")
