"""Helpers of the race tests: functions run in processes started at once, and a fake apt on
PATH that hands out local .deb files (the network is the only thing faked)."""

from __future__ import annotations

import multiprocessing
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

FORK = multiprocessing.get_context("fork")


def reads_during(read: Callable[[], object], action: Callable[[], object]) -> list[object]:
    """What `read` returned, called over and over in a thread while `action` ran."""
    seen: list[object] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            seen.append(read())

    watcher = threading.Thread(target=reader)
    watcher.start()
    try:
        action()
    finally:
        stop.set()
        watcher.join()
    return seen


def run_in_processes(target, count: int, *args) -> list[str]:
    """Run target(i, *args) in `count` forked processes at once; the errors they raised."""
    errors = FORK.Queue()
    barrier = FORK.Barrier(count)

    def child(i: int) -> None:
        barrier.wait()
        try:
            target(i, *args)
        except BaseException as e:  # noqa: BLE001 (any failure of the child is reported)
            errors.put(f"{type(e).__name__}: {e}")
            raise SystemExit(1) from None

    procs = [FORK.Process(target=child, args=(i,)) for i in range(count)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        if p.exitcode is None:
            p.kill()
            p.join()
    found = []
    for p in procs:
        if p.exitcode != 0:
            try:
                found.append(errors.get(timeout=5))
            except queue.Empty:
                found.append(f"a child ended with exit code {p.exitcode}")
    return found


FAKE_APT = """\
#!{python}
# A stand-in for apt: packages are the .deb files in $FAKE_APT_DEBS, named PACKAGE.deb.
import hashlib, os, sys, time
debs = os.environ["FAKE_APT_DEBS"]
words = [w for w in sys.argv[1:] if not w.startswith("-")]
verb, args = words[0], words[1:]
if os.environ.get("FAKE_APT_HANG") == verb:
    time.sleep(600)
if verb == "madison":
    print(f" {{args[0]}} | 1.0-1 | http://deb.debian.org/debian sid/main amd64 Packages")
elif verb == "show":
    name = args[0].split("=")[0]
    data = open(os.path.join(debs, name + ".deb"), "rb").read()
    print(f"Package: {{name}}\\nVersion: 1.0-1\\nSHA256: {{hashlib.sha256(data).hexdigest()}}")
elif verb == "download":
    name = args[0].split("=")[0]
    data = open(os.path.join(debs, name + ".deb"), "rb").read()
    with open(f"{{name}}_1.0-1_amd64.deb", "wb") as out:  # in pieces, as over a network
        for i in range(0, len(data), len(data) // 8 + 1):
            out.write(data[i:i + len(data) // 8 + 1])
            out.flush()
            time.sleep(0.02)
"""


def install_fake_apt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """apt-get and apt-cache on PATH that serve the .deb files of the folder returned."""
    bin_dir, debs = tmp_path / "fake-bin", tmp_path / "fake-archive"
    bin_dir.mkdir()
    debs.mkdir()
    for name in ("apt-get", "apt-cache"):
        (bin_dir / name).write_text(FAKE_APT.format(python=sys.executable))
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_APT_DEBS", str(debs))
    return debs


def make_deb(folder: Path, name: str, files: dict[str, bytes]) -> Path:
    root = folder / f"{name}-root"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: 1.0-1\nArchitecture: amd64\nMaintainer: t <t@t>\n"
        "Description: a test package\n")
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    deb = folder / f"{name}.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(deb)],
                   check=True, capture_output=True)
    return deb


needs_dpkg = pytest.mark.skipif(not Path("/usr/bin/dpkg-deb").exists(), reason="needs dpkg-deb")
