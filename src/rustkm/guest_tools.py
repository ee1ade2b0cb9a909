"""Static helper programs that every guest gets (e.g. /bin/rawio), built once with the
toolchain's C compiler and cached by the hash of their source."""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

from rustkm.cache import locked
from rustkm.toolchain import ensure_toolchain, store_dir

HELPERS = {"/bin/rawio": "rawio.c"}


def guest_tools() -> list[tuple[str, Path]]:
    """(guest path, host path) of each helper, compiling what is not cached yet."""
    built = []
    for guest_path, source_name in HELPERS.items():
        source = (resources.files("rustkm") / "guest" / source_name).read_bytes()
        digest = hashlib.sha256(source).hexdigest()[:16]
        folder = store_dir() / "guest-tools"
        binary = folder / f"{Path(source_name).stem}-{digest}"
        if not binary.exists():
            with locked(binary, f"building {source_name}"):
                if not binary.exists():
                    _compile(source, binary)
        built.append((guest_path, binary))
    return built


def _compile(source: bytes, binary: Path) -> None:
    binary.parent.mkdir(parents=True, exist_ok=True)
    src = binary.with_suffix(".c")
    src.write_bytes(source)
    partial = binary.with_suffix(".partial")
    # Always the default (trixie) toolchain: a static program runs under any kernel lane.
    ensure_toolchain().run(["gcc", "-static", "-Os", "-Wall", "-Werror", "-o", str(partial),
                            str(src)])
    partial.rename(binary)
