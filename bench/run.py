"""rustkm benchmarks: figures, not pass/fail. Medians (and spread) over repeated runs.

    python bench/run.py boot      cold boot and snapshot restore side by side (to ready, one
                                  command, insmod+cat), memory, snapshot size, throughput both ways
    python bench/run.py boot --arch arm64
                                  an arm64 guest next to an x86_64 one, each on Debian's stock
                                  kernel: cold boot, restored + insmod + cat, `rustkm run`
    python bench/run.py suite     a slice of the tests with snapshots off and on, alternating
    python bench/run.py lane      the whole self-built lane (pytest -n 2) with snapshots off and
                                  on, and the summed setup / call time of each (about 15 min)
    python bench/run.py module    one-file module rebuild, an unchanged module built again (make's
                                  check and the stamp, side by side), edit-to-test-result
    python bench/run.py kernel    no-op `rustkm kernel build`
    python bench/run.py ccache    the kernel from scratch in a new folder, with a warm ccache
    python bench/run.py config    what KUnit and the devices fragment cost the default kernel:
                                  build steps and cold boot, side by side with the default
    python bench/run.py cold      from nothing (a fresh cache): toolchain, source, configure, build
    python bench/run.py stock     from nothing to a module for Debian's stock kernel, by stage
    python bench/run.py matrix    rustkm matrix of printerfact, sysctl and procfile on three lanes
                                  (wall time, per lane), and each lane's preparation from nothing
                                  (--lanes to choose; --no-prepare skips the from-nothing part)
    python bench/run.py kunit     `rustkm kunit --kernel-tests` and the kernel's kunit.py, side by
                                  side on one copy of the pinned 7.2 tree with the same Rust test
                                  options: from nothing (no ccache) and a rerun after touching a test
    python bench/run.py all       boot, module and kernel

Results are printed and appended as JSON lines to bench/results/results.jsonl.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRINTERFACT = ROOT / "kmods" / "printerfact"
RESULTS = ROOT / "bench" / "results" / "results.jsonl"


def measure(name: str, fn: Callable[[], object], runs: int) -> dict[str, object]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    row = {"bench": name, "runs": runs, "median_s": round(statistics.median(times), 3),
           "min_s": round(min(times), 3), "max_s": round(max(times), 3)}
    report(row)
    return row


def report(row: dict[str, object]) -> None:
    print(json.dumps(row), flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as f:
        f.write(json.dumps({**row, "time": time.strftime("%Y-%m-%dT%H:%M:%S")}) + "\n")


def quiet() -> None:
    # The Machine API logs every action; benchmarks print only their figures.
    from rustkm import log

    log.console.quiet = True


def _qemu_rss_mb(vm: object) -> float:
    """Resident memory of the VM's QEMU (the process below bwrap)."""
    root = vm._qemu.proc.pid  # type: ignore[attr-defined]
    pids = [root]
    for pid in pids:
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            continue
        pids += [int(c) for c in children]
    rss = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        if "qemu-system" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
            rss = max(rss, int(next(line.split()[1] for line in status.splitlines()
                                    if line.startswith("VmRSS:"))))
    return round(rss / 1024, 1)


def lane_kernel(name: str | None = None):  # type: ignore[no-untyped-def]
    """The toolchain and kernel of lane `name` (None: as RUSTKM_KERNEL and friends choose)."""
    from rustkm.kernel.choice import LaneChoice
    from rustkm.kernel.prepare import prepare_lane
    from rustkm.project import find_project

    project = find_project()
    return prepare_lane(LaneChoice.ask(name).lane(project), project)


