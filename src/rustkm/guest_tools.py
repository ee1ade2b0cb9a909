"""Static helper programs that every guest gets (e.g. /bin/rawio), built once with the
toolchain's C compiler and cached by the hash of their source."""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

from rustkm.cache import publish_once
from rustkm.errors import RustkmError
from rustkm.toolchain import ensure_toolchain, store_dir

HELPERS = {"/bin/rawio": "rawio.c", "/rustkm/agent": "agent.c"}


def guest_tools() -> list[tuple[str, Path]]:
    """(guest path, host path) of each helper, compiling what is not cached yet."""
    return [(guest_path, _cached_build(source_name,
                                       (resources.files("rustkm") / "guest" / source_name)
                                       .read_bytes()))
            for guest_path, source_name in HELPERS.items()]


def user_program(source: Path) -> tuple[str, Path]:
    """A test's own C program (a marker's `programs=`), built static for the guest's /bin."""
    if source.suffix != ".c":
        raise RustkmError(f"{source}: a guest program must be one C source file (.c)")
    try:
        text = source.read_bytes()
    except OSError as e:
        raise RustkmError(f"guest program {source}: {e.strerror}") from None
    return f"/bin/{source.stem}", _cached_build(source.name, text)


def cached_tool(source_name: str, source: bytes) -> Path:
    """A static guest program built from `source`, cached by its hash."""
    return _cached_build(source_name, source)


def _cached_build(source_name: str, source: bytes) -> Path:
    digest = hashlib.sha256(source).hexdigest()[:16]
    binary = store_dir() / "guest-tools" / f"{Path(source_name).stem}-{digest}"
    return publish_once(binary, f"building {source_name}",
                        lambda private: _compile(source, private))


def _compile(source: bytes, binary: Path) -> None:
    """gcc into `binary`, a path in a private folder that also holds the source."""
    src = binary.with_suffix(".c")
    src.write_bytes(source)
    # Always the default (trixie) toolchain: a static program runs under any kernel lane.
    result = ensure_toolchain().run(["gcc", "-static", "-Os", "-Wall", "-Werror", "-o",
                                     str(binary), str(src)], check=False)
    if result.returncode != 0:
        raise RustkmError(f"guest program {src.name} does not compile:\n{result.stdout}")
