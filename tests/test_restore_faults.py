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
from rustkm.vm import QemuProcess


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