def bench_boot(runs: int) -> None:
    """Cold boots and snapshot restores side by side (alternating, one run each in turn), and
    the agent's throughput both ways."""
    from rustkm import boot, snapshot
    from rustkm.module import build_module

    quiet()
    tc, kernel = lane_kernel()
    module = build_module(tc, kernel, PRINTERFACT)

    def ready() -> None:
        with boot(kernel, toolchain=tc):
            pass

    def full() -> None:
        with boot(kernel, module.modules, toolchain=tc) as vm:
            vm.insmod("printerfact")
            vm.succeed("cat /dev/printerfact")

    def command() -> None:
        with boot(kernel, toolchain=tc) as vm:
            vm.succeed("true")

    def with_snapshots(on: bool, fn: Callable[[], object]) -> Callable[[], object]:
        def run() -> object:
            os.environ["RUSTKM_SNAPSHOTS"] = "1" if on else "0"
            return fn()
        return run

    with_snapshots(True, command)()  # the snapshot exists before anything is timed
    pairs = [("boot to ready", ready), ("boot + one command + teardown", command),
             ("boot + insmod + cat + teardown", full)]
    rows = measure_side_by_side([(f"{name}, {mode}", with_snapshots(mode == "restored", fn))
                                 for name, fn in pairs for mode in ("cold", "restored")], runs)
    for name, _ in pairs:
        cold, restored = rows[f"{name}, cold"], rows[f"{name}, restored"]
        report({"bench": f"{name}: restored / cold", "ratio":
                round(float(restored["median_s"]) / float(cold["median_s"]), 3)})  # type: ignore[arg-type]
    def with_guest_tsc(on: bool) -> Callable[[], object]:
        def run() -> object:
            os.environ["RUSTKM_GUEST_TSC"] = "1" if on else "0"
            return with_snapshots(False, ready)()
        return run

    # The host's TSC rate on the kernel command line (rustkm.host_tsc) against a guest that
    # calibrates on its own.
    rows = measure_side_by_side([("cold boot to ready, TSC rate given", with_guest_tsc(True)),
                                 ("cold boot to ready, guest calibrates", with_guest_tsc(False))],
                                runs)
    os.environ["RUSTKM_GUEST_TSC"] = "1"
    os.environ["RUSTKM_SNAPSHOTS"] = "1"
    with boot(kernel, toolchain=tc) as vm, tempfile.TemporaryDirectory() as folder:
        found = snapshot.find(vm.snapshot_key)
        size = found.size if found is not None else 0
        report({"bench": "memory and snapshot size", "qemu_rss_MiB": _qemu_rss_mb(vm),
                "guest_MiB": vm.options.memory_mb, "snapshot_MiB": round(size / 2**20, 1)})
        blob = Path(folder) / "blob"
        blob.write_bytes(os.urandom(20_000_000))
        vm.succeed("head -c 20000000 /dev/urandom > /tmp/blob")
        for name, fn in [("20 MB host to guest (copy_to)", lambda: vm.copy_to(blob, "/tmp/in")),
                         ("20 MB guest to host (copy_from)",
                          lambda: vm.copy_from("/tmp/blob", Path(folder) / "out")),
                         ("20 MB of command output (cat)",
                          lambda: vm.run("cat /tmp/blob", timeout=300))]:
            row = measure(name, fn, max(3, runs // 3))
            report({"bench": f"agent throughput: {name}",
                    "MB_per_s": round(20.0 / float(row["median_s"]), 2)})  # type: ignore[arg-type]


def bench_boot_arch(runs: int, arch: str) -> None:
    """Another architecture's guest next to the host's, on Debian's stock kernel of each (the
    same release and configuration family), measured side by side: cold boot to a ready agent,
    and a restored guest + insmod + cat + teardown; the whole `rustkm run` process last."""
    from rustkm import boot
    from rustkm.kernel.lane import with_arch
    from rustkm.module import build_module

    quiet()
    lanes = {name: lane_kernel(name)
             for name in ("debian:latest", with_arch("debian:latest", arch))}
    modules = {name: build_module(tc, kernel, PRINTERFACT).modules
               for name, (tc, kernel) in lanes.items()}

    def ready(name: str, snapshots: bool) -> Callable[[], object]:
        def run() -> object:
            os.environ["RUSTKM_SNAPSHOTS"] = "1" if snapshots else "0"
            tc, kernel = lanes[name]
            with boot(kernel, toolchain=tc):
                return None
        return run

    def full(name: str) -> Callable[[], object]:
        def run() -> object:
            os.environ["RUSTKM_SNAPSHOTS"] = "1"
            tc, kernel = lanes[name]
            with boot(kernel, modules[name], toolchain=tc) as vm:
                vm.insmod("printerfact")
                return vm.succeed("cat /dev/printerfact")
        return run

    for name in lanes:
        full(name)()  # each lane's snapshot exists before anything is timed
    measure_side_by_side([(f"{name}: cold boot to ready", ready(name, False)) for name in lanes]
                         + [(f"{name}: restored + insmod + cat + teardown", full(name))
                            for name in lanes], runs)
    os.environ["RUSTKM_SNAPSHOTS"] = "1"
    rustkm = str(ROOT / ".venv" / "bin" / "rustkm")
    measure_side_by_side([(f"{name}: `rustkm run printerfact -- cat` (whole process)",
                           functools.partial(subprocess.run,
                                             [rustkm, "run", "--kernel", name, str(PRINTERFACT),
                                              "--", "cat", "/dev/printerfact"],
                                             check=True, capture_output=True))
                          for name in lanes], runs)


def measure_side_by_side(cases: list[tuple[str, Callable[[], object]]],
                         runs: int) -> dict[str, dict[str, object]]:
    """Each case once per round, in turn, so that a noisy moment hits them all alike."""
    times: dict[str, list[float]] = {name: [] for name, _ in cases}
    for _ in range(runs):
        for name, fn in cases:
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    rows = {}
    for name, values in times.items():
        rows[name] = {"bench": name, "runs": runs,
                      "median_s": round(statistics.median(values), 3),
                      "min_s": round(min(values), 3), "max_s": round(max(values), 3)}
        report(rows[name])
    return rows


# A slice of the self-built lane: rustkm's own VM tests and four modules' full test files.
# Two tests of test_machine.py wait out guest-side timers (a boot that never ends, the hung-task
# detector's 10 s): 44 s that no way of starting a VM changes, so they are left out.
SUITE = ["tests/test_machine.py", "kmods/printerfact", "kmods/sysctl", "kmods/procfile",
         "kmods/lkmpg/procfs3",
         "--deselect", "tests/test_machine.py::test_a_boot_that_hangs_times_out",
         "--deselect",
         "tests/test_machine.py::test_a_task_stuck_in_d_state_is_reported_as_a_hung_task"]


def _pytest(snapshots: bool, *args: str) -> subprocess.CompletedProcess[str]:
    """`pytest -q -n 2` of this project as a whole process, snapshots on or off."""
    env = {**os.environ, "RUSTKM_SNAPSHOTS": "1" if snapshots else "0"}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "2",
                           "-p", "no:cacheprovider", *args], check=False,
                          capture_output=True, text=True, cwd=ROOT, env=env)


