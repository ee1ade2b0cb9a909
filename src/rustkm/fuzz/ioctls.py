"""A module's real ioctl command numbers, for the fuzzer to try beside random ones.

Two sources, both optional:
- its rustkm-module.toml, `[fuzz] ioctls = [0x40046601, "_IOWR('E', 2, 4)"]` (numbers, or
  the kernel's macros with a size in bytes);
- its source: every `_IO`, `_IOR`, `_IOW`, `_IOWR` of its .rs, .c and .h files, in Rust's
  spelling (`_IOR::<u32>(b'E' as u32, 1)`) or C's (`_IOR('E', 1, uint32_t)`). The type and
  number may be literals or constants of the same folder (`const IOC_MAGIC: u32 = 0x66;`,
  `#define IOC_MAGIC 'k'`). A size the scan cannot know (a struct) is tried at the sizes
  structs usually have, so the exact command is among them.

The numbers are the Linux asm-generic encoding (x86, arm64): nr 8 bits, type 8, size 14, dir 2.
"""

from __future__ import annotations

import re
from pathlib import Path

from rustkm.errors import RustkmError

MAX_COMMANDS = 512  # what the guest fuzzer takes
_NONE, _WRITE, _READ = 0, 1, 2
_DIRS = {"_IO": _NONE, "_IOW": _WRITE, "_IOR": _READ, "_IOWR": _READ | _WRITE}
# Sizes tried for a type the scan cannot measure.
GUESSED_SIZES = (1, 2, 4, 8, 12, 16, 24, 32, 40, 48, 64, 128, 256)
_SIZES = {
    "u8": 1, "i8": 1, "u16": 2, "i16": 2, "u32": 4, "i32": 4, "u64": 8, "i64": 8,
    "usize": 8, "isize": 8, "bool": 1, "c_int": 4, "c_uint": 4, "c_long": 8, "c_ulong": 8,
    "char": 1, "short": 2, "int": 4, "long": 8, "unsigned": 4, "__u8": 1, "__s8": 1,
    "__u16": 2, "__s16": 2, "__u32": 4, "__s32": 4, "__u64": 8, "__s64": 8, "uint8_t": 1,
    "int8_t": 1, "uint16_t": 2, "int16_t": 2, "uint32_t": 4, "int32_t": 4, "uint64_t": 8,
    "int64_t": 8, "size_t": 8, "unsigned int": 4, "unsigned long": 8, "unsigned char": 1,
    "long long": 8, "unsigned long long": 8,
}
_CALL = re.compile(r"\b(_IOWR|_IOR|_IOW|_IO)\b\s*(?:::\s*<\s*([^>]+?)\s*>\s*)?\(([^()]*)\)")
_RUST_CONST = re.compile(r"\bconst\s+([A-Z_][A-Z0-9_]*)\s*:\s*[\w:]+\s*=\s*([^;]+);")
_C_DEFINE = re.compile(r"^\s*#\s*define\s+([A-Za-z_]\w*)\s+(.+?)\s*$", re.MULTILINE)


def encode(direction: int, kind: int, nr: int, size: int) -> int:
    return (direction << 30) | (size << 16) | (kind << 8) | nr


def module_ioctls(folder: Path, declared: tuple[int | str, ...] = ()) -> list[int]:
    """The commands declared for the module and found in its source, sorted, at most
    MAX_COMMANDS."""
    found = {_declared(item) for item in declared}
    texts = [p.read_text(errors="replace") for p in sorted(folder.iterdir())
             if p.suffix in (".rs", ".c", ".h") and p.is_file()]
    local = [{**{m.group(1): m.group(2) for m in _RUST_CONST.finditer(text)},
              **{m.group(1): m.group(2) for m in _C_DEFINE.finditer(text)}} for text in texts]
    folder_wide = {name: value for names in local for name, value in names.items()}
    for text, names in zip(texts, local, strict=True):
        consts = {**folder_wide, **names}  # a file's own constants first
        for m in _CALL.finditer(_without_comments(text)):
            found.update(_commands(m.group(1), m.group(2), m.group(3), consts))
    return sorted(found)[:MAX_COMMANDS]


