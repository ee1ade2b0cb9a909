"""The kernel build for real: what modules need is there, reruns are no-ops, an interrupted
build resumes, and concurrent builders share one build instead of corrupting it."""

import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from rustkm import boot
from rustkm.kernel.build import cut_short_cmd_files
from rustkm.kernel.config import parse_config
from rustkm.machine import GuestKernel

pytestmark = pytest.mark.kernel_build


def test_the_kernel_has_rust_and_everything_modules_need(kernel):
    config = parse_config(kernel.config.read_text())
    assert config["RUST"] == "y"
    assert config.get("MODVERSIONS", "n") == "n" and config["MODULES"] == "y"
    for part in (kernel.vmlinux, kernel.bzimage, kernel.symvers,
                 kernel.build_dir / "rust/libkernel.rmeta",
                 kernel.build_dir / "rust/libmacros.so"):
        assert part.is_file(), part
    assert kernel.release.startswith("7.2.")


def test_a_second_build_is_a_noop():
    result = subprocess.run([sys.executable, "-m", "rustkm.cli", "kernel", "build"],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "building Linux" not in result.stderr and "configuring" not in result.stderr
    assert "ready" in result.stderr


BUILDER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from rustkm.kernel.build import KernelBuild, ensure_kernel
    from rustkm.project import find_project
    from rustkm.kernel.choice import LaneChoice
    from rustkm.toolchain import ensure_toolchain
    original = KernelBuild.load(Path(sys.argv[1]))
    # The fragments as this checkout resolves them: the stamp may name another checkout's.
    fragments = LaneChoice.ask().lane(find_project()).fragment_list()
    build = ensure_kernel(ensure_toolchain(), original.source, fragments,
                          kernels_dir=Path(sys.argv[2]))
    print("built", build.vmlinux)
""")


def start_builder(kernel, kernels_dir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", BUILDER, str(kernel.build_dir),
                             str(kernels_dir)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_interrupted_build_resumes_and_concurrent_builders_share_it(kernel, tmp_path):
    kernels_dir = tmp_path / "kernels"
    copy = kernels_dir / kernel.key
    try:
        # A copy of the cached build with some objects and the stamp gone: an incremental
        # rebuild of a few dozen objects plus the vmlinux link, not a whole kernel.
        shutil.copytree(kernel.build_dir, copy, symlinks=True)
        (copy / "rustkm-build.json").unlink()
        (copy / "vmlinux").unlink()
        removed = sorted((copy / "lib").glob("string*.o")) + sorted((copy / "kernel").glob("*.o"))
        for obj in removed:
            obj.unlink()
        assert len(removed) > 20

        first = start_builder(kernel, kernels_dir)
        deadline = time.monotonic() + 300
        while not any(obj.exists() for obj in removed):
            assert first.poll() is None, first.stdout.read() if first.stdout else ""
            assert time.monotonic() < deadline, "the rebuild never started"
            time.sleep(0.2)
        first.send_signal(signal.SIGKILL)  # as a user's kill -9, mid-compile
        first.wait()
        assert not (copy / "rustkm-build.json").exists()
        # A kill while Kbuild's fixdep writes a .cmd file leaves it cut short (seen in a lane
        # run: make then stops at "unterminated call to function 'wildcard'").
        # One of an object the killed builder was not rebuilding (mm/), so that its state is
        # known: a whole .cmd file, cut in the middle of a $(wildcard ...).
        cmd = next(p for p in sorted((copy / "mm").glob(".*.o.cmd"))
                   if "$(wildcard" in p.read_text())
        text = cmd.read_text()
        cmd.write_text(text[:text.index("$(wildcard") + 12])

        second, third = start_builder(kernel, kernels_dir), start_builder(kernel, kernels_dir)
        outputs = [p.communicate(timeout=900)[0] for p in (second, third)]
        if [p.returncode for p in (second, third)] != [0, 0]:
            # Whole, not a repr cut in the middle: the cause is in make's output.
            pytest.fail("a builder failed:\n" + "\n-----\n".join(outputs), pytrace=False)
        assert sum("building Linux" in out for out in outputs) == 1, outputs
        assert all(f"built {copy / 'vmlinux'}" in out for out in outputs)
        said = [" ".join(out.split()) for out in outputs]  # whatever the line width
        assert sum(f"{cmd.name} cut short by an interrupted build; removed, resuming" in out
                   for out in said) == 1, outputs

        with boot(GuestKernel(copy / "vmlinux")) as vm:
            assert vm.succeed("uname -r").strip() == kernel.release
    finally:
        shutil.rmtree(copy, ignore_errors=True)


def test_cmd_files_make_could_not_parse_are_named(tmp_path):
    # make's own words, from a build resumed after a kill -9 (the lane run that found it).
    (tmp_path / "kernel").mkdir()
    (tmp_path / "kernel/.panic.o.cmd").write_text("savedcmd_kernel/panic.o := cl")
    output = ("  CC      arch/x86/kernel/umip.o\n"
              "kernel/.panic.o.cmd:5: *** unterminated call to function 'wildcard': "
              "missing ')'.  Stop.\n"
              "make[3]: *** [scripts/Makefile.build:555: kernel] Error 2\n"
              "../.outside.cmd:1: *** missing separator.  Stop.\n")
    assert cut_short_cmd_files(output, tmp_path) == [(tmp_path / "kernel/.panic.o.cmd").resolve()]
    assert cut_short_cmd_files("make: *** [Makefile:260: __sub-make] Error 2\n", tmp_path) == []