def _on_off(name: str, run: Callable[[bool], object], runs: int) -> None:
    """`run(snapshots)` off and on, alternating, and the ratio of their medians."""
    off, on = f"{name}, snapshots off", f"{name}, snapshots on"
    rows = measure_side_by_side([(off, lambda: run(False)), (on, lambda: run(True))], runs)
    report({"bench": f"{name}: snapshots on / off", "ratio": round(
        float(rows[on]["median_s"]) / float(rows[off]["median_s"]), 3)})  # type: ignore[arg-type]


def bench_suite(runs: int) -> None:
    """The same tests with snapshots on and off, alternating, `pytest -n 2` as a whole process."""
    def suite(on: bool) -> object:
        done = _pytest(on, *SUITE)
        if done.returncode != 0:  # a figure of a failed run would mean nothing
            sys.exit(f"the test slice failed (snapshots {'on' if on else 'off'}):\n"
                     + done.stdout[-6000:])
        return done

    _on_off("test slice", suite, runs)


_PHASE = re.compile(r"^([0-9.]+)s (setup|call|teardown) ", re.MULTILINE)


def bench_lane(runs: int) -> None:
    """The whole self-built lane (`pytest -n 2`) with snapshots off and on, alternating: wall
    time, the ratio, and where the tests' time goes (pytest --durations: setup, which holds
    each VM's start, against the test bodies)."""
    def lane(on: bool) -> object:
        done = _pytest(on, "--durations=0")
        phases: dict[str, float] = {}
        for seconds, phase in _PHASE.findall(done.stdout):
            phases[phase] = phases.get(phase, 0.0) + float(seconds)
        report({"bench": f"lane phases, snapshots {'on' if on else 'off'}",
                "exit_status": done.returncode, "summed_s":
                {k: round(v) for k, v in sorted(phases.items())},
                "summary": done.stdout.strip().splitlines()[-1:]})
        return done

    _on_off("self-built lane", lane, runs)


