"""One fuzz run in a guest: load the modules, find their files, run the guest fuzzer, and turn
what the kernel reported into a finding (with the seed and how far each thread had got)."""

from __future__ import annotations

import re
import shlex
import threading
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from rustkm.errors import RustkmError
from rustkm.fuzz.discover import listing, listing_before, new_files
from rustkm.guest_tools import cached_tool
from rustkm.kernel.build import KernelBuild
from rustkm.kernel.guest import guest_kernel
from rustkm.leaks import unload_and_scan
from rustkm.log import say
from rustkm.machine import CommandFailed, KernelTrouble, Machine, _loaded_name, boot
from rustkm.toolchain import Toolchain
from rustkm.vm import VmOptions

FUZZER = "/bin/rustkm-fuzz"
GUEST_MODULES = "/lib/modules/rustkm"
# "rustkm-fuzz: ops 0=123 1=456": the fuzzer's progress, once a second, on the console.
_PROGRESS = re.compile(r"rustkm-fuzz: (?:done )?ops((?: \d+=\d+)+)")
_COVERAGE = re.compile(r"rustkm-fuzz: (?:done )?ops(?: \d+=\d+)+ cov=(\d+)")
# "rustkm-fuzz: kept 1 420": thread 1's operation 420 reached new module code and was kept.
_KEPT = re.compile(r"rustkm-fuzz: kept (\d+) (\d+)")
_COVERAGE_DONE = re.compile(r"^rustkm-fuzz: coverage (\d+)$", re.MULTILINE)
_PER_OP = re.compile(r"^rustkm-fuzz: (open|close|read|write|pread|pwrite|seek|ioctl|poll|mmap|"
                     r"cycle) (\d+)$", re.MULTILINE)
PLACEHOLDER = "/dev/null"  # the file list of a module that created none


def fuzzer_binary(tc: Toolchain | None = None, arch: str = "") -> Path:
    """The fuzzer built for `arch` (the host's when "": also what plans runs on the host)."""
    return cached_tool("fuzz.c", (resources.files("rustkm") / "guest" / "fuzz.c").read_bytes(),
                       tc, arch)


@dataclass
class Finding:
    """What the kernel reported, and what replays it."""

    kind: str  # the trouble kinds (oops, BUG, KASAN ...), or "kmemleak"
    title: str  # the report's first line
    report: str  # the whole report, demangled
    counts: list[int]  # each thread's operations done at the last progress line
    rate: list[float]  # each thread's operations a second
    kept: dict[int, list[int]] = field(default_factory=dict)  # thread: indices kept (KCOV)


@dataclass
class FuzzRun:
    modules: list[str]
    files: list[str]
    seed: int
    seconds: int
    threads: int
    cycle: str  # the module insmod/rmmod cycles (its guest path), or "-"
    counts: list[int] = field(default_factory=list)
    per_op: dict[str, int] = field(default_factory=dict)
    wall: float = 0.0
    finding: Finding | None = None
    blocked: int = 0  # threads still in a call when the time was up
    ioctls: list[int] = field(default_factory=list)  # the modules' own ioctl commands
    coverage: int | None = None  # distinct module PCs reached (KCOV); None: not measured
    kept: int = 0  # operations kept for reaching new module code (KCOV)
    setup: str = ""  # guest shell commands run before the modules load ([fuzz] setup)
    devices: list[str] = field(default_factory=list)  # QEMU devices ([fuzz] devices)
    params: str = ""  # "name=value ..." for every insmod of the cycled module ([fuzz] params)


def fuzzer_argv(run: FuzzRun, binary: str, *args: str, kept: Sequence[int] = ()) -> list[str]:
    """The guest fuzzer's command line for `run` (plan and run draw the same operations only
    with the same ioctl commands; a thread's plan also needs the indices it kept)."""
    env = [f"RUSTKM_FUZZ_IOCTLS={','.join(hex(c) for c in run.ioctls)}"] if run.ioctls else []
    if kept:
        env.append(f"RUSTKM_FUZZ_KEPT={','.join(str(i) for i in sorted(kept))}")
    if run.params:
        env.append(f"RUSTKM_FUZZ_PARAMS={run.params}")
    return [*(["env", *env] if env else []), binary, *args, run.cycle,
            *(run.files or [PLACEHOLDER])]


