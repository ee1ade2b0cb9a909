"""`rustkm check FILE.ko`: would this module load into that kernel, and if not, why, in the
loader's own terms (kernel/module/main.c: elf_validity_ehdr, check_modinfo, simplify_symbols)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from rustkm.elf import ET_REL, MACHINES, TYPES
from rustkm.kernel.build import KernelBuild
from rustkm.kernel.config import parse_config
from rustkm.modinfo import (
    GPL_COMPATIBLE,
    Export,
    ModuleInfo,
    build_vermagic,
    kernel_exports,
    kernel_release,
    read_module,
    vmlinux_symbols,
)
from rustkm.oops import demangle_symbols

# A crate root in a Rust v0 symbol: C s <base-62 crate hash> _ <length> <crate name>.
_CRATE_ROOT = re.compile(r"Cs([0-9A-Za-z]+)_(\d{1,6})")
# The Kconfig symbol each architecture's .config sets, with its ELF machine (e_machine).
ARCHITECTURES = (("X86_64", 62), ("X86_32", 3), ("ARM64", 183), ("ARM", 40), ("RISCV", 243),
                 ("PPC64", 21), ("PPC32", 20), ("S390", 22), ("LOONGARCH", 258), ("MIPS", 8))
_VERMAGIC_WORDS = {
    "SMP": "CONFIG_SMP, support for several CPUs: per-CPU data and locks are compiled "
           "differently",
    "preempt": "the preemption model: a preemptible kernel (CONFIG_PREEMPT_BUILD, from PREEMPT, "
               "PREEMPT_LAZY or PREEMPT_DYNAMIC) compiles locking and preempt_count differently",
    "preempt_rt": "the preemption model: on a real-time kernel (CONFIG_PREEMPT_RT) spinlocks "
                  "are sleeping locks",
    "mod_unload": "CONFIG_MODULE_UNLOAD: struct module has reference counts and an exit path "
                  "only with it",
    "modversions": "CONFIG_MODVERSIONS: every imported symbol carries a CRC of its type",
}


@dataclass(frozen=True)
class Architecture:
    """What a kernel's modules must be built for: the loader's elf_check_arch."""

    machine: int  # e_machine
    bits: int  # ELFCLASS32 or ELFCLASS64
    little_endian: bool

    @classmethod
    def of_config(cls, config: dict[str, str]) -> Architecture | None:
        """From the kernel's .config: a stock kernel's headers have one but no vmlinux to
        read an ELF header from."""
        for symbol, machine in ARCHITECTURES:
            if config.get(symbol) == "y":
                return cls(machine, 64 if config.get("64BIT") == "y" else 32,
                           config.get("CPU_BIG_ENDIAN") != "y")
        return None

    def describe(self, other: Architecture) -> str:
        """Its name, with the class and byte order where they differ from `other`'s."""
        words = [f"{self.bits}-bit, ELFCLASS{self.bits}"] if self.bits != other.bits else []
        if self.little_endian != other.little_endian:
            words.append("little-endian" if self.little_endian else "big-endian")
        name = MACHINES.get(self.machine, f"ELF machine {self.machine}")
        return f"{name} ({', '.join(words)})" if words else name


@dataclass(frozen=True)
class Target:
    """What the loader of a kernel build checks a module against."""

    build_dir: Path
    release: str
    vermagic: str
    exports: dict[str, Export]
    config: dict[str, str]

    @classmethod
    def of(cls, kernel: KernelBuild | Path) -> Target:
        build_dir = kernel.build_dir if isinstance(kernel, KernelBuild) else Path(kernel)
        config = build_dir / ".config"
        return cls(build_dir, kernel_release(build_dir), build_vermagic(build_dir),
                   kernel_exports(build_dir),
                   parse_config(config.read_text()) if config.is_file() else {})


@dataclass
class CheckReport:
    module: ModuleInfo
    target_release: str
    target_vermagic: str = ""
    problems: list[str] = field(default_factory=list)  # each one keeps insmod from working
    notes: list[str] = field(default_factory=list)


def check_architecture(info: ModuleInfo, target: Target, report: CheckReport) -> None:
    """What the loader checks before anything else (elf_validity_ehdr): a relocatable object
    for the kernel's ELF machine, class and byte order."""
    if info.elf_type != ET_REL:
        kind = TYPES.get(info.elf_type, f"of ELF type {info.elf_type}")
        report.problems.append(
            f"it is {kind}, not a relocatable object (ET_REL) as every module is; insmod "
            f"would say 'Invalid module format' and dmesg 'Invalid ELF header type: "
            f"{info.elf_type} != {ET_REL}'")
    kernel = Architecture.of_config(target.config)
    module = Architecture(info.machine, info.bits, info.little_endian)
    if kernel is None:
        report.notes.append(f"the kernel's .config names no architecture rustkm knows: the "
                            f"module's ({module.describe(module)}) was not compared")
    elif module != kernel:
        dmesg = (f" and dmesg 'Invalid architecture in ELF header: {info.machine}'"
                 if module.machine != kernel.machine else "")
        report.problems.append(
            f"built for {module.describe(kernel)}, the kernel is {kernel.describe(module)}; "
            f"insmod would say 'Invalid module format'{dmesg}; build the module for the "
            "kernel's architecture (rustkm build, with the same --kernel)")


