"""`rustkm doctor [--config FILE] [--source TREE|debian:SERIES] [--want SYMBOL=VALUE]`: the
verb of rustkm.kernel.tools."""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

from rustkm.errors import RustkmError
from rustkm.kernel.config import parse_config
from rustkm.kernel.explain import explain
from rustkm.kernel.kconfig import read_kconfig
from rustkm.kernel.source import kernel_version
from rustkm.kernel.tools import WANTED, check_toolchain
from rustkm.log import say
from rustkm.toolchain import ensure_toolchain

_CONFIG_HEADER = re.compile(r"^# Linux/\S+ (\d+)\.(\d+)\S* Kernel Configuration", re.MULTILINE)


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
