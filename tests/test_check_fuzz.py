"""`rustkm check` on damaged modules: a seeded mutation fuzz of real .ko files (printerfact
and trouble as built for the project's kernel, and hand-made 32-bit and big-endian modules):
bit flips, cuts, bytes overwritten in the ELF header, the section headers, the symbol table
and .modinfo, size and offset fields set to huge values. Every input must end in a report or a
RustkmError, never another exception. RUSTKM_FUZZ_SEED and RUSTKM_FUZZ_COUNT explore further."""

import contextlib
import io
import os
import random
import time
from collections import Counter
from pathlib import Path
from typing import Literal

import pytest
from handmade_ko import EM_386, EM_AARCH64, module_bytes

from rustkm import oops
from rustkm.elf import ElfFile
from rustkm.errors import RustkmError
from rustkm.modcheck import Target, check, print_report
from rustkm.module import build_module

ROOT = Path(__file__).parents[1]
SEED = int(os.environ.get("RUSTKM_FUZZ_SEED", "20261201"))
COUNT = int(os.environ.get("RUSTKM_FUZZ_COUNT", "3000"))
# Where the fields are, per ELF class: (offset, size) in the ELF header, a section header,
# a symbol.
FIELDS = {
    64: {"header": {"class": (4, 1), "data": (5, 1), "type": (16, 2), "machine": (18, 2),
                    "shoff": (40, 8), "shentsize": (58, 2), "shnum": (60, 2),
                    "shstrndx": (62, 2)},
         "section": {"name": (0, 4), "type": (4, 4), "flags": (8, 8), "offset": (24, 8),
                     "size": (32, 8), "link": (40, 4), "entsize": (56, 8)},
         "symbol": {"name": (0, 4), "info": (4, 1), "shndx": (6, 2)}},
    32: {"header": {"class": (4, 1), "data": (5, 1), "type": (16, 2), "machine": (18, 2),
                    "shoff": (32, 4), "shentsize": (46, 2), "shnum": (48, 2),
                    "shstrndx": (50, 2)},
         "section": {"name": (0, 4), "type": (4, 4), "flags": (8, 4), "offset": (16, 4),
                     "size": (20, 4), "link": (24, 4), "entsize": (36, 4)},
         "symbol": {"name": (0, 4), "info": (12, 1), "shndx": (14, 2)}},
}


class Sample:
    """A valid module and where its structures are, to aim mutations at them."""

    def __init__(self, name: str, data: bytes, path: Path) -> None:
        path.write_bytes(data)
        elf = ElfFile.read(path)
        self.name, self.data, self.bits = name, data, elf.bits
        self.order: Literal["little", "big"] = "little" if elf.little_endian else "big"
        shoff = int.from_bytes(data[FIELDS[elf.bits]["header"]["shoff"][0]:][
            :FIELDS[elf.bits]["header"]["shoff"][1]], self.order)
        self.header_size, self.section_size = elf.layout.header_size, elf.layout.section_size
        self.section_headers = [shoff + i * self.section_size for i in range(len(elf.sections))]
        symtab = elf.section(".symtab")
        assert symtab is not None
        self.symbols = list(range(symtab.offset, symtab.offset + symtab.size, symtab.entsize))
        modinfo = elf.section(".modinfo")
        assert modinfo is not None
        self.modinfo = (modinfo.offset, modinfo.size)


