"""Whether a module build's outputs are current, without running make.

An up-to-date Kbuild run still costs about a second (make reads the kernel's Makefiles), and
every test of a module asks once per pytest worker. After each successful build a stamp
records what the build read, as Kbuild itself recorded it in its `.*.cmd` files (the sources,
the `#[path]` files and headers, the kernel's .rmeta crates), plus the module folder's
listing and the make command line. The next build whose stamp still matches skips make.

Files of the project (the module folder, shared code beside it) are compared by content;
the kernel's files by size and modification time, as make compares them. Anything the stamp
cannot vouch for (no stamp, another command line, a file gone or changed, an output missing)
means make runs, as before.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path

from rustkm.cache import write_atomic

STAMP = ".rustkm-stamp.json"
_VERSION = 1
_MARGIN_NS = 100_000_000
# `deps_X := \` and `source_X := FILE` in a Kbuild .cmd file; each dependency on its own line.
_SOURCE = re.compile(r"^source_\S+ := (\S+)$", re.MULTILINE)
_DEP_LINE = re.compile(r"^\s+(\S+)\s*\\?$", re.MULTILINE)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _stat(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def build_inputs(output: Path, to_host: Callable[[Path], Path]) -> set[Path]:
    """The files Kbuild says the objects in `output` were made from, as host paths
    (`to_host` maps the paths of the build's sandbox); empty when it said nothing (then no
    stamp is written). Kbuild runs in `output`: relative paths are relative to it."""
    found: set[Path] = set()
    for cmd in output.glob(".*.cmd"):
        text = cmd.read_text(errors="replace")
        found.update(Path(m) for m in _SOURCE.findall(text))
        for dep in _DEP_LINE.findall(text):
            if not dep.startswith("$(") and dep != "\\":
                found.add(Path(dep))
    resolved = set()
    for path in found:
        full = to_host(path) if path.is_absolute() else output / path
        resolved.add(full.resolve())
    return resolved


def _fingerprint(path: Path, by_content: tuple[Path, ...]) -> list[object]:
    if any(path.is_relative_to(root) for root in by_content):
        return ["sha256", _digest(path)]
    return ["stat", *_stat(path)]


def _folder(folder: Path) -> list[str]:
    """The names of the module folder's own files: a new or removed one means make runs
    (hidden ones aside). What is in them counts for those the build read (the inputs, its
    Kbuild and Makefile among them); subfolders' files count when the build read them."""
    return sorted(p.name for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith("."))


def record(output: Path, folder: Path, argv: list[str], modules: tuple[Path, ...],
           by_content: tuple[Path, ...], to_host: Callable[[Path], Path],
           started_ns: int, also: tuple[Path, ...] = ()) -> None:
    """After a successful build that began at `started_ns` (time.time_ns()): what it read
    and what it made; `also`: files make reads that no .cmd file names (the kernel's
    Module.symvers, which modpost reads at every build). A source changed while make ran
    (modified after it began) may not be what make compiled: then no stamp, and make
    decides next time."""
    inputs = build_inputs(output, to_host)
    if not inputs:
        (output / STAMP).unlink(missing_ok=True)
        return
    inputs |= {p for p in (folder / "Kbuild", folder / "Makefile", *also) if p.is_file()}
    try:
        sources = [p for p in inputs if not p.is_relative_to(output)]
        sources += [p for p in folder.iterdir() if p.is_file()]
        # A file's time comes from a coarse clock (it may lag time_ns by a few ms): a margin.
        if any(p.stat().st_mtime_ns >= started_ns - _MARGIN_NS for p in sources):
            (output / STAMP).unlink(missing_ok=True)
            return
        stamp = {
            "version": _VERSION,
            "argv": argv,
            "folder": _folder(folder),
            "inputs": {str(p): _fingerprint(p, by_content) for p in sorted(inputs)},
            "outputs": {str(m): _stat(m) for m in modules},
        }
    except OSError:  # an input vanished under the build: no stamp, make decides next time
        (output / STAMP).unlink(missing_ok=True)
        return
    write_atomic(output / STAMP, json.dumps(stamp, indent=0, sort_keys=True))


def current(output: Path, folder: Path, argv: list[str], modules: tuple[Path, ...],
            by_content: tuple[Path, ...]) -> bool:
    """Whether the outputs are what make would leave as they are."""
    try:
        stamp = json.loads((output / STAMP).read_text())
        if not isinstance(stamp, dict) or stamp.get("version") != _VERSION \
                or stamp.get("argv") != argv:
            return False
        if stamp.get("folder") != _folder(folder):
            return False
        if stamp.get("outputs") != {str(m): _stat(m) for m in modules}:
            return False
        inputs = stamp.get("inputs")
        if not isinstance(inputs, dict) or not inputs:
            return False
        return all(_fingerprint(Path(p), by_content) == value for p, value in inputs.items())
    except (OSError, ValueError):
        return False