def kept_inputs(console: str) -> dict[int, list[int]]:
    """Each thread's kept operations (their indices), from the fuzzer's console lines."""
    kept: dict[int, list[int]] = {}
    for thread, index in _KEPT.findall(console):
        kept.setdefault(int(thread), []).append(int(index))
    return kept


def progress(console: str) -> tuple[list[int], list[float]]:
    """Each thread's count at the last progress line, and its rate over the last second."""
    lines = [[int(pair.split("=")[1]) for pair in m.group(1).split()]
             for m in _PROGRESS.finditer(console)]
    if not lines:
        return [], []
    last = lines[-1]
    before = lines[-2] if len(lines) > 1 else [0] * len(last)
    return last, [float(max(a - b, 1)) for a, b in zip(last, before, strict=False)]


def fuzz_command(run: FuzzRun) -> str:
    return shlex.join(fuzzer_argv(run, FUZZER, "run", str(run.seed), str(run.seconds),
                                  str(run.threads)))


def start_guest(tc: Toolchain, kernel: KernelBuild, kos: Sequence[Path], cpus: int,
                name: str = "fuzz",
                devices: Sequence[str] = ()) -> AbstractContextManager[Machine]:
    """A guest with the modules and the fuzzer copied in (nothing loaded yet), and the QEMU
    devices the modules drive ([fuzz] devices)."""
    options = VmOptions(memory_mb=max(512, kernel.memory_mb), cpus=cpus, devices=tuple(devices))
    return boot(guest_kernel(kernel), list(kos), files=[(FUZZER, fuzzer_binary(tc, kernel.arch))],
                options=options, toolchain=tc, name=name)


def parameters(params: str) -> dict[str, str]:
    """`name=value ...` ([fuzz] params) as insmod keywords."""
    return dict(word.split("=", 1) for word in params.split())


def _insmod_all(vm: Machine, kos: Sequence[Path], params: str) -> None:
    """The first module (the one cycled) with its [fuzz] params, then the others."""
    for i, ko in enumerate(kos):
        vm.insmod(ko.stem, 120.0, **(parameters(params) if i == 0 else {}))


def load(vm: Machine, kos: Sequence[Path], setup: str, params: str = "") -> None:
    """The modules' own set-up ([fuzz] setup of rustkm-module.toml), then insmod."""
    if setup:
        vm.succeed(setup, timeout=120)
    _insmod_all(vm, kos, params)


def load_and_discover(vm: Machine, kos: Sequence[Path], setup: str = "",
                      params: str = "") -> list[str]:
    if setup:  # the set-up's own files are not the modules'
        vm.succeed(setup, timeout=120)
    before = listing(vm) if setup else listing_before(vm)
    _insmod_all(vm, kos, params)
    return new_files(before, listing(vm), [ko.stem for ko in kos])


def coverage(text: str) -> int | None:
    """The distinct module PCs the fuzzer saw (KCOV): its final line, else its last progress
    line; None where the kernel has no KCOV."""
    if final := _COVERAGE_DONE.search(text):
        return int(final.group(1))
    found = _COVERAGE.findall(text)
    return int(found[-1]) if found else None


def _run_with_progress(vm: Machine, run: FuzzRun, mark: int, every: float = 5.0) -> str:
    """The fuzzer's run, with a progress line every `every` seconds from its console lines:
    time, operations and their rate, files, coverage."""
    outcome: list[str | BaseException] = []

    def guest() -> None:
        try:
            outcome.append(vm.succeed(fuzz_command(run), timeout=run.seconds + 90))
        except BaseException as e:  # noqa: BLE001 (raised again on the calling thread)
            outcome.append(e)

    thread = threading.Thread(target=guest, name="rustkm-fuzz", daemon=True)
    started = time.monotonic()
    thread.start()
    while thread.is_alive():
        thread.join(every)
        if thread.is_alive():
            text = vm.console_log[mark:]
            counts, _ = progress(text)
            elapsed = time.monotonic() - started
            total = sum(counts)
            cov = coverage(text)
            kept = sum(len(k) for k in kept_inputs(text).values())
            say(f"fuzz: {elapsed:.0f}/{run.seconds} s, {total} ops ({total / elapsed:.0f}/s), "
                f"{len(run.files)} file(s), "
                f"{f'coverage {cov} PCs, {kept} inputs kept' if cov is not None else 'no coverage'}"
                ", no finding yet")
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return result


