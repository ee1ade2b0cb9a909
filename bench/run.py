"""rustkm benchmarks: figures, not pass/fail. Medians (and spread) over repeated runs.

    python bench/run.py boot      boot to ready, boot+insmod+command+shutdown, 5 MB throughput
    python bench/run.py module    one-file module rebuild, edit-to-test-result for printerfact
    python bench/run.py kernel    no-op `rustkm kernel build`
    python bench/run.py ccache    the kernel from scratch in a new folder, with a warm ccache
    python bench/run.py cold      from nothing (a fresh cache): toolchain, source, configure, build
    python bench/run.py stock     from nothing to a module for Debian's stock kernel, by stage
    python bench/run.py all       boot, module and kernel

Results are printed and appended as JSON lines to bench/results/results.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
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


def bench_boot(runs: int) -> None:
    from rustkm.machine import boot
    from rustkm.module import build_module
    from rustkm.session import prepare_kernel

    quiet()
    tc, kernel = prepare_kernel()
    module = build_module(tc, kernel, PRINTERFACT)

    def ready() -> None:
        with boot(kernel, toolchain=tc):
            pass

    def full() -> None:
        with boot(kernel, module.modules, toolchain=tc) as vm:
            vm.insmod("printerfact")
            vm.succeed("cat /dev/printerfact")
            vm.shutdown()

    measure("boot to ready (TCG, vmlinux via PVH, qboot)", ready, runs)
    measure("boot + insmod + cat + clean shutdown", full, runs)
    with boot(kernel, toolchain=tc) as vm:
        vm.succeed("head -c 5000000 /dev/urandom > /tmp/blob")
        row = measure("5 MB of command output through the agent",
                      lambda: vm.run("cat /tmp/blob", timeout=300), max(3, runs // 3))
        report({"bench": "agent throughput", "MB_per_s":
                round(5.0 / float(row["median_s"]), 3)})  # type: ignore[arg-type]


def bench_module(runs: int) -> None:
    from rustkm.module import build_module
    from rustkm.session import prepare_kernel

    quiet()
    tc, kernel = prepare_kernel()
    source = PRINTERFACT / "printerfact.rs"

    def rebuild() -> None:
        os.utime(source)  # as an editor's save: the next build must recompile
        build_module(tc, kernel, PRINTERFACT)

    build_module(tc, kernel, PRINTERFACT)
    measure("one-file module rebuild after an edit (printerfact)", rebuild, runs)

    def edit_to_result() -> None:
        os.utime(source)
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        str(PRINTERFACT / "test_printerfact.py"), "-k", "small_reads"],
                       check=True, capture_output=True, cwd=ROOT)

    measure("edit to test result (touch, pytest: build, boot, insmod, dd, verdict)",
            edit_to_result, runs)


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
    from rustkm.session import prepare_kernel

    tc, kernel = prepare_kernel()
    with tempfile.TemporaryDirectory(prefix="rustkm-ccache-") as folder:
        start = time.perf_counter()
        ensure_kernel(tc, kernel.source, [load_fragment(n) for n in kernel.fragments],
                      kernels_dir=Path(folder))
        report({"bench": "kernel build from scratch with a warm ccache",
                "seconds": round(time.perf_counter() - start, 1)})


def bench_kconfig(runs: int) -> None:
    """Reading the whole Kconfig tree of the project's kernel source (doctor, explain)."""
    from rustkm.kernel.kconfig import read_kconfig
    from rustkm.session import prepare_kernel

    _, kernel = prepare_kernel()
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
    parser.add_argument("what", choices=("boot", "module", "kernel", "ccache", "cold", "stock",
                                         "all"))
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    if args.what in ("boot", "all"):
        bench_boot(args.runs)
    if args.what in ("module", "all"):
        bench_module(max(3, args.runs // 2))
    if args.what in ("kernel", "all"):
        bench_kernel(max(3, args.runs // 2))
        bench_kconfig(max(3, args.runs // 2))
    if args.what == "ccache":
        bench_ccache()
    if args.what == "cold":
        bench_cold()
    if args.what == "stock":
        bench_stock()


if __name__ == "__main__":
    main()
