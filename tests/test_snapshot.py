"""Snapshots: every VM after the first is restored from a saved, booted guest, and is its own."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from rustkm import boot, snapshot
from rustkm.errors import RustkmError
from rustkm.vm import VmOptions

ROOT = Path(__file__).parents[1]
# These tests are about snapshots: with RUSTKM_SNAPSHOTS=0 (every VM cold) they do not apply.
pytestmark = pytest.mark.skipif(os.environ.get("RUSTKM_SNAPSHOTS", "1") == "0",
                                reason="RUSTKM_SNAPSHOTS=0: snapshots are off")
PRINTERFACT = ROOT / "kmods" / "printerfact"


@pytest.fixture(scope="module")
def printerfact(rustkm_kernel) -> Path:
    from rustkm.pytest_plugin import build_modules

    return build_modules(rustkm_kernel, [PRINTERFACT])[0]


def _facts(vm, count: int = 12) -> list[str]:
    return [vm.succeed("cat /dev/printerfact") for _ in range(count)]


def test_two_restored_guests_are_each_their_own(kernel, printerfact, capsys):
    with boot(kernel, [printerfact]) as first:
        first.succeed("true")
    with boot(kernel, [printerfact]) as a, boot(kernel, [printerfact]) as b:
        assert "restored from snapshot" in capsys.readouterr().err
        noise = [vm.run("head -c 32 /dev/urandom").stdout for vm in (a, b)]
        assert noise[0] != noise[1]
        a.insmod("printerfact")
        b.insmod("printerfact")
        assert _facts(a) != _facts(b)
        for vm in (a, b):
            # The guest's clock to the microsecond (busybox date prints whole seconds only),
            # within a second of the host's around the command.
            before = time.time()
            fields = {key.strip(): int(value) for key, value in
                      (line.split(":") for line in
                       vm.succeed("adjtimex | grep time.tv_").splitlines())}
            after = time.time()
            guest = fields["time.tv_sec"] + fields["time.tv_usec"] / 1e6
            assert before - 1.0 <= guest <= after + 1.0, (before, guest, after)


def test_modules_and_files_reach_a_restored_guest(kernel, printerfact, tmp_path):
    data = tmp_path / "data.bin"
    data.write_bytes(os.urandom(70_000))
    data.chmod(0o750)
    with boot(kernel, [printerfact], files=[("/opt/deep/data.bin", data)]) as vm:
        vm.insmod("printerfact")
        assert vm.succeed("cat /dev/printerfact")
        assert vm.succeed("md5sum < /opt/deep/data.bin").split()[0] == \
            subprocess.run(["md5sum"], input=data.read_bytes(), capture_output=True,
                           check=True).stdout.split()[0].decode()
        assert vm.succeed("stat -c %a /opt/deep/data.bin").strip() == "750"


def _only_snapshot(options: VmOptions, kernel) -> snapshot.Snapshot:
    with boot(kernel, options=options) as vm:
        vm.succeed("true")
        key = vm.snapshot_key
    found = snapshot.find(key)
    assert found is not None
    return found


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_damaged_snapshot_is_replaced_not_used(kernel, capsys, damage):
    # A VM option no other test uses gives this test a snapshot of its own.
    options = VmOptions(append=(f"rustkm.test={damage}",))
    snap = _only_snapshot(options, kernel)
    data = bytearray(snap.state.read_bytes())
    if damage == "truncate":
        del data[len(data) // 2:]
    else:
        data[len(data) // 3] ^= 0x40
    snap.state.write_bytes(bytes(data))
    snapshot._verified.clear()
    capsys.readouterr()
    with boot(kernel, options=options) as vm:
        assert vm.succeed("echo fine") == "fine\n"
    err = capsys.readouterr().err
    assert "it is removed and made again" in err and "cold boot" in err
    assert snapshot.find(snap.key) is not None


def test_a_snapshot_being_restored_is_not_cleaned_away(kernel):
    options = VmOptions(append=("rustkm.test=clean",))
    snap = _only_snapshot(options, kernel)
    with snapshot.reading(snap):
        assert snapshot.discard(snap) is False
        assert snap.state.exists()
    assert snapshot.discard(snap) is True
    assert not snap.folder.exists()


def test_concurrent_workers_share_one_snapshot(kernel, tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(f"""
        from pathlib import Path
        from rustkm.machine import GuestKernel
        from rustkm import boot
        from rustkm.vm import VmOptions
        options = VmOptions(append=("rustkm.test=concurrent-{os.getpid()}",))
        for _ in range(2):
            with boot(GuestKernel(Path({str(kernel.image)!r}), virtio=True,
                                  toolchain={kernel.toolchain!r},
                                  busybox=Path({kernel.busybox!r}) if {kernel.busybox!r} else None),
                      options=options) as vm:
                print(vm.succeed("echo ok").strip(), flush=True)
    """))
    workers = [subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [w.communicate(timeout=300) for w in workers]
    for (out, err), worker in zip(outputs, workers, strict=True):
        assert worker.returncode == 0, err
        assert out.split() == ["ok", "ok"]
    saved = sum(len(re.findall(r"^snapshot \w+: \d+ MiB$", err, re.MULTILINE))
                for _, err in outputs)
    restored = sum(err.count("restored from snapshot") for _, err in outputs)
    # One of them saves; a VM started while the save is under way boots cold, not waiting.
    assert saved == 1 and restored >= 1, [err for _, err in outputs]


def test_snapshot_settings_are_checked():
    os.environ["RUSTKM_SNAPSHOTS"] = "maybe"
    try:
        with pytest.raises(RustkmError, match="RUSTKM_SNAPSHOTS"):
            snapshot.snapshots_enabled()
    finally:
        del os.environ["RUSTKM_SNAPSHOTS"]