def explain_vermagic(module: str, kernel: str, has_crcs: bool = False) -> list[str]:
    """Why the loader refuses a module's version magic, word by word ([] if it accepts it)."""
    if not module.strip():
        return [("no vermagic in .modinfo: the kernel refuses it (unless it was built with "
                 "CONFIG_MODULE_FORCE_LOAD and insmod -f is used)")]
    mod_words, ker_words = module.split(), kernel.split()
    # With symbol CRCs (modversions) the loader skips the release and trusts the CRCs.
    if mod_words[has_crcs:] == ker_words[has_crcs:]:
        return []
    reasons = []
    if not has_crcs and mod_words[:1] != ker_words[:1]:
        reasons.append(f"release: it was built for kernel release {mod_words[0]}, the target is "
                       f"{ker_words[0]}; a module loads only into the release it was built "
                       "against")
    for word in sorted(set(mod_words[1:]) ^ set(ker_words[1:])):
        side = "the module" if word in mod_words else "the kernel"
        meaning = _VERMAGIC_WORDS.get(word)
        if word.startswith("RANDSTRUCT_"):
            meaning = "CONFIG_RANDSTRUCT with another seed: structure layouts are shuffled " \
                      "differently"
        reasons.append(f"{word!r} only in {side}'s: {meaning or 'an option of the build'}")
    if not reasons:  # the same words in another order
        reasons.append("the same words in another order: it was not built by this kernel's "
                       "Kbuild")
    return [f"version magic {module.strip()!r} does not match the kernel's {kernel.strip()!r}; "
            f"insmod would say 'Invalid module format' and dmesg 'version magic ... should be "
            "...':\n" + "\n".join(f"  - {r}" for r in reasons)
            + "\n  rebuild the module against the target kernel (rustkm build, with the same "
              "--kernel)"]


def namespace_allows(namespace: str, module: str) -> bool:
    """A `module:NAME,PREFIX*` namespace names the modules it is exported to
    (verify_module_namespace; '-' and '_' are the same in module names)."""
    if not namespace.startswith("module:"):
        return False
    name = module.replace("-", "_")
    for pattern in namespace.removeprefix("module:").split(","):
        pattern = pattern.replace("-", "_")
        if name == pattern or (pattern.endswith("*") and name.startswith(pattern[:-1])):
            return True
    return False


def crate_hashes(symbol: str) -> dict[str, str]:
    """Crate name -> crate hash of each crate a Rust v0 symbol names."""
    found = {}
    for m in _CRATE_ROOT.finditer(symbol):
        name = symbol[m.end():m.end() + int(m.group(2))]
        if name.isidentifier():
            found[name] = m.group(1)
    return found


def demangle_all(symbols: list[str]) -> dict[str, str]:
    """Symbol -> demangled name (the symbol itself if it cannot be demangled)."""
    names = demangle_symbols("\n".join(symbols)).split("\n") if symbols else []
    return dict(zip(symbols, names)) if len(names) == len(symbols) else {s: s for s in symbols}


def _shown(symbol: str, demangled: dict[str, str]) -> str:
    name = demangled.get(symbol, symbol)
    return f"{symbol} ({name})" if name != symbol else symbol


