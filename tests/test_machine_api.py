"""The Machine API against hostile input: file names, paths, guest text, killed owners, threads."""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
from pathlib import Path

import pytest

from rustkm import boot
from rustkm.errors import RustkmError, printable
from rustkm.machine import CommandFailed
from rustkm.workdir import make_workdir, process_identity, remove_stale

PRINTERFACT = pytest.mark.rustkm(modules=["../kmods/printerfact"])


def _printerfact_ko(vm) -> Path:
    return next(m for m in vm.spec.modules if m.name == "printerfact.ko")


@PRINTERFACT
def test_a_module_file_name_cannot_inject_a_command(vm, tmp_path):
    hostile = tmp_path / "pf;touch $HOME-pwned;true #.ko"
    shutil.copy(_printerfact_ko(vm), hostile)
    vm.insmod(hostile)
    assert vm.succeed("cat /dev/printerfact")
    assert vm.run("ls /root-pwned /-pwned 2>/dev/null").stdout == b""
    vm.rmmod("printerfact")


@PRINTERFACT
def test_insmod_that_loads_nothing_is_not_a_success(vm, tmp_path, monkeypatch):
    # busybox sh runs its own insmod whatever PATH says: an insmod that exits 0 and loads
    # nothing is had by running `true` in its place (in the real guest).
    real_run = vm.run
    monkeypatch.setattr(vm, "run", lambda command, timeout=60: real_run(
        "true" if command.startswith("insmod ") else command, timeout))
    with pytest.raises(CommandFailed, match="reported success, but no module 'printerfact'"):
        vm.insmod("printerfact")
    monkeypatch.undo()
    empty = tmp_path / "pf;true #.ko"
    empty.write_bytes(b"")
    with pytest.raises(CommandFailed, match=r"insmod pf;true #.ko failed: insmod: short read"):
        vm.insmod(empty)
    with pytest.raises(RustkmError, match="does not exist"):
        vm.insmod(tmp_path / "missing.ko")


