"""`rustkm doctor`: can this kernel tree, .config and toolchain build Rust modules, and if not,
why. Tool versions are checked against the tree's own minimums (scripts/min-tool-version.sh,
then Documentation/process/changes.rst); the .config against the tree's own Kconfig."""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from rustkm.errors import RustkmError
from rustkm.kernel.config import parse_config
from rustkm.kernel.explain import explain
from rustkm.kernel.kconfig import read_kconfig
from rustkm.kernel.source import kernel_version
from rustkm.log import say
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
_CONFIG_HEADER = re.compile(r"^# Linux/\S+ (\d+)\.(\d+)\S* Kernel Configuration", re.MULTILINE)
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


def register(verbs: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = verbs.add_parser("doctor", help="explain whether a .config and toolchain can build "
                                        "Rust modules, and why not")
    p.add_argument("--config", type=Path, help="a kernel .config to explain")
    p.add_argument("--source", help="its kernel tree, or debian:SERIES (default: the series "
                                    "the .config names, else the project's kernel)")
    p.add_argument("--toolchain", choices=("debian", "host"), default="debian")
    p.add_argument("--want", action="append", default=[], metavar="SYMBOL=VALUE",
                   help="another option to check (repeatable); RUST, MODULES, MODULE_UNLOAD "
                        "are always checked")
    p.set_defaults(func=cmd_doctor)


def cmd_doctor(args: argparse.Namespace) -> int:
    config_text = _read_config(args.config) if args.config else None
    wanted = {**WANTED, **_wants(args.want)}
    tree = _tree(args.source, config_text)
    release = kernel_version(tree)
    problems = 0
    if config_text is not None:
        start = time.monotonic()
        kconfig = read_kconfig(tree)
        config = parse_config(config_text)
        say(f"{args.config}: checked against Linux {release}'s Kconfig ({len(kconfig.symbols)} "
            f"symbols, {time.monotonic() - start:.1f} s)")
        made_for = _config_series(config_text)
        if made_for and not release.startswith(made_for + "."):
            say(f"  note: the .config was made for Linux {made_for}, the tree is {release}")
        reasons = explain(kconfig, config, wanted)
        for name, value in wanted.items():
            if config.get(name, "n") == value:
                say(f"  {name}={value}: ok")
        for line in reasons:
            say(f"  {line}")
        problems += sum(1 for line in reasons if not line.startswith("note:"))
    else:
        say("no --config given: checking the toolchain only")
    tc = ensure_toolchain(args.toolchain)
    say(f"toolchain {tc.name}, against the minimum versions of Linux {release} ({tree}):")
    statuses, unavailable = check_toolchain(
        tc, tree, parse_config(config_text) if config_text else None)
    for status in statuses:
        say(f"  {status}")
        problems += status.problem is not None
    if unavailable or all(s.tool != "make" or s.version for s in statuses):
        say(f"  {unavailable or 'make LLVM=1 rustavailable: Rust is available'}")
    problems += unavailable is not None
    say(f"doctor: {problems} problem{'s' if problems != 1 else ''} found" if problems
        else "doctor: no problems found")
    return 1 if problems else 0


def _read_config(path: Path) -> str:
    if path.is_dir():
        raise RustkmError(f"{path} is a folder, not a kernel .config",
                          hint="pass a kernel .config, e.g. /boot/config-$(uname -r)")
    if not path.is_file():
        raise RustkmError(f"the .config {path} does not exist",
                          hint="pass a kernel .config, e.g. /boot/config-$(uname -r)")
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        raise RustkmError(f"the .config {path} cannot be read: {e.strerror}") from None
    if not parse_config(text):
        raise RustkmError(f"{path} holds no CONFIG_ lines: it is not a kernel .config")
    return text


def _wants(specs: list[str]) -> dict[str, str]:
    wanted = {}
    for spec in specs:
        name, sep, value = spec.removeprefix("CONFIG_").partition("=")
        if not sep or not name or not value:
            raise RustkmError(f"--want {spec!r}: expected SYMBOL=VALUE, e.g. --want KASAN=y")
        wanted[name] = value
    return wanted


def _config_series(text: str) -> str | None:
    m = _CONFIG_HEADER.search(text)
    return f"{m.group(1)}.{m.group(2)}" if m else None


def _tree(source: str | None, config_text: str | None) -> Path:
    """The kernel tree whose Kconfig and minimum versions apply."""
    if source is None and config_text is not None and (series := _config_series(config_text)):
        say(f"the .config names Linux {series}: reading Debian's linux-source-{series} "
            "(--source TREE to use another tree)")
        source = f"debian:{series}"
    if source is None:
        from rustkm.project import find_project

        source = find_project().kernel
    if source.startswith("debian:"):
        return _debian_tree(source.split(":", 1)[1])
    tree = Path(source).expanduser().resolve()
    if not tree.is_dir():
        raise RustkmError(f"kernel source {source} does not exist",
                          hint="pass --source TREE (the top of a kernel tree) or debian:SERIES")
    kernel_version(tree)  # a clear error if it is not a kernel tree
    return tree


def _debian_tree(series: str) -> Path:
    from rustkm.kernel.source import DebianArchive, fetch_source
    from rustkm.lockfile import Lock
    from rustkm.project import find_project

    if not series.replace(".", "").isdigit():
        raise RustkmError(f"bad kernel source debian:{series}", hint="use e.g. debian:6.12")
    archive = DebianArchive(ensure_toolchain())
    package = f"linux-source-{series}"
    # The project's pin when it has one; otherwise the archive's newest, without a lock write.
    pinned = Lock.read(find_project().lock_path).packages.get(package) or archive.resolve(package)
    return fetch_source(archive, pinned, series).tree