def _commands(macro: str, turbofish: str | None, args: str,
              consts: dict[str, str]) -> set[int]:
    parts = [a.strip() for a in args.split(",")]
    if len(parts) < 2 or (macro != "_IO" and turbofish is None and len(parts) < 3):
        return set()  # a definition of the macro itself, or a call the scan cannot read
    kind, nr = _number(parts[0], consts), _number(parts[1], consts)
    if kind is None or nr is None or not (0 <= kind < 256 and 0 <= nr < 256):
        return set()
    if macro == "_IO":
        sizes: tuple[int, ...] = (0,)
    else:
        type_name = turbofish if turbofish is not None else parts[2]
        sizes = _size(type_name, consts)
    return {encode(_DIRS[macro], kind, nr, size) for size in sizes}


def _size(type_name: str, consts: dict[str, str]) -> tuple[int, ...]:
    name = re.sub(r"\s+", " ", type_name.replace("core::ffi::", "").replace("kernel::ffi::", ""))
    name = name.removeprefix("sizeof(").removesuffix(")").strip()
    if name.startswith(("*mut ", "*const ", "&")) or name.endswith("*"):
        return (8,)  # a pointer (64-bit targets)
    if name in _SIZES:
        return (_SIZES[name],)
    if (number := _number(name, consts)) is not None and 0 < number < (1 << 14):
        return (number,)  # a C size given as a number
    return GUESSED_SIZES


def _number(text: str, consts: dict[str, str], depth: int = 0) -> int | None:
    """An integer from a literal ('E', b'E', b'E' as u32, 0x66, 7u32) or a constant."""
    text = re.sub(r"\s+as\s+\w+$", "", text.strip()).strip("() ")
    if m := re.fullmatch(r"b?'(\\x[0-9a-fA-F]{2}|\\.|[^'\\])'", text):
        char = m.group(1)
        if char.startswith("\\x"):
            return bytes.fromhex(char[2:])[0]
        return ord(_ESCAPES.get(char, char[-1]))
    if m := re.fullmatch(r"(0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|\d[\d_]*)"
                         r"(?:[uiUL]\w*)?", text):
        return int(m.group(1).replace("_", ""), 0)
    if depth < 4 and text in consts:
        return _number(consts[text], consts, depth + 1)
    return None


def _without_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.DOTALL)
    return re.sub(r"//[^\n]*", " ", text)


_ESCAPES = {"\\n": "\n", "\\t": "\t", "\\r": "\r", "\\0": "\0"}
_MACRO = re.compile(r"^\s*(_IOWR|_IOR|_IOW|_IO)\s*\(([^()]*)\)\s*$")


def _declared(item: int | str) -> int:
    """A command from rustkm-module.toml: a number, or _IOx('T', NR[, SIZE]) with SIZE in
    bytes."""
    if isinstance(item, int) and 0 <= item < (1 << 32):
        return item
    if isinstance(item, str) and (m := _MACRO.match(item)):
        parts = [p.strip() for p in m.group(2).split(",")]
        numbers = [_number(p, {}) for p in parts]
        want = 2 if m.group(1) == "_IO" else 3
        if len(parts) == want and all(n is not None for n in numbers):
            kind, nr, *size = [n for n in numbers if n is not None]
            if kind < 256 and nr < 256 and (not size or size[0] < (1 << 14)):
                return encode(_DIRS[m.group(1)], kind, nr, size[0] if size else 0)
    raise RustkmError(f"[fuzz] ioctls: {item!r} is not an ioctl command",
                      hint="give a number (0x40046601) or _IOR('E', 1, 4) with the size in "
                           "bytes; _IO('E', 3) has none")