def test_paths_that_look_like_options_or_are_missing_are_refused(vm, tmp_path):
    with pytest.raises(RustkmError, match="not absolute"):
        vm.copy_from("-n", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(CommandFailed, match="No such file"):
        vm.copy_from("/nonexistent", tmp_path / "out")
    with pytest.raises(CommandFailed, match="Is a directory"):
        vm.copy_from("/tmp", tmp_path / "out")
    with pytest.raises(RustkmError, match="cannot copy .* No such file"):
        vm.copy_to(tmp_path / "missing", "/tmp/x")
    with pytest.raises(RustkmError, match="not absolute"):
        vm.copy_to(Path(__file__), "relative")


def test_copies_keep_every_byte_and_the_mode(vm, tmp_path):
    data = os.urandom(3_000_000)
    source = tmp_path / "blob"
    source.write_bytes(data)
    source.chmod(0o751)
    vm.copy_to(source, "/tmp/blob")
    assert vm.succeed("stat -c %a /tmp/blob").strip() == "751"
    vm.copy_from("/tmp/blob", tmp_path / "back")
    assert (tmp_path / "back").read_bytes() == data
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    vm.copy_to(empty, "/tmp/blob")
    assert vm.succeed("wc -c < /tmp/blob").strip() == "0"


def test_a_failed_copy_leaves_the_host_file_as_it_was(vm, tmp_path):
    kept = tmp_path / "kept"
    kept.write_bytes(b"what was there")
    with pytest.raises(CommandFailed, match="No such file"):
        vm.copy_from("/nonexistent", kept)
    with pytest.raises(RustkmError, match="cannot write"):
        vm.copy_from("/proc/version", tmp_path / "no-such-folder" / "out")
    assert kept.read_bytes() == b"what was there"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept"]  # no partial file left


@pytest.mark.rustkm(memory=512)
def test_large_copies_stream_in_chunks_both_ways(vm, tmp_path):
    size = 48 << 20
    source = tmp_path / "big"
    with source.open("wb") as f:
        for _ in range(size >> 20):
            f.write(os.urandom(1 << 20))
    tracemalloc.start()
    try:
        vm.copy_to(source, "/tmp/big")
        vm.copy_from("/tmp/big", tmp_path / "back")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, f"{peak} bytes held at once for a {size}-byte file"
    assert filecmp.cmp(source, tmp_path / "back", shallow=False)
    assert vm.succeed("wc -c < /tmp/big").strip() == str(size)


def test_guest_text_reaches_no_terminal_raw(vm):
    vm.succeed(r"printf 'evil \033[2J\033]0;owned' > /dev/kmsg")
    with pytest.raises(CommandFailed) as failure:
        vm.succeed(r"printf '\033[2J\033]0;title\007\233x'; exit 1")
    shown = str(failure.value)
    assert "\x1b" not in shown and "\x07" not in shown and "\x9b" not in shown
    assert "\\x1b[2J" in shown


def test_printable_escapes_controls_and_keeps_lines():
    assert printable("a\x1b[2J\tb\nc\r\x00\x7f\x9b") == "a\\x1b[2J\tb\nc\\x0d\\x00\\x7f\\x9b"


def _dead_process_identity() -> str:
    proc = subprocess.Popen(["sleep", "60"])
    identity = process_identity(proc.pid)
    proc.kill()
    proc.wait()
    assert identity is not None
    return identity


def test_stale_vm_folders_are_removed_and_live_ones_kept(tmp_path):
    stale = tmp_path / "rustkm-machine-stale"
    stale.mkdir()
    (stale / "owner").write_text(_dead_process_identity())
    (stale / "console.log").write_text("old")
    qemu_alive = tmp_path / "rustkm-machine-qemu"
    qemu_alive.mkdir()
    (qemu_alive / "owner").write_text(_dead_process_identity())
    (qemu_alive / "qemu.pid").write_text(process_identity(os.getpid()) or "")
    being_made = tmp_path / "rustkm-machine-new"
    being_made.mkdir()
    abandoned = tmp_path / "rustkm-machine-abandoned"  # its maker died before naming itself
    abandoned.mkdir()
    (abandoned / ".owner").write_text(_dead_process_identity())
    not_a_vm = tmp_path / "rustkm-matrix-results"  # rustkm matrix's, or a user's folder
    not_a_vm.mkdir()
    (not_a_vm / "cell.xml").write_text("<testsuite/>")
    for old in (abandoned, not_a_vm):
        os.utime(old, (time.time() - 700, time.time() - 700))
    live = make_workdir("machine", tmp_path)
    assert not stale.exists() and not abandoned.exists() and not_a_vm.exists()
    assert live.exists() and qemu_alive.exists() and being_made.exists()
    assert remove_stale(tmp_path) == []


def test_vm_folders_made_at_once_by_many_processes_are_never_swept_from_under_them(tmp_path):
    # Seen with pytest -n 4: a worker's sweep read another's owner file between its creation
    # and its write (empty: "no owner alive") and removed the folder of a VM being started.
    from racing import run_in_processes

    def start_vms(i: int) -> None:
        for n in range(150):
            folder = make_workdir(f"race{i}", tmp_path)
            (folder / "qemu.stderr").write_text(f"{i} {n}")  # as QemuProcess does first
            shutil.rmtree(folder)

    assert run_in_processes(start_vms, 4) == []


def test_a_vm_folder_left_by_a_killed_owner_goes_at_the_next_start(kernel, tmp_path):
    script = tmp_path / "owner.py"
    script.write_text(textwrap.dedent(f"""
        import time
        from pathlib import Path
        from rustkm.machine import GuestKernel
        from rustkm import boot
        with boot(GuestKernel(Path({str(kernel.image)!r}))) as vm:
            print(vm.workdir, flush=True)
            time.sleep(600)
    """))
    owner = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert owner.stdout is not None
    workdir = Path(owner.stdout.readline().strip())
    assert workdir.is_dir()
    qemu = (workdir / "qemu.pid").read_text().split(":")[0]
    owner.kill()
    owner.wait(timeout=60)
    deadline = time.monotonic() + 20
    while Path(f"/proc/{qemu}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # QEMU dies with its owner, a moment later
    assert workdir.exists()
    with boot(kernel) as vm:
        vm.succeed("true")
        assert not workdir.exists()


def test_a_vm_started_in_a_worker_thread_outlives_the_thread(kernel):
    holder: dict[str, object] = {}

    def start() -> None:
        context = boot(kernel, name="threaded")
        holder["context"] = context
        holder["vm"] = context.__enter__()

    worker = threading.Thread(target=start)
    worker.start()
    worker.join(timeout=120)
    vm = holder["vm"]
    try:
        assert vm.succeed("echo alive") == "alive\n"  # type: ignore[attr-defined]
    finally:
        holder["context"].__exit__(None, None, None)  # type: ignore[attr-defined]


def test_subtests_nest_the_log_and_name_a_failure(vm, capsys):
    with vm.subtest("reads work"):
        vm.succeed("true")
    assert "subtest: reads work" in capsys.readouterr().err
    with pytest.raises(CommandFailed, match="subtest 'writes fail'.*succeeded but should fail"), \
            vm.subtest("writes fail"):
        vm.fail("true")


def test_every_public_verb_has_a_docstring():
    from rustkm.machine import Machine

    public = [name for name in dir(Machine) if not name.startswith("_")]
    undocumented = [name for name in public if not getattr(Machine, name).__doc__]
    assert undocumented == []


def test_a_line_the_console_lacks_is_found_in_the_kernel_log(vm):
    # A debug-level line is logged but not printed on the console (its level is below the
    # console's), as a line the serial console lost under load would be.
    vm.succeed("echo '<7>rustkm: only in the kernel log 42' > /dev/kmsg")
    line = vm.wait_for_console_text(r"only in the kernel log \d+", timeout=20)
    assert "only in the kernel log 42" in line
    assert "only in the kernel log" not in vm.console_log
    with pytest.raises(RustkmError, match="did not appear"):
        vm.wait_for_console_text("never logged anywhere", timeout=3)
