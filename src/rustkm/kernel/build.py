"""Configure and build a kernel out of tree (O=), cached by (toolchain, source, config)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from rustkm.cache import cache_key, locked, write_atomic
from rustkm.errors import RustkmError
from rustkm.kernel.config import Fragment, merge, missing, parse_config, render
from rustkm.kernel.source import KernelSource
from rustkm.log import console, say, step
from rustkm.toolchain import Toolchain, store_dir

_OBJECT_LINE = re.compile(r"^  ([A-Z][A-Z0-9_]*(?: [A-Z])?)\s+(\S+)")
_STAMP = "rustkm-build.json"


@dataclass(frozen=True)
class KernelBuild:
    """A finished kernel build: everything the VM and out-of-tree modules need."""

    key: str
    build_dir: Path
    source: KernelSource
    toolchain: str
    release: str
    fragments: tuple[str, ...]
    # A distribution kernel's lane builds modules with its own compiler and KERNELRELEASE,
    # and boots the distribution's image; the self-built lane uses the defaults.
    make_vars: tuple[str, ...] = ()
    image_path: str = ""
    memory_mb: int = 128  # the least guest memory this kernel boots with
    arch: str = "x86_64"  # the guest's architecture (rustkm.arch)
    # Another architecture's static busybox for the guest (else the toolchain's own); found
    # each time the lane is prepared, not part of the stamp's meaning.
    busybox: str = ""

    @property
    def vmlinux(self) -> Path:
        return self.build_dir / "vmlinux"

    @property
    def image(self) -> Path:
        """What the VM boots: vmlinux (PVH entry), arm64's Image, or the distribution's
        vmlinuz."""
        if self.image_path:
            return Path(self.image_path)
        if self.arch == "arm64":
            return self.build_dir / "arch/arm64/boot/Image"
        return self.vmlinux

    def module_make_args(self) -> list[str]:
        if self.make_vars:
            return [*self.make_vars, f"-j{os.cpu_count() or 1}"]
        return make_args(arch=self.arch)

    @property
    def bzimage(self) -> Path:
        return self.build_dir / "arch/x86/boot/bzImage"

    @property
    def config(self) -> Path:
        return self.build_dir / ".config"

    @property
    def symvers(self) -> Path:
        return self.build_dir / "Module.symvers"

    @staticmethod
    def finished(build_dir: Path) -> bool:
        """Whether `build_dir` holds a finished build: its stamp is written last."""
        return (build_dir / _STAMP).exists()

    @classmethod
    def load(cls, build_dir: Path) -> KernelBuild:
        data = json.loads((build_dir / _STAMP).read_text())
        data["build_dir"] = build_dir  # where it is now, should the cache have moved
        src = data["source"]
        data["source"] = KernelSource(Path(src["tree"]), src["version"], src["origin"])
        data["fragments"] = tuple(data["fragments"])
        data["make_vars"] = tuple(data.get("make_vars", ()))
        return cls(**data)

    def save(self, into: Path | None = None) -> None:
        """Write the stamp that makes the build usable, whole, in build_dir (or in `into`, a
        private folder that becomes build_dir when it is published)."""
        data = asdict(self)
        write_atomic((into or self.build_dir) / _STAMP,
                     json.dumps(data, default=str, indent=2) + "\n")


def out_of_tree_make(tree: Path, build_dir: Path, *args: str) -> list[str]:
    """The kbuild command line for the source `tree` building into `build_dir` (O=)."""
    return ["make", "-C", str(tree), f"O={build_dir}", *args]


def make_args(jobs: int | None = None, arch: str = "x86_64") -> list[str]:
    """What every make call of a kernel build gets: LLVM, ccache for C, a stable timestamp;
    ARCH for another architecture than x86 (clang and rustc cross-build from the same
    binaries)."""
    return ["LLVM=1", "CC=ccache clang", *_arch_args(arch), f"-j{jobs or os.cpu_count() or 1}",
            "KBUILD_BUILD_TIMESTAMP=rustkm", "KBUILD_BUILD_USER=rustkm",
            "KBUILD_BUILD_HOST=rustkm"]


def _arch_args(arch: str) -> list[str]:
    return [] if arch == "x86_64" else [f"ARCH={arch}"]


def ccache_env() -> dict[str, str]:
    if os.environ.get("RUSTKM_CCACHE", "1") == "0":  # benchmarks of a build from nothing
        return {"CCACHE_DISABLE": "1"}
    return {"CCACHE_DIR": str(store_dir() / "ccache"), "CCACHE_MAXSIZE": "2G",
            "CCACHE_COMPILERCHECK": "content"}


def build_key(tc: Toolchain, source: KernelSource, fragments: list[Fragment],
              arch: str = "x86_64") -> str:
    merged, _ = merge(fragments)
    return cache_key(tc.name, source.origin, render(merged),
                     make_args(1)[:2] + _arch_args(arch))


def ensure_kernel(tc: Toolchain, source: KernelSource, fragments: list[Fragment],
                  jobs: int | None = None, kernels_dir: Path | None = None,
                  arch: str = "x86_64") -> KernelBuild:
    """The cached build, or build it (resuming an interrupted build in the same folder).

    Builds are keyed by (toolchain, source, merged config) and guarded by a file lock, so two
    rustkm processes never build into one folder at once; the second waits, then reuses.
    """
    key = build_key(tc, source, fragments, arch)
    build_dir = (kernels_dir or store_dir() / "kernels") / key
    immutable = source.origin.startswith("debian:")
    names = tuple(f.name for f in fragments)
    if immutable and KernelBuild.finished(build_dir):
        return _cached(build_dir, names)  # the no-op: nothing that keys the build changed
    with locked(build_dir, f"kernel build {key}"):
        if immutable and KernelBuild.finished(build_dir):
            return _cached(build_dir, names)
        build_dir.mkdir(parents=True, exist_ok=True)
        redo = discard_interrupted(build_dir)
        if redo:
            say(f"an interrupted build left {len(redo)} target(s) half-made; they are redone")
        configure(tc, source, fragments, build_dir, arch)
        _compile(tc, source, build_dir, key, jobs, arch)
        release = (build_dir / "include/config/kernel.release").read_text().strip()
        build = KernelBuild(key, build_dir, source, tc.name, release, names, arch=arch)
        build.save()
        return build


def _cached(build_dir: Path, names: tuple[str, ...]) -> KernelBuild:
    """A finished build, with the fragments as this caller names them: the key hashes their
    content, so another checkout's paths to the same fragments (in the stamp) may be gone."""
    return replace(KernelBuild.load(build_dir), fragments=names)


