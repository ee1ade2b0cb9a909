"""Faults around a snapshot's restore, without a VM: a snapshot removed by another rustkm
between finding and reading it, QEMU killed under bubblewrap, and a monitor that goes away or
talks nonsense. Each must end as a RustkmError (a cold boot or a clear message), never as a
traceback or a good snapshot thrown away."""

from __future__ import annotations

import fcntl
import json
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from rustkm import snapshot
from rustkm.errors import RustkmError
from rustkm.qmp import QmpClient
from rustkm.vm import QemuProcess, VmOptions


def _published(root: Path, key: str = "k1") -> snapshot.Snapshot:
    folder = root / key
    folder.mkdir(parents=True)
    (folder / "state").write_bytes(b"x" * 10)
    (folder / "meta.json").write_text(json.dumps({"size": 10}))
    return snapshot.Snapshot(key, folder)


def test_a_snapshot_removed_before_reading_is_an_error_not_a_traceback(tmp_path):
    snap = _published(tmp_path)
    assert snapshot.discard(snap) is True
    with pytest.raises(RustkmError, match="was removed"), snapshot.reading(snap):
        pass


def test_a_snapshot_removed_between_open_and_lock_is_noticed(tmp_path, monkeypatch):
    snap = _published(tmp_path)
    real_flock = fcntl.flock

    def remover_first(fd: object, operation: int) -> None:
        # Another process's discard takes the lock first and moves the folder away.
        snap.folder.rename(snap.folder.with_name("k1.doomed-1"))
        real_flock(fd, operation)  # type: ignore[arg-type]

    monkeypatch.setattr(snapshot.fcntl, "flock", remover_first)
    with pytest.raises(RustkmError, match="while it was being opened"), snapshot.reading(snap):
        pass
    assert not (tmp_path / "k1" / "used").exists()  # nothing made again at the old place


def test_a_held_snapshot_is_read_and_marked_used(tmp_path):
    snap = _published(tmp_path)
    with snapshot.reading(snap):
        assert snapshot.discard(snap) is False
    assert (snap.folder / "used").exists()


@pytest.mark.parametrize(("script", "signal"), [
    ("exit 137", 9),        # bubblewrap's report of its child killed by SIGKILL
    ("exit 143", 15),       # ... by SIGTERM
    ("kill -9 $$", 9),      # the process itself killed
    ("exit 1", None),       # QEMU refusing a migration stream exits 1: not a kill
    ("exit 0", None),
])
def test_qemu_killed_is_told_from_qemu_failing(script, signal):
    qemu = QemuProcess.__new__(QemuProcess)
    qemu.proc = subprocess.Popen(["sh", "-c", script])
    qemu.proc.wait()
    assert qemu.killed() == signal


def test_a_running_qemu_is_not_killed():
    qemu = QemuProcess.__new__(QemuProcess)
    qemu.proc = subprocess.Popen(["sleep", "30"])
    try:
        assert qemu.killed() is None
    finally:
        qemu.proc.kill()
        qemu.proc.wait()


def _monitor(path: Path, after_capabilities: bytes | None) -> threading.Thread:
    """A QMP monitor that greets, accepts capabilities, then sends `after_capabilities` (or
    closes the connection when None)."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def serve() -> None:
        conn, _ = server.accept()
        with conn, server:
            conn.sendall(b'{"QMP": {"version": {}, "capabilities": []}}\n')
            conn.recv(4096)
            conn.sendall(b'{"return": {}}\n')
            conn.recv(4096)
            if after_capabilities is not None:
                conn.sendall(after_capabilities)
                conn.recv(4096)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize(("sent", "message"), [
    (None, "monitor closed"),
    (b"this is not json\n", "not JSON"),
    (b"[1, 2]\n", "not a QMP message"),
])
def test_a_monitor_that_goes_away_or_talks_nonsense_is_an_error(tmp_path, sent, message):
    path = tmp_path / "qmp.sock"
    thread = _monitor(path, sent)
    client = QmpClient(path, timeout=10)
    try:
        with pytest.raises(RustkmError, match=message):
            client.execute("query-status")
            client.execute("query-status")  # a closed monitor may take the first send
    finally:
        client.close()
        thread.join(10)


def _key(options: VmOptions, accel: str = "tcg", qemu: str = "10.0.13") -> str:
    from rustkm.vm import qemu_argv

    argv = qemu_argv(Path("/k/bzImage"), Path("/i/initramfs"), options, accel,
                     Path("console.sock"), Path("agent.sock"), virtio=True)
    return snapshot.snapshot_key(argv=argv, kernel_file=(1, 2), qemu=qemu)


def test_the_snapshot_key_follows_everything_that_shapes_the_guest(monkeypatch):
    monkeypatch.setattr("rustkm.host_tsc.host_tsc_khz", lambda: 0)
    base = VmOptions()
    variants = {
        "accelerator": _key(base, accel="kvm"),
        "memory": _key(VmOptions(memory_mb=512)),
        "CPUs": _key(VmOptions(cpus=2)),
        "devices": _key(VmOptions(devices=("edu",))),
        "kernel command line": _key(VmOptions(append=("quiet",))),
        "shell port": _key(VmOptions(shell_port=True)),
        "QEMU version": _key(base, qemu="10.0.14"),
    }
    assert len({_key(base), *variants.values()}) == len(variants) + 1, variants
    assert _key(base) == _key(VmOptions())  # and it is stable


class _FailingMonitor:
    """A monitor whose migration to the file fails half-way, as when the disk fills."""

    def __init__(self) -> None:
        self.commands: list[str] = []

    def execute(self, command: str, **arguments: object) -> object:
        self.commands.append(command)
        if command == "migrate":
            Path(str(arguments["uri"]).removeprefix("file:")).write_bytes(b"half")
        if command == "query-migrate":
            return {"status": "failed", "error-desc": "No space left on device"}
        return {}


def test_a_failed_save_publishes_nothing_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(snapshot, "store_dir", lambda: tmp_path)
    with pytest.raises(RustkmError, match="No space left on device"):
        snapshot.save(_FailingMonitor(), "k2")  # type: ignore[arg-type]
    assert snapshot.find("k2") is None
    leftovers = [p.name for p in (tmp_path / "snapshots").iterdir() if not p.name.endswith(".lock")]
    assert leftovers == []


def test_pruning_removes_the_least_recently_used_first_and_spares_one_being_read(
        tmp_path, monkeypatch):
    import os
    import time

    monkeypatch.setattr(snapshot, "store_dir", lambda: tmp_path)
    root = tmp_path / "snapshots"
    old, middle, new = (_published(root, key) for key in ("old", "middle", "new"))
    now = time.time()
    for age, snap in ((300, old), (200, middle), (100, new)):
        os.utime(snap.folder / "meta.json", (now - age, now - age))
    with snapshot.reading(old):  # marks it used now, and holds it
        removed = snapshot.prune(limit=5)  # room for none: the one being read stays
    assert [s.key for s in removed] == ["middle", "new"]
    assert old.folder.exists() and not middle.folder.exists() and not new.folder.exists()