def bench_module(runs: int) -> None:
    from rustkm.module import build_module
    from rustkm.module_stamp import STAMP

    quiet()
    tc, kernel = lane_kernel()
    source = PRINTERFACT / "printerfact.rs"
    original = source.read_text()
    edits = iter(range(1_000_000))

    def edit() -> None:
        # A real change (a touch alone no longer rebuilds: the stamp compares content).
        source.write_text(f"{original}// bench edit {next(edits)}\n")

    def rebuild() -> None:
        edit()
        build_module(tc, kernel, PRINTERFACT)

    try:
        build = build_module(tc, kernel, PRINTERFACT)
        measure("one-file module rebuild after an edit (printerfact)", rebuild, runs)

        def make_check() -> None:
            (build.output / STAMP).unlink(missing_ok=True)  # as before stamps: make decides
            build_module(tc, kernel, PRINTERFACT)

        def stamp_check() -> None:
            build_module(tc, kernel, PRINTERFACT)

        build_module(tc, kernel, PRINTERFACT)
        measure_side_by_side([("unchanged module built again: make's up-to-date check",
                               make_check),
                              ("unchanged module built again: the stamp", stamp_check)],
                             max(runs, 8))

        def edit_to_result() -> None:
            edit()
            subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            str(PRINTERFACT / "test_printerfact.py"), "-k", "small_reads"],
                           check=True, capture_output=True, cwd=ROOT)

        measure("edit to test result (an edit, pytest: build, boot, insmod, dd, verdict)",
                edit_to_result, runs)
    finally:
        source.write_text(original)
        build_module(tc, kernel, PRINTERFACT)


def bench_kernel(runs: int) -> None:
    def noop() -> None:
        subprocess.run([sys.executable, "-m", "rustkm.cli", "kernel", "build"], check=True,
                       capture_output=True, cwd=ROOT)

    noop()
    measure("no-op `rustkm kernel build` (a whole process)", noop, runs)


def bench_ccache() -> None:
    """A from-scratch build of the cached kernel's config into a new folder: what ccache saves
    when a build folder is lost, or a config change forces a rebuild."""
    from rustkm.kernel.build import ensure_kernel
    from rustkm.kernel.config import load_fragment

    tc, kernel = lane_kernel()
    with tempfile.TemporaryDirectory(prefix="rustkm-ccache-") as folder:
        start = time.perf_counter()
        ensure_kernel(tc, kernel.source, [load_fragment(n) for n in kernel.fragments],
                      kernels_dir=Path(folder))
        report({"bench": "kernel build from scratch with a warm ccache",
                "seconds": round(time.perf_counter() - start, 1)})


