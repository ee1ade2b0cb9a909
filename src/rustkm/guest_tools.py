"""Static helper programs that every guest gets (e.g. /bin/rawio), built once with a C compiler
for the guest's architecture and cached by the hash of their source and compiler."""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

from rustkm.arch import Arch, get_arch
from rustkm.cache import publish_once
from rustkm.errors import RustkmError
from rustkm.toolchain import Toolchain, ensure_toolchain, store_dir

HELPERS = {"/bin/rawio": "rawio.c", "/rustkm/agent": "agent.c"}


def guest_tools(tc: Toolchain | None = None, arch: str = "") -> list[tuple[str, Path]]:
    """(guest path, host path) of each helper, compiling what is not cached yet. `tc` is the
    lane's toolchain: it has the cross compiler of a lane of another architecture."""
    return [(guest_path, cached_tool(source_name,
                                     (resources.files("rustkm") / "guest" / source_name)
                                     .read_bytes(), tc, arch))
            for guest_path, source_name in HELPERS.items()]


def user_program(source: Path, tc: Toolchain | None = None,
                 arch: str = "") -> tuple[str, Path]:
    """A test's own C program (a marker's `programs=`), built static for the guest's /bin."""
    if source.suffix != ".c":
        raise RustkmError(f"{source}: a guest program must be one C source file (.c)")
    try:
        text = source.read_bytes()
    except OSError as e:
        raise RustkmError(f"guest program {source}: {e.strerror}") from None
    return f"/bin/{source.stem}", cached_tool(source.name, text, tc, arch)


def cached_tool(source_name: str, source: bytes, tc: Toolchain | None = None,
                arch: str = "") -> Path:
    """A static guest program built from `source` for `arch` (the host's when ""), cached by
    its hash."""
    target = get_arch(arch) if arch else None
    if target is None or target.is_host:
        # Always the default (trixie) toolchain: a static program runs under any kernel lane.
        compiler, tc, tag = "gcc", ensure_toolchain(), ""
    else:
        if tc is None or tc.root is None:
            raise RustkmError(f"building {source_name} for {target.name} needs the lane's "
                              "toolchain (its cross compiler)")
        compiler, tag = cross_compiler(tc, target), f"{target.name}-"
    digest = hashlib.sha256(source).hexdigest()[:16]
    binary = store_dir() / "guest-tools" / f"{tag}{Path(source_name).stem}-{digest}"
    return publish_once(binary, f"building {source_name}",
                        lambda private: _compile(source, private, tc, compiler))


def cross_compiler(tc: Toolchain, arch: Arch) -> str:
    """The newest cross gcc for `arch` in the toolchain (aarch64-linux-gnu-gcc-15)."""
    assert tc.root is not None
    found = sorted((p.name for p in (tc.root / "usr/bin").glob(f"{arch.triplet}-gcc-[0-9]*")
                    if p.name.removeprefix(f"{arch.triplet}-gcc-").isdigit()),
                   key=lambda name: int(name.rsplit("-", 1)[1]))
    if not found:
        raise RustkmError(f"the toolchain {tc.name} has no C compiler for {arch.name}",
                          hint=f"it needs Debian's gcc-N-{arch.triplet} and "
                               f"libc6-dev-{arch.debian}-cross")
    return found[-1]


def _compile(source: bytes, binary: Path, tc: Toolchain, compiler: str) -> None:
    """`compiler` into `binary`, a path in a private folder that also holds the source."""
    src = binary.with_suffix(".c")
    src.write_bytes(source)
    result = tc.run([compiler, "-static", "-Os", "-Wall", "-Werror", "-o", str(binary),
                     str(src)], check=False)
    if result.returncode != 0:
        raise RustkmError(f"guest program {src.name} does not compile:\n{result.stdout}")