def check_symbols(info: ModuleInfo, target: Target, report: CheckReport) -> None:
    """Each undefined symbol the loader would not resolve, with the reason."""
    gpl_ok = info.license in GPL_COMPATIBLE
    absent = [s for s in info.undefined if s not in target.exports]
    hidden = [s for s in info.undefined
              if s in target.exports and target.exports[s].gpl_only and not gpl_ok]
    rust_exports = [s for s in target.exports if s.startswith("_R")]
    rust_absent = [s for s in absent if s.startswith("_R")]
    rust_hidden = [s for s in hidden if s.startswith("_R")]
    demangled = demangle_all(rust_absent + rust_hidden + (rust_exports if rust_absent else []))
    by_name = {demangled[s]: s for s in rust_exports if demangled.get(s, s) != s}
    in_vmlinux = vmlinux_symbols(target.build_dir) if absent else frozenset()
    lines, hash_pairs = [], set()
    for symbol in absent:
        twin = by_name.get(demangled.get(symbol, ""))
        if twin is not None:
            ours, theirs = crate_hashes(symbol), crate_hashes(twin)
            hash_pairs |= {(c, h, theirs[c]) for c, h in ours.items() if theirs.get(c, h) != h}
            why = f"the kernel exports it under another crate hash, as {twin}"
        elif symbol in in_vmlinux:
            why = "in vmlinux, but not exported to modules (no EXPORT_SYMBOL)"
        else:
            why = "not in this kernel: the code that provides it may be off in its .config"
        lines.append(f"  {_shown(symbol, demangled)}: {why}")
    for symbol in hidden:
        lines.append(f"  {_shown(symbol, demangled)}: exported to GPL-compatible modules only "
                     "(EXPORT_SYMBOL_GPL)")
    if lines:
        report.problems.append(
            f"{len(lines)} undefined symbol(s) the kernel would not resolve; insmod would say "
            "'Unknown symbol in module' and dmesg 'Unknown symbol NAME (err -2)':\n"
            + "\n".join(lines))
    if hash_pairs:
        rustc = target.config.get("RUSTC_VERSION_TEXT", "").strip('"') or "its rustc"
        pairs = ", ".join(f"crate {c}: {h} in the module, {k} in the kernel"
                          for c, h, k in sorted(hash_pairs))
        report.notes.append(
            f"Rust symbols carry a hash of their crate and of the exact rustc that built it "
            f"({pairs}): the module was built by another rustc, or for another kernel build. "
            f"The kernel was built with {rustc}; build the module against it (rustkm build).")
    if hidden or (not gpl_ok and info.undefined):
        license = f"license {info.license!r} is" if info.license else "no MODULE_LICENSE is"
        text = (f"{license} not GPL-compatible: loading it taints the kernel (P), and the "
                "kernel hides its EXPORT_SYMBOL_GPL symbols from it")
        (report.problems if hidden else report.notes).append(
            text + (f" ({len(hidden)} of the symbols above); declare license \"GPL\" if the "
                    "code is GPL" if hidden else ""))
    _check_namespaces(info, target, report)
    for symbol in info.undefined:
        export = target.exports.get(symbol)
        if export is not None and export.owner != "vmlinux":
            report.notes.append(f"{symbol} comes from the module {export.owner}: load that "
                                "first (modprobe does it, from depends=)")
    missing_weak = [s for s in info.weak if s not in target.exports]
    if missing_weak:
        report.notes.append(f"weak symbols the kernel lacks (they stay NULL): "
                            f"{', '.join(missing_weak)}")


def _check_namespaces(info: ModuleInfo, target: Target, report: CheckReport) -> None:
    for symbol in info.undefined:
        export = target.exports.get(symbol)
        if (export is None or not export.namespace
                or export.namespace in info.imported_namespaces
                or namespace_allows(export.namespace, info.name)):
            continue
        if export.namespace.startswith("module:"):
            report.problems.append(f"{symbol} is exported only to the modules "
                                   f"{export.namespace.removeprefix('module:')}")
            continue
        text = (f"{symbol} is in the symbol namespace {export.namespace}, which the module does "
                f"not import (dmesg: 'module uses symbol ({symbol}) from namespace "
                f"{export.namespace}, but does not import it'); add imports_ns: "
                f"[\"{export.namespace}\"] to module! (C: MODULE_IMPORT_NS(\"{export.namespace}\"))")
        lenient = target.config.get("MODULE_ALLOW_MISSING_NAMESPACE_IMPORTS") == "y"
        (report.notes if lenient else report.problems).append(text)


def check(ko: Path, kernel: KernelBuild | Path | Target) -> CheckReport:
    """Everything the loader of `kernel` (a build, its folder, or what was read of it) would
    refuse `ko` for."""
    info = read_module(ko)
    target = kernel if isinstance(kernel, Target) else Target.of(kernel)
    report = CheckReport(info, target.release, target.vermagic)
    check_architecture(info, target, report)
    report.problems += explain_vermagic(info.vermagic, target.vermagic, info.modversions)
    check_symbols(info, target, report)
    return report


def print_report(report: CheckReport) -> None:
    info = report.module
    rows = [("module", info.name), ("file", str(info.path)),
            ("architecture", f"{info.architecture} ({info.bits}-bit)"),
            ("license", info.license or "(none)"), ("vermagic", info.vermagic.strip()),
            ("authors", ", ".join(info.authors) or "-"), ("description", info.description),
            ("depends", ", ".join(info.depends) or "-"),
            ("imports", ", ".join(info.imported_namespaces) or "-"),
            ("srcversion", info.get("srcversion") or "-"),
            ("undefined", f"{len(info.undefined)} symbols")]
    rows += [("parameter", f"{name} ({p.type}): {p.description}")
             for name, p in info.parameters.items()]
    for key, value in rows:
        print(f"{key:12} {value}")
    verdict = "would load" if not report.problems else "would NOT load"
    print(f"\n{verdict} into kernel {report.target_release} "
          f"(vermagic {report.target_vermagic.strip()!r})")
    for problem in report.problems:
        print(f"problem: {problem}")
    for note in report.notes:
        print(f"note: {note}")