def bench_config_cost(runs: int) -> None:
    """What parts of the default kernel's config cost: KUnit (CONFIG_KUNIT with its debugfs)
    and the whole devices fragment (PCI, virtio, I2C, USB, KUnit, the Rust samples). Each
    variant is the default kernel's config without it, built into a temporary folder (with the
    warm ccache, so its build time is not a from-scratch figure: the build steps beside the
    default's give the share); then cold boots to a ready agent alternate with the default
    kernel's. Without the devices fragment the agent has no virtio channel: it uses the serial
    port, as a kernel without PCI would."""
    from rustkm import boot
    from rustkm.kernel.build import ensure_kernel
    from rustkm.kernel.config import Fragment, load_fragment

    quiet()
    tc, kernel = lane_kernel()
    fragments = [load_fragment(n) for n in kernel.fragments]
    no_kunit = Fragment("no-kunit", "# CONFIG_KUNIT is not set\n"
                                    "# CONFIG_KUNIT_DEBUGFS is not set\n")
    variants = {"without KUnit": [*fragments, no_kunit],
                "without the devices fragment": [f for f in fragments if f.name != "devices"]}
    counts_file = Path(kernel.build_dir).parent / "object-counts.json"
    with tempfile.TemporaryDirectory(prefix="rustkm-config-cost-") as folder:
        builds = {"default kernel": kernel}
        for name, chosen in variants.items():
            start = time.perf_counter()
            builds[name] = ensure_kernel(tc, kernel.source, chosen, kernels_dir=Path(folder))
            counts = json.loads(counts_file.read_text()) if counts_file.is_file() else {}
            report({"bench": f"config cost: kernel {name}, build with a warm ccache",
                    "seconds": round(time.perf_counter() - start, 1),
                    "build_steps": counts.get(builds[name].key),
                    "default_build_steps": counts.get(kernel.key),
                    "vmlinux_MiB": round(builds[name].vmlinux.stat().st_size / 2**20, 1),
                    "default_vmlinux_MiB": round(kernel.vmlinux.stat().st_size / 2**20, 1)})

        def ready(build: object) -> Callable[[], object]:
            def run() -> object:
                os.environ["RUSTKM_SNAPSHOTS"] = "0"
                with boot(build, toolchain=tc):  # type: ignore[arg-type]
                    return None
            return run

        rows = measure_side_by_side([(f"config cost: cold boot to ready, {name}", ready(build))
                                     for name, build in builds.items()], runs)
        base = float(rows["config cost: cold boot to ready, default kernel"]["median_s"])  # type: ignore[arg-type]
        for name in variants:
            median = float(rows[f"config cost: cold boot to ready, {name}"]["median_s"])  # type: ignore[arg-type]
            report({"bench": f"config cost: what the default kernel pays over the kernel {name}",
                    "boot_s": round(base - median, 3), "ratio": round(base / median, 3)})


def bench_kconfig(runs: int) -> None:
    """Reading the whole Kconfig tree of the project's kernel source (doctor, explain)."""
    from rustkm.kernel.kconfig import read_kconfig

    _, kernel = lane_kernel()
    measure(f"read the Kconfig tree of Linux {kernel.source.version}",
            lambda: read_kconfig(kernel.source.tree), runs)


def bench_cold() -> None:
    """Everything from an empty cache. Takes the length of a kernel build."""
    with tempfile.TemporaryDirectory(prefix="rustkm-cold-") as cache:
        env = {**os.environ, "RUSTKM_CACHE": cache}
        lock = Path(cache) / "rustkm.lock"
        lock.write_text((ROOT / "rustkm.lock").read_text())
        steps = [
            ("cold: toolchain (mmdebstrap of trixie + toolchain packages)", ["setup"]),
            ("cold: kernel source (download + extract) and configure and build",
             ["kernel", "build"]),
        ]
        for name, argv in steps:
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "rustkm.cli", *argv], env=env,
                                  cwd=ROOT, capture_output=True, text=True, check=False)
            row: dict[str, object] = {"bench": name,
                                      "seconds": round(time.perf_counter() - start, 1),
                                      "status": proc.returncode}
            row.update(_stage_times(proc.stderr))
            report(row)


def bench_stock() -> None:
    """From an empty cache to printerfact built for Debian's stock kernel: no kernel build."""
    with tempfile.TemporaryDirectory(prefix="rustkm-stock-") as cache:
        env = {**os.environ, "RUSTKM_CACHE": cache}
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "rustkm.cli", "build", "--kernel",
                               "debian:latest", str(PRINTERFACT)], env=env, cwd=ROOT,
                              capture_output=True, text=True, check=False)
        row: dict[str, object] = {"bench": "stock lane: nothing to a loadable printerfact",
                                  "seconds": round(time.perf_counter() - start, 1),
                                  "status": proc.returncode}
        row.update(_stage_times(proc.stderr))
        report(row)


MATRIX_MODULES = ("kmods/printerfact", "kmods/sysctl", "kmods/procfile")
MATRIX_LANES = "default,debian:latest,debian:next"