def interesting(rng: random.Random, size: int, length: int) -> int:
    values = [0, 1, 2, 3, 0x7F, 0x80, 0xFF, 0xFFFF, 0xFFFFFFFF, 2**63, 2**64 - 1,
              length - 1, length, length + 1, length // 2, rng.getrandbits(8 * size)]
    return rng.choice(values) % (1 << (8 * size))


def mutate(sample: Sample, rng: random.Random) -> tuple[str, bytes]:
    """One mutation of the sample: what was done, and the bytes."""
    data = bytearray(sample.data)
    kind = rng.choice(["flip", "flip-headers", "cut", "header", "section", "section", "symbol",
                       "modinfo", "splice"])
    if kind.startswith("flip"):
        places = [range(len(data))]
        if kind == "flip-headers":
            places = [range(sample.header_size),
                      *(range(h, h + sample.section_size) for h in sample.section_headers)]
        for _ in range(rng.randint(1, 8)):
            at = rng.choice(rng.choice(places))
            data[at] ^= 1 << rng.randrange(8)
        return kind, bytes(data[:len(sample.data)])
    if kind == "cut":
        at = rng.randrange(len(data))
        return f"cut at {at}", bytes(data[:at])
    if kind == "splice":  # a block of the file copied over another place
        start, at, size = rng.randrange(len(data)), rng.randrange(len(data)), rng.randint(1, 256)
        block = data[start:start + size]
        data[at:at + len(block)] = block
        return f"splice {start}->{at}", bytes(data[:len(sample.data)])
    if kind == "modinfo":
        offset, size = sample.modinfo
        for _ in range(rng.randint(1, 4)):
            data[offset + rng.randrange(max(size, 1))] = rng.choice([0, 0x3D, 0x20, 0xFF,
                                                                     rng.randrange(256)])
        return kind, bytes(data)
    table = FIELDS[sample.bits][kind]
    field = rng.choice(sorted(table))
    offset, size = table[field]
    base = {"header": lambda: 0, "section": lambda: rng.choice(sample.section_headers),
            "symbol": lambda: rng.choice(sample.symbols)}[kind]()
    value = interesting(rng, size, len(data))
    data[base + offset:base + offset + size] = value.to_bytes(size, sample.order)
    return f"{kind} {field}@{base + offset}={value:#x}", bytes(data)


@pytest.fixture(scope="module")
def samples(rustkm_kernel, tmp_path_factory):
    tc, kernel = rustkm_kernel
    folder = tmp_path_factory.mktemp("samples")
    found = [Sample(name, build_module(tc, kernel, ROOT / path).ko(name).read_bytes(),
                    folder / f"{name}.ko")
             for name, path in (("printerfact", "kmods/printerfact"),
                                ("trouble", "tests/kmods/trouble"))]
    found += [Sample(name, module_bytes(**kwargs), folder / f"{name}.ko") for name, kwargs in (
        ("handmade-i386", {"bits": 32, "machine": EM_386}),
        ("handmade-aarch64-be", {"machine": EM_AARCH64, "little_endian": False}))]
    return Target.of(kernel), found


def test_every_damaged_module_ends_in_a_report_or_a_clear_error(samples, tmp_path,
                                                                monkeypatch, capsys):
    target, found = samples
    monkeypatch.setattr(oops, "_demangler", [])  # no llvm-cxxfilt per input: keep it fast
    rng = random.Random(SEED)
    path = tmp_path / "mutated.ko"
    outcomes: Counter[str] = Counter()
    failures = []
    start = time.monotonic()
    for number in range(COUNT):
        sample = found[number % len(found)]
        what, data = mutate(sample, rng)
        path.write_bytes(data)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                print_report(check(path, target))
            outcomes["report"] += 1
        except RustkmError as e:
            outcomes[e.message.removeprefix(f"{path} ").split(":")[0][:40]] += 1
        except Exception as e:  # noqa: BLE001 (any other exception is the finding)
            kept = tmp_path / f"failure-{number}.ko"
            kept.write_bytes(data)
            failures.append(f"{sample.name}, {what}: {type(e).__name__}: {e} (input: {kept})")
    elapsed = time.monotonic() - start
    with capsys.disabled():
        print(f"\ncheck fuzz: seed {SEED}, {COUNT} mutations of {len(found)} modules in "
              f"{elapsed:.1f} s: {outcomes['report']} reports, "
              f"{COUNT - outcomes['report'] - len(failures)} clear errors, "
              f"{len(failures)} other exceptions")
    assert not failures, f"seed {SEED}:\n" + "\n".join(failures[:20])
    assert outcomes["report"] > COUNT // 20  # the mutations do not all break the header
    assert len(outcomes) > 8  # and those that do, in many different ways
