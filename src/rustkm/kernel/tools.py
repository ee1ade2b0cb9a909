"""Can this kernel tree, .config and toolchain build Rust modules, and if not, why (the work
of `rustkm doctor`, and of the build's check of a host toolchain). Tool versions are checked against the tree's own minimums (scripts/min-tool-version.sh,
then Documentation/process/changes.rst); the .config against the tree's own Kconfig."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from rustkm.errors import RustkmError
from rustkm.kernel.source import kernel_version
from rustkm.toolchain import Toolchain, ensure_toolchain

# Host tools of a Rust-enabled LLVM=1 build: (command, its name for min-tool-version.sh, the
# Debian package that has it). Tools the script does not know take changes.rst's minimum.
TOOLS = (
    ("rustc", "rustc", "rustc"), ("bindgen", "bindgen", "bindgen"),
    ("clang", "llvm", "clang"), ("ld.lld", "llvm", "lld"), ("llvm-ar", "llvm", "llvm"),
    ("llvm-nm", "llvm", "llvm"), ("llvm-objcopy", "llvm", "llvm"),
    ("llvm-readelf", "llvm", "llvm"), ("make", None, "make"), ("flex", None, "flex"),
    ("bison", None, "bison"), ("bc", None, "bc"),
)
PAHOLE = ("pahole", None, "dwarves")  # only when the .config asks for BTF
# What a kernel needs for out-of-tree Rust modules that rustkm can load and unload.
WANTED = {"RUST": "y", "MODULES": "y", "MODULE_UNLOAD": "y"}
_VERSION = re.compile(r"(\d+(?:\.\d+)+)")
_CHANGES_ROW = re.compile(r"^(\S.*?)\s{2,}(\d[\w.]*)\s{2,}(\S+)")
_PROBE = 'command -v "$0" >/dev/null || exit 127; exec "$0" --version'


@dataclass(frozen=True)
class ToolStatus:
    tool: str
    version: str | None  # None: not found
    minimum: str | None  # None: the tree names no minimum
    problem: str | None

    def __str__(self) -> str:
        if self.problem:
            return self.problem
        need = f" (>= {self.minimum})" if self.minimum else ""
        return f"{self.tool} {self.version}{need}: ok"


def _numbers(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


def minimum_versions(tc: Toolchain, tree: Path) -> dict[str, str]:
    """tool or min-tool-version.sh name -> minimum version, as the tree states them."""
    found: dict[str, str] = {}
    changes = tree / "Documentation/process/changes.rst"
    if changes.is_file():
        for line in changes.read_text(errors="replace").splitlines():
            if m := _CHANGES_ROW.match(line):
                found.setdefault(m.group(3), m.group(2))
    script = tree / "scripts/min-tool-version.sh"
    for name in sorted({name for _, name, _ in (*TOOLS, PAHOLE) if name}):
        if script.is_file():
            proc = tc.run(["sh", str(script), name], env={"SRCARCH": "x86", "ARCH": "x86"},
                          binds=[tree], check=False)
            if proc.returncode == 0 and _VERSION.search(proc.stdout or ""):
                found[name] = (proc.stdout or "").strip()
    return found


def check_tools(tc: Toolchain, tree: Path,
                config: Mapping[str, str] | None = None) -> list[ToolStatus]:
    """Each tool's version against the tree's minimum, one status per tool."""
    release = kernel_version(tree)
    minimums = minimum_versions(tc, tree)
    where = "on the host" if tc.root is None else f"in the {tc.name} toolchain"
    needs_pahole = config is not None and config.get("DEBUG_INFO_BTF") == "y"
    statuses = []
    for tool, script_name, package in (*TOOLS, *([PAHOLE] if needs_pahole else [])):
        minimum = minimums.get(script_name or tool)
        need = f"Linux {release} needs {script_name.upper() if script_name == 'llvm' else tool}"
        proc = tc.run(["sh", "-c", _PROBE, tool], check=False)
        match = _VERSION.search(proc.stdout or "")
        if proc.returncode == 127:
            wanted = f" >= {minimum}" if minimum else ""
            why = " (DEBUG_INFO_BTF=y)" if tool == "pahole" else ""
            statuses.append(ToolStatus(tool, None, minimum, f"{tool}: not found {where}; "
                                       f"{need}{wanted}{why} (Debian package {package})"))
        elif match is None:
            statuses.append(ToolStatus(tool, None, minimum, f"{tool}: `{tool} --version` "
                                       f"names no version: {(proc.stdout or '').strip()[:200]}"))
        elif minimum and _numbers(match.group(1)) < _numbers(minimum):
            statuses.append(ToolStatus(tool, match.group(1), minimum,
                                       f"{tool} {match.group(1)} is too old: {need} >= "
                                       f"{minimum} (Debian package {package})"))
        else:
            statuses.append(ToolStatus(tool, match.group(1), minimum, None))
    return statuses


def rust_available(tc: Toolchain, tree: Path) -> str | None:
    """The tree's `make LLVM=1 rustavailable` (rust-src, libclang, versions): None when it
    passes, else what it printed."""
    with tempfile.TemporaryDirectory(prefix="rustkm-doctor-") as out:
        # Out of tree, so that a clean source tree stays clean; a tree configured in place
        # refuses O=, and this target writes nothing there anyway.
        where = [] if (tree / ".config").exists() else [f"O={out}"]
        proc = tc.run(["make", "-s", "-C", str(tree), *where, "LLVM=1", "rustavailable"],
                      binds=[tree], check=False)
    if proc.returncode == 0:
        return None
    lines = [line for line in (proc.stdout or "").splitlines()
             if line.startswith("***") and line.strip("* ")]
    return "make LLVM=1 rustavailable failed:\n    " + "\n    ".join(lines or [proc.stdout or ""])


def check_toolchain(tc: Toolchain, tree: Path,
                    config: Mapping[str, str] | None = None) -> tuple[list[ToolStatus], str | None]:
    """Every tool's status, and what `make LLVM=1 rustavailable` says (None: it passes, or it
    could not run because make itself is missing, which the statuses already say)."""
    statuses = check_tools(tc, tree, config)
    if any(s.tool == "make" and s.version is None for s in statuses):
        return statuses, None
    return statuses, rust_available(tc, tree)


def check_host_tools(tree: Path, config: Mapping[str, str] | None = None) -> None:
    """Raise one RustkmError naming every host tool that is missing or too old for `tree`."""
    statuses, unavailable = check_toolchain(ensure_toolchain("host"), tree, config)
    problems = [s.problem for s in statuses if s.problem] + ([unavailable] if unavailable else [])
    if problems:
        raise RustkmError(
            f"the host's tools cannot build Linux {kernel_version(tree)} with Rust "
            f"({len(problems)} problem{'s' if len(problems) > 1 else ''})",
            details="\n".join(f"  {p}" for p in problems),
            hint="install or upgrade them, or use the pinned toolchain (drop --toolchain host)")