def bench_matrix(lanes: str, prepare: bool) -> None:
    """The matrix's wall time on a warm cache (each lane prepared once first, not counted),
    its time per lane from the cells, and each lane's preparation from nothing: a new cache
    each (toolchain, source or packages, metadata or kernel build)."""
    names = lanes.split(",")
    if prepare:
        for lane in names:
            with tempfile.TemporaryDirectory(prefix="rustkm-lane-") as cache:
                start = time.perf_counter()
                proc = subprocess.run([sys.executable, "-m", "rustkm.cli", "kernel", "build",
                                       "--kernel", lane], env={**os.environ,
                                                               "RUSTKM_CACHE": cache},
                                      cwd=ROOT, capture_output=True, text=True, check=False)
                row: dict[str, object] = {"bench": f"matrix: lane {lane} from nothing",
                                          "seconds": round(time.perf_counter() - start, 1),
                                          "status": proc.returncode}
                row.update(_stage_times(proc.stderr))
                report(row)
    for lane in names:  # warm: the matrix's own figure is modules, VMs and tests
        subprocess.run([sys.executable, "-m", "rustkm.cli", "kernel", "build", "--kernel", lane],
                       cwd=ROOT, capture_output=True, check=True)
    with tempfile.TemporaryDirectory(prefix="rustkm-matrix-") as out:
        table = Path(out) / "matrix.json"
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "rustkm.cli", "matrix", *MATRIX_MODULES,
                               "--lanes", lanes, "--json", str(table)], cwd=ROOT,
                              capture_output=True, text=True, check=False)
        wall = round(time.perf_counter() - start, 1)
        cells = json.loads(table.read_text())["cells"] if table.is_file() else []
    per_lane = {lane: round(sum(c["seconds"] for c in cells if c["lane"] == lane), 1)
                for lane in names}
    report({"bench": f"matrix: {len(MATRIX_MODULES)} modules on {lanes}", "seconds": wall,
            "status": proc.returncode, "cells": len(cells),
            "passed": sum(c["status"] == "passed" for c in cells),
            "tests": sum(c["passed"] for c in cells), "lane_seconds": per_lane})


def bench_kunit() -> None:
    """The kernel's own Rust KUnit suites and doctests, two ways, on one tree and machine.

    The tree is a copy of the pinned 7.2 source (its tests are edited there). kunit.py runs in
    rustkm's toolchain (its rustc, bindgen, clang, QEMU) with `--arch x86_64` and a kunitconfig
    of the same options as the kernel-tests lane; rustkm builds with ccache off. Each side
    builds from nothing, then runs again after `touch rust/kernel/str.rs` (a file with a suite).
    """
    import re
    import shutil

    from rustkm.accel import choose_accel
    from rustkm.kernel.lane import resolve_lane
    from rustkm.kernel.prepare import resolve_source
    from rustkm.lockfile import Lock
    from rustkm.project import find_project
    from rustkm.toolchain import ensure_toolchain, store_dir

    tc = ensure_toolchain()
    project = find_project()
    source = resolve_source(tc, resolve_lane("default", project), project,  # no build
                            Lock.read(project.lock_path))
    fragment = (ROOT / "src/rustkm/configs/kernel-tests.config").read_text()
    with tempfile.TemporaryDirectory(prefix="rustkm-kunit-bench-") as work:
        tree, out = Path(work) / "linux", Path(work) / "kunit.py-build"
        shutil.copytree(source.tree, tree, symlinks=True)
        kunitconfig = Path(work) / "kunitconfig"
        kunitconfig.write_text("CONFIG_KUNIT=y\nCONFIG_RUST=y\n" + fragment)  # rust/.kunitconfig + ours
        rustkm_cmd = [sys.executable, "-m", "rustkm.cli", "kunit", "--kernel-tests",
                      "--source", str(tree)]
        kunit_cmd = tc.wrap(["python3", "tools/testing/kunit/kunit.py", "run", "--arch",
                             "x86_64", "--make_options", "LLVM=1", "--jobs", str(os.cpu_count()),
                             "--kunitconfig", str(kunitconfig), "--build_dir", str(out),
                             "--timeout", "3600"], cwd=tree, binds=[tree])
        if choose_accel(tc, lane_kernel("default")[1].vmlinux) == "tcg":
            # kunit.py asks QEMU for KVM first (-accel kvm -accel hvf -accel tcg). Where
            # /dev/kvm is present but its guests never finish (rustkm's probe said so), its run
            # hangs until the timeout: its sandbox gets no /dev/kvm, so QEMU takes TCG, as
            # rustkm does.
            at = kunit_cmd.index("/dev/kvm") - 1
            del kunit_cmd[at:at + 3]
        env = {**os.environ, "RUSTKM_CCACHE": "0"}

        def run(name: str, argv: list[str], cwd: Path) -> None:
            start = time.perf_counter()
            proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                                  check=False)
            text = proc.stdout + proc.stderr
            ran = re.findall(r"Ran (\d+) tests|(\d+) cases?\b", text)
            report({"bench": f"kunit: {name}", "seconds": round(time.perf_counter() - start, 1),
                    "status": proc.returncode,
                    "summary": [line for line in text.splitlines()
                                if re.search(r"Testing complete|passed|PASSED|FAILED|Totals",
                                             line)][-3:], "counts": ran[-1:] if ran else []})
            if proc.returncode != 0:
                print(text[-4000:], file=sys.stderr)

        run("rustkm kunit --kernel-tests, from nothing", rustkm_cmd, ROOT)
        run("kunit.py run, from nothing", kunit_cmd, tree)
        (tree / "rust/kernel/str.rs").touch()
        run("rustkm kunit --kernel-tests, after touching rust/kernel/str.rs", rustkm_cmd, ROOT)
        (tree / "rust/kernel/str.rs").touch()
        run("kunit.py run, after touching rust/kernel/str.rs", kunit_cmd, tree)
        for stamp in (store_dir() / "kernels").glob("*/rustkm-build.json"):
            if str(tree) in stamp.read_text():  # the bench's own kernel build: gone with it
                shutil.rmtree(stamp.parent, ignore_errors=True)