def discard_interrupted(build_dir: Path) -> list[Path]:
    """Remove the targets a killed build left half-made, so that make redoes them.

    Kbuild writes a target's `.NAME.cmd` last, after every step of its recipe (objtool, for
    one, rewrites objects in place); a target newer than its .cmd file is one whose recipe was
    cut short, and make would otherwise take it as up to date.
    """
    removed = []
    for cmd in build_dir.rglob(".*.cmd"):
        target = cmd.with_name(cmd.name[1:-len(".cmd")])
        try:
            if target.stat().st_mtime_ns > cmd.stat().st_mtime_ns:
                target.unlink()
                removed.append(target)
        except FileNotFoundError:
            continue
    return removed


def configure(tc: Toolchain, source: KernelSource, fragments: list[Fragment],
              build_dir: Path, arch: str = "x86_64") -> None:
    """allnoconfig with the merged fragments forced in, then check every request stuck."""
    requested, overrides = merge(fragments)
    for o in overrides:
        say(f"config: {o.new_fragment} sets {o.symbol}={o.new} over {o.old_fragment}'s {o.old}")
    allconfig = build_dir / "rustkm-fragments.config"
    text = render(requested)
    if allconfig.exists() and allconfig.read_text() == text and (build_dir / ".config").exists():
        return
    allconfig.write_text(text)
    with step(f"configuring Linux {source.version}: allnoconfig + {len(fragments)} fragments"):
        _make(tc, source, build_dir, [f"KCONFIG_ALLCONFIG={allconfig}", "allnoconfig"],
              arch=arch)
    final = parse_config((build_dir / ".config").read_text())
    lost = missing(requested, final)
    if lost:
        from rustkm.kernel.explain import explain_missing

        (build_dir / ".config").rename(build_dir / ".config.rejected")
        allconfig.unlink()
        raise RustkmError(
            f"the kernel config lost {len(lost)} option(s) the fragments ask for",
            details=explain_missing(source.tree, final, lost),
            hint="fix the fragments (or the toolchain), then run again; nothing was built")


def _make(tc: Toolchain, source: KernelSource, build_dir: Path, targets: list[str],
          jobs: int | None = 1, arch: str = "x86_64") -> str:
    argv = out_of_tree_make(source.tree, build_dir, *make_args(jobs, arch), *targets)
    proc = tc.run(argv, cwd=build_dir, env=ccache_env(), binds=[source.tree], check=False)
    if proc.returncode != 0:
        raise _build_failure(proc.stdout or "", " ".join(targets))
    return proc.stdout or ""


# Lines of a failed make that say why, wherever they scrolled to.
_CAUSE = re.compile(r"error|\*\*\*|no rule to make|segmentation fault|killed|not found|"
                    r"no space left|cannot|permission denied", re.IGNORECASE)


def _build_failure(output: str, what: str, causes: list[str] | None = None) -> RustkmError:
    tail = "\n".join(output.splitlines()[-40:])
    if "No space left on device" in output:
        return RustkmError(f"the disk is full: make {what} could not write its output",
                           details=tail, hint="free some space, then run again: the build resumes")
    errors = causes if causes is not None else [
        line for line in output.splitlines() if _CAUSE.search(line)]
    return RustkmError(f"make {what} failed", details="\n".join(errors[:20]) + "\n...\n" + tail,
                       hint="the build folder is kept; fix the cause and run again to resume")