def fuzz_once(vm: Machine, run: FuzzRun, live: bool = True) -> FuzzRun:
    """Run the fuzzer in `vm` (modules loaded); a kernel report becomes run.finding."""
    mark = len(vm.console_log)
    begin = f"{_BEGIN} {run.seed} {time.monotonic_ns()}"
    vm.run(f"echo '{begin}' > /dev/kmsg")
    started = time.monotonic()
    try:
        out = _run_with_progress(vm, run, mark) if live else \
            vm.succeed(fuzz_command(run), timeout=run.seconds + 90)
    except KernelTrouble as e:
        # The minimizer replays what each thread did from its progress and kept lines: read
        # them from the kernel's log, which keeps every line, where the serial console may
        # lose one on a loaded host (and a lost "kept" line makes the replay diverge).
        log = _kernel_log_since(vm, begin) or vm.console_log[mark:]
        run.coverage = coverage(log)
        run.wall = time.monotonic() - started
        counts, rate = progress(log)
        troubles = e.troubles
        run.counts = counts
        kept = kept_inputs(log)
        run.kept = sum(len(k) for k in kept.values())
        run.finding = Finding(", ".join(sorted({t.kind for t in troubles})), troubles[0].title,
                              e.details or e.message, counts, rate, kept)
        return run
    except CommandFailed as e:
        if not e.result.timed_out:
            raise
        # No kernel report, but no end either: the guest is stalled (a module busy in atomic
        # context, a deadlock below the hung-task detector's view). Say so with the console.
        tail = "\n".join(vm.console_log[mark:].splitlines()[-40:])
        raise RustkmError(f"the fuzzer did not finish {run.seconds} s of fuzzing within "
                          f"{run.seconds + 90} s: the guest stalled (seed {run.seed})",
                          details=f"the console's last lines:\n{tail}",
                          hint="a module that busy-waits at load can stall the insmod/rmmod "
                               "cycles: give it quick parameters ([fuzz] params in "
                               "rustkm-module.toml) or run with --no-cycle") from None
    run.wall = time.monotonic() - started
    run.counts, _ = progress(out)
    run.per_op = {m.group(1): int(m.group(2)) for m in _PER_OP.finditer(out)}
    blocked = re.search(r"blocked threads (\d+)", out)
    run.blocked = int(blocked.group(1)) if blocked else 0
    run.coverage = coverage(out)
    run.kept = sum(len(k) for k in kept_inputs(vm.console_log[mark:]).values())
    return run


_BEGIN = "rustkm-fuzz: begin"


def _kernel_log_since(vm: Machine, begin: str) -> str:
    """The kernel log (dmesg) after the line `begin`; "" when the guest cannot say (a guest
    that died in the report answers nothing) or the line is gone from the ring buffer."""
    try:
        result = vm.run("dmesg", timeout=30)
    except RustkmError:
        return ""
    text = result.out if result.status == 0 else ""
    _, found, after = text.rpartition(begin)
    return after if found else ""


def check_leaks(vm: Machine, modules: list[str], kos: Sequence[Path] = ()) -> Finding | None:
    """After the last rmmod: kmemleak's report of objects the modules allocated, if any."""
    text = unload_and_scan(vm, modules, {_loaded_name(ko): ko for ko in kos})
    if text is None:
        return None
    count = text.count("unreferenced object")
    return Finding("kmemleak", f"kmemleak: {count} unreferenced object(s) of "
                   f"{', '.join(modules)}", text, [], [])