def _stage_times(log: str) -> dict[str, float]:
    """The durations rustkm's own step log printed for each stage."""
    stages = {"apt-get update": "apt_update_s", "downloading": "download_s",
              "extracting": "extract_s", "configuring": "configure_s",
              "building Linux": "build_s", "creating the toolchain": "toolchain_s",
              "regenerating the Rust metadata": "metadata_s", "building printerfact": "module_s"}
    found: dict[str, float] = {}
    lines = log.splitlines()
    for i, line in enumerate(lines):
        for marker, key in stages.items():
            if line.strip().startswith(marker):
                indent = len(line) - len(line.lstrip())
                for later in lines[i + 1:]:
                    if (len(later) - len(later.lstrip()) == indent
                            and later.strip().startswith("(") and "seconds" in later):
                        found[key] = round(found.get(key, 0.0) + float(later.strip()[1:].split()[0]), 2)
                        break
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("boot", "suite", "lane", "module", "kernel", "ccache",
                                         "config", "cold",
                                         "stock", "matrix", "kunit", "all"))
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--lanes", default=MATRIX_LANES, help="matrix: the lanes")
    parser.add_argument("--no-suite", action="store_true",
                        help="boot: skip the test slice with snapshots off and on")
    parser.add_argument("--no-prepare", action="store_true",
                        help="matrix: skip each lane's preparation from nothing")
    parser.add_argument("--arch", default="",
                        help="boot: another architecture's guest (arm64) next to the host's, "
                             "each on Debian's stock kernel")
    args = parser.parse_args()
    if args.arch:
        if args.what != "boot":
            parser.error("--arch goes with boot")
        bench_boot_arch(args.runs, args.arch)
        return
    if args.what in ("boot", "all"):
        bench_boot(args.runs)
    # The fast-VM targets together: boot also runs the test slice with snapshots off and on.
    if args.what == "suite" or (args.what in ("boot", "all") and not args.no_suite):
        bench_suite(max(1, args.runs // 5))
    if args.what == "lane":
        bench_lane(max(1, args.runs // 10))
    if args.what in ("module", "all"):
        bench_module(max(3, args.runs // 2))
    if args.what in ("kernel", "all"):
        bench_kernel(max(3, args.runs // 2))
        bench_kconfig(max(3, args.runs // 2))
    if args.what == "ccache":
        bench_ccache()
    if args.what == "config":
        bench_config_cost(args.runs)
    if args.what == "cold":
        bench_cold()
    if args.what == "stock":
        bench_stock()
    if args.what == "kunit":
        bench_kunit()
    if args.what == "matrix":
        bench_matrix(args.lanes, not args.no_prepare)


if __name__ == "__main__":
    main()