def _compile(tc: Toolchain, source: KernelSource, build_dir: Path, key: str,
             jobs: int | None, arch: str = "x86_64") -> None:
    counts_file = store_dir() / "kernels" / "object-counts.json"
    expected = expected_steps(_object_counts(counts_file), key)
    argv = tc.wrap(out_of_tree_make(source.tree, build_dir, *make_args(jobs, arch)),
                   cwd=build_dir, env=ccache_env(), binds=[source.tree])
    done = 0
    with step(f"building Linux {source.version} in {build_dir}"):
        for _ in range(_CMD_REPAIRS + 1):
            rc, tail, causes, steps = _run_make(argv, expected)
            done += steps
            cut = [] if rc == 0 else cut_short_cmd_files("".join(causes + tail), build_dir)
            if not cut:
                break
            # A build killed while Kbuild's fixdep wrote a .cmd file leaves it cut short, and
            # make then stops at parsing it: without it, Kbuild rebuilds that one target.
            for path in cut:
                path.unlink(missing_ok=True)
            say(f"kernel build: {', '.join(p.name for p in cut)} cut short by an interrupted "
                "build; removed, resuming")
        if rc != 0:
            raise _build_failure("".join(tail), "(kernel build)",
                                 [c.rstrip("\n") for c in causes])
        say(f"{done} build steps")
    if done > 100:
        record_steps(counts_file, key, done)


# How many times a build resumes after removing .cmd files an interrupted build cut short
# (make -j N writes at most N at once).
_CMD_REPAIRS = 4
# make's parse error in an included file: "kernel/.panic.o.cmd:5: *** unterminated call...".
_CMD_PARSE_ERROR = re.compile(r"^(\S*\.cmd):\d+: \*\*\* ", re.MULTILINE)


def cut_short_cmd_files(output: str, build_dir: Path) -> list[Path]:
    """The Kbuild .cmd files (in `build_dir`) that make could not parse."""
    found = []
    root = build_dir.resolve()
    for name in dict.fromkeys(_CMD_PARSE_ERROR.findall(output)):
        path = (build_dir / name).resolve()
        if path.is_relative_to(root) and path.name.startswith(".") and path.is_file():
            found.append(path)
    return found


def _run_make(argv: list[str], expected: int) -> tuple[int, list[str], list[str], int]:
    """Run the kernel's make with a progress bar: its status, the last 200 lines, the lines
    that look like causes of a failure, and the build steps it took."""
    tail: list[str] = []
    causes: list[str] = []
    done = 0
    start = last_print = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace")
    assert proc.stdout is not None
    progress = Progress(TextColumn("  kernel build"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[last]}"), TimeElapsedColumn(),
                        TextColumn("left"), TimeRemainingColumn(),
                        console=console, transient=True, disable=not console.is_terminal)
    try:
        with progress:
            task = progress.add_task("build", total=expected, last="")
            for line in proc.stdout:
                tail = (tail + [line])[-200:]
                if len(causes) < 20 and _CAUSE.search(line):
                    causes.append(line)
                m = _OBJECT_LINE.match(line)
                if not m:
                    continue
                done += 1
                progress.update(task, completed=done, last=m.group(2)[-40:])
                now = time.monotonic()
                if not console.is_terminal and now - last_print > 30:
                    say(f"kernel build: {done}/~{expected} steps, {now - start:.0f} s, "
                        f"{time_left(done, expected, now - start)}, {m.group(2)}")
                    last_print = now
        rc = proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return rc, tail, causes, done


# Build steps of this project's default kernel (Linux 7.2, rustkm's fragments and LKMPG's),
# measured; the first build on a machine has no count of its own to go by.
TYPICAL_STEPS = 1700


def expected_steps(counts: dict[str, int], key: str) -> int:
    """The expected number of build steps: this kernel's last full build, else the largest
    of the other kernels' (a config close to this one), else TYPICAL_STEPS."""
    return counts.get(key) or max(counts.values(), default=0) or TYPICAL_STEPS


def time_left(done: int, expected: int, elapsed: float) -> str:
    """'about N min left' at the pace so far (steps are not equal: a rough figure)."""
    if done < 50 or done >= expected:
        return "time left unknown" if done < 50 else "nearly done"
    left = elapsed / done * (expected - done)
    return f"about {max(1, round(left / 60))} min left"


def record_steps(counts_file: Path, key: str, steps: int) -> None:
    """Remember how many steps the build `key` took, beside other kernels' counts: read,
    changed and written whole under a lock, so that builds of other keys finishing at the same
    time lose none. A resumed build does fewer steps: the larger count stays."""
    with locked(counts_file, "the kernel build step counts"):
        counts = _object_counts(counts_file)
        counts[key] = max(steps, counts.get(key, 0))
        write_atomic(counts_file, json.dumps(counts))


def _object_counts(counts_file: Path) -> dict[str, int]:
    """Build steps of each finished build, by key: the progress bar's total."""
    try:
        return dict(json.loads(counts_file.read_text()))
    except (FileNotFoundError, ValueError):
        return {}
