"""`rustkm export`: plain `make -C DIR/build M=$PWD` builds a module that loads, outside rustkm;
a different rustc is refused before anything is compiled."""

import shutil
from pathlib import Path

import pytest

from rustkm import boot
from rustkm.errors import RustkmError
from rustkm.export import export_metadata
from rustkm.toolchain import ensure_toolchain, rootfs_toolchain

PRINTERFACT = Path(__file__).parents[1] / "kmods" / "printerfact"


@pytest.fixture(scope="module")
def exported(rustkm_kernel, tmp_path_factory):
    tc, kernel = rustkm_kernel
    out = tmp_path_factory.mktemp("export") / "metadata"
    export_metadata(kernel, out, tc.versions())
    yield out
    shutil.rmtree(out, ignore_errors=True)


def copy_printerfact(folder: Path) -> Path:
    """printerfact as it sits in a project: with kmods/lib beside it, for its `#[path]` module."""
    shutil.copytree(PRINTERFACT.parent / "lib", folder / "kmods" / "lib")
    shutil.copytree(PRINTERFACT, folder / "kmods" / "printerfact")
    return folder / "kmods" / "printerfact"


def test_plain_make_builds_a_module_that_loads(rustkm_kernel, exported, tmp_path):
    tc, kernel = rustkm_kernel
    module = copy_printerfact(tmp_path)
    tc.run(["make", "-C", str(exported / "build"), f"M={module}"], cwd=module, binds=[tmp_path])
    ko = module / "printerfact.ko"
    vermagic = tc.run(["modinfo", "-F", "vermagic", str(ko)]).stdout.split()[0]
    assert vermagic == kernel.release
    assert f"kernel release: {kernel.release}" in (exported / "TOOLCHAIN").read_text()
    with boot(kernel, [ko], toolchain=tc) as vm:
        vm.insmod("printerfact")
        assert vm.succeed("cat /dev/printerfact").endswith("\n")


def test_another_rustc_is_refused_up_front(rustkm_kernel, exported, tmp_path):
    tc, _ = rustkm_kernel
    other = ensure_toolchain() if tc.name != "debian-trixie" else rootfs_toolchain("sid")
    if other.root is None or not (other.root.parent / "complete").exists():
        pytest.skip(f"no second toolchain ({other.name}) to try")
    module = copy_printerfact(tmp_path)
    with pytest.raises(RustkmError) as refused:
        other.run(["make", "-C", str(exported / "build"), f"M={module}"], cwd=module,
                  binds=[tmp_path])
    assert "this kernel's Rust metadata needs" in str(refused.value)
    assert not (module / "printerfact.o").exists()
