"""rustkm debug and --gdb: QEMU's gdb stub, gdb with vmlinux and the modules' symbols at
their load addresses. The gdb test needs a kernel with debug information (the debug lane);
the refusals run anywhere."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rustkm.debug import (
    GdbTarget,
    gdb_argv,
    gdb_script,
    has_debug_info,
    require_debug_info,
    require_gdb,
    stub_free_check,
)
from rustkm.errors import RustkmError
from rustkm.kernel.build import KernelBuild
from rustkm.toolchain import Toolchain

ROOT = Path(__file__).parents[1]


def _kernel(tmp_path: Path, config: str, image_path: str = "") -> KernelBuild:
    (tmp_path / ".config").write_text(config)
    return KernelBuild(build_dir=tmp_path, release="7.2.12", key="k", toolchain="t",
                       source=None, fragments=(), image_path=image_path)  # type: ignore[arg-type]


def test_the_script_places_every_section_of_every_module(tmp_path):
    kernel = _kernel(tmp_path, "CONFIG_DEBUG_INFO=y\n")
    (tmp_path / "vmlinux-gdb.py").write_text("")
    text = gdb_script(Path("/tmp/x/gdb.sock"), kernel,
                      [(Path("/m/printerfact.ko"), {".text": 0xffffffffc0000000,
                                                     ".data": 0xffffffffc0002000})],
                      Path("/tmp/x/attach.attached"))
    lines = text.splitlines()
    assert "target remote /tmp/x/gdb.sock" in lines
    assert f"source {tmp_path}/vmlinux-gdb.py" in lines
    assert ("add-symbol-file /m/printerfact.ko -s .text 0xffffffffc0000000 "
            "-s .data 0xffffffffc0002000") in lines
    assert lines[-1] == "shell touch /tmp/x/attach.attached"  # after the symbols are read


def test_a_batch_script_runs_after_the_attach_script_then_gdb_detaches():
    target = GdbTarget(Path("/s"), Path("/b/vmlinux"), Path("/w/attach.gdb"))
    argv = gdb_argv(target, Path("/u/break.gdb"))
    assert argv[argv.index("-batch"):] == ["-batch", "-x", "/w/attach.gdb", "-x",
                                          "/u/break.gdb", "-ex", "detach", "/b/vmlinux"]
    assert "-batch" not in gdb_argv(target, None)


def test_a_kernel_without_debug_information_is_refused_naming_the_option_and_lane(tmp_path):
    with pytest.raises(RustkmError, match="CONFIG_DEBUG_INFO is not set") as caught:
        require_debug_info(_kernel(tmp_path, "CONFIG_RUST=y\n"), "default")
    assert "--kernel debug" in (caught.value.hint or "")
    with pytest.raises(RustkmError, match="stock kernel"):
        require_debug_info(_kernel(tmp_path, "CONFIG_DEBUG_INFO=y\n", "/boot/vmlinuz"),
                           "debian:latest")
    require_debug_info(_kernel(tmp_path, "CONFIG_DEBUG_INFO=y\n"), "debug")


def test_gdb_missing_names_the_package(tmp_path, monkeypatch):
    host = Toolchain(name="host", root=None)
    bare = tmp_path / "bin"  # a PATH with a shell and no gdb, whatever this host has
    bare.mkdir()
    (bare / "sh").symlink_to(shutil.which("sh") or "/bin/sh")
    monkeypatch.setenv("PATH", str(bare))
    with pytest.raises(RustkmError, match="gdb is not in the toolchain") as caught:
        require_gdb(host)
    assert "gdb" in (caught.value.hint or "")


def test_run_gdb_on_a_kernel_without_debug_information_stops_before_booting(kernel):
    if has_debug_info(kernel):
        pytest.skip("this lane's kernel has debug information")
    result = subprocess.run([sys.executable, "-m", "rustkm.cli", "run", "--gdb",
                             "kmods/printerfact", "--", "true"], cwd=ROOT, capture_output=True,
                            text=True, timeout=600, check=False)
    assert result.returncode == 1
    out = result.stdout + result.stderr
    assert "no debug information" in out or "stock kernel" in out, out
    assert "booting" not in out


def _read_iter_body_line() -> int:
    """printerfact.rs's first line in read_iter's body: a line breakpoint there is placed at
    every copy of the function, the copy inlined into the kernel's miscdevice vtable included
    (the one a read runs), where `break`/`rbreak` by name find only the out-of-line copy."""
    lines = (ROOT / "kmods/printerfact/printerfact.rs").read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if "fn read_iter(" in line) + 1


def test_gdb_batch_breaks_in_printerfacts_read_and_names_the_rust_function(kernel, tmp_path):
    if not has_debug_info(kernel):
        pytest.skip("needs a kernel with debug information: the debug lane "
                    "(RUSTKM_DEBUG_KERNEL=1)")
    script = tmp_path / "break.gdb"
    # The kernel's gdb scripts parse C: from a Rust frame, lx- commands need `set language c`.
    script.write_text(f"break printerfact.rs:{_read_iter_body_line()}\ncontinue\nbt\n"
                      "set language c\nlx-ps\n")
    result = subprocess.run(
        [sys.executable, "-m", "rustkm.cli", "debug", "kmods/printerfact", "--gdb-batch",
         str(script), "--", "head -c 200 /dev/printerfact"],
        cwd=ROOT, capture_output=True, text=True, timeout=900, check=False,
        env={**os.environ, "RUSTKM_DEBUG_KERNEL": "1"})
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    frames = [line for line in out.splitlines() if line.startswith("#")]
    # The breakpoint was hit in the module's Rust function, and gdb names it.
    assert frames and "printerfact" in frames[0] and "read_iter" in frames[0], out
    assert "Breakpoint 1" in out and "printerfact.rs" in frames[0], out
    # The kernel's gdb scripts are loaded: lx-ps lists the task that is reading.
    assert any(line.split()[-1:] == ["head"] for line in out.splitlines()
               if line.startswith("0x")), out
    # The command ran to the end once gdb detached: the fact came out.
    assert "exited 0" in out and len(result.stdout.strip()) > 0, out


def _gdb_with_check(tc: Toolchain, tmp_path: Path, sock: Path) -> subprocess.CompletedProcess:
    script = tmp_path / "check.gdb"
    script.write_text("\n".join(stub_free_check(sock)) + "\necho checked\\n\n")
    return tc.run(["gdb", "-q", "-nx", "-batch", "-x", str(script)], binds=[tmp_path],
                  check=False, timeout=60)


def test_a_second_gdb_on_a_stub_that_has_a_client_is_refused(rustkm_kernel, tmp_path):
    import socket
    import threading

    tc = rustkm_kernel[0]
    busy = tmp_path / "busy.sock"  # as QEMU's stub with a client: the connection waits
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(busy))
    server.listen(1)
    done = _gdb_with_check(tc, tmp_path, busy)
    assert done.returncode == 3, done.stdout
    assert "already has a client" in done.stdout
    assert "checked" not in done.stdout
    server.close()

    free = tmp_path / "free.sock"  # a stub that answers: gdb goes on to attach
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(free))
    server.listen(1)

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(64)
            conn.sendall(b"+$S05#b8")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    done = _gdb_with_check(tc, tmp_path, free)
    thread.join(10)
    server.close()
    assert done.returncode == 0, done.stdout
    assert "checked" in done.stdout
