"""`rustkm check FILE.ko`: would this module load into that kernel, and if not, why."""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field
from pathlib import Path

from rustkm.kernel.build import KernelBuild
from rustkm.log import say
from rustkm.modinfo import Export, ModuleInfo, kernel_vermagic, read_module, read_symvers
from rustkm.oops import demangle_symbols

# The crate disambiguator in a Rust v0 symbol: C s <base-62 hash> _ <length><name>.
_CRATE_HASH = re.compile(r"Cs[0-9A-Za-z]*_(?=\d)")
_GPL_LICENSES = {"GPL", "GPL v2", "GPL and additional rights", "Dual BSD/GPL", "Dual MIT/GPL",
                 "Dual MPL/GPL"}
_VERMAGIC_WORDS = {
    "SMP": "SMP support",
    "preempt": "the preemption model (CONFIG_PREEMPT)",
    "preempt_rt": "PREEMPT_RT",
    "mod_unload": "module unloading (CONFIG_MODULE_UNLOAD)",
    "modversions": "symbol versions (CONFIG_MODVERSIONS)",
}


@dataclass
class CheckReport:
    module: ModuleInfo
    target_release: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def explain_vermagic(module: str, kernel: str) -> list[str]:
    """Why two version magic strings differ, word by word."""
    if module == kernel:
        return []
    mod_words, ker_words = module.split(), kernel.split()
    reasons = []
    if mod_words[:1] != ker_words[:1]:
        reasons.append(f"it was built for kernel release {mod_words[0] if mod_words else '?'}, "
                       f"the target is {ker_words[0]}")
    for word in sorted(set(mod_words[1:]) ^ set(ker_words[1:])):
        side = "the module has" if word in mod_words else "the kernel has"
        reasons.append(f"{side} {word!r}: {_VERMAGIC_WORDS.get(word, 'a build option')} "
                       "differs between them")
    return [f"vermagic {module!r} does not match the kernel's {kernel!r} (insmod would say "
            f"'Invalid module format'): " + "; ".join(reasons)]


def unknown_symbols(info: ModuleInfo, exports: dict[str, Export]) -> tuple[list[str], list[str]]:
    """(problems, notes) about undefined symbols the kernel does not export."""
    missing = [s for s in info.undefined if s not in exports]
    if not missing:
        return [], []
    by_shape: dict[str, str] = {}
    for symbol in exports:
        if symbol.startswith("_R"):
            by_shape.setdefault(_CRATE_HASH.sub("Cs_", symbol), symbol)
    hash_only = [s for s in missing if s.startswith("_R") and _CRATE_HASH.sub("Cs_", s) in by_shape]
    lines = [f"  {s}  ({demangle_symbols(s)})" if s.startswith(("_R", "_ZN")) else f"  {s}"
             for s in missing]
    problems = [f"{len(missing)} undefined symbol(s) the kernel does not export (insmod would "
                "say 'Unknown symbol'):\n" + "\n".join(lines)]
    notes = []
    if hash_only:
        example = hash_only[0]
        notes.append(
            f"{len(hash_only)} of them are Rust symbols whose only difference from a kernel "
            f"export is the crate hash (e.g. {example} vs {by_shape[_CRATE_HASH.sub('Cs_', example)]}"
            "): the module was built by another rustc, or against another build of this "
            "kernel, than the kernel itself. Build it with the kernel's exact rustc "
            "(CONFIG_RUSTC_VERSION_TEXT).")
    return problems, notes


def check(ko: Path, kernel: KernelBuild) -> CheckReport:
    info = read_module(ko)
    report = CheckReport(info, kernel.release)
    want = kernel_vermagic(kernel.config.read_text(), kernel.release)
    report.problems += explain_vermagic(info.get("vermagic"), want)
    exports = read_symvers(kernel.symvers)
    problems, notes = unknown_symbols(info, exports)
    report.problems += problems
    report.notes += notes
    license = info.get("license")
    if not license:
        report.problems.append("no MODULE_LICENSE: the kernel refuses to load it")
    elif license not in _GPL_LICENSES:
        gpl_only = [s for s in info.undefined if s in exports
                    and exports[s].kind.endswith("_GPL")]
        if gpl_only:
            report.problems.append(f"license {license!r} is not GPL-compatible, but it uses "
                                   f"GPL-only symbols: {', '.join(gpl_only[:10])}")
    return report


def print_report(report: CheckReport) -> None:
    info = report.module
    rows = [("module", info.name), ("file", str(info.path)), ("license", info.get("license")),
            ("vermagic", info.get("vermagic").strip()),
            ("authors", ", ".join(info.fields.get("author", ()))),
            ("description", info.get("description")),
            ("depends", ", ".join(info.depends) or "-"),
            ("undefined", f"{len(info.undefined)} symbols")]
    for key, value in rows:
        print(f"{key:12} {value}")
    for name, (kind, text) in info.parameters.items():
        print(f"{'parameter':12} {name} ({kind}): {text}")
    verdict = "would load" if not report.problems else "would NOT load"
    print(f"\n{verdict} into kernel {report.target_release}")
    for problem in report.problems:
        print(f"problem: {problem}")
    for note in report.notes:
        print(f"note: {note}")


def register(verbs: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = verbs.add_parser("check", help="read a .ko: modinfo, vermagic and unknown symbols "
                                       "against a kernel")
    p.add_argument("ko", type=Path)
    p.add_argument("--kernel", dest="stock", metavar="debian:RELEASE",
                   help="check against a stock kernel (default: the project's kernel)")
    p.add_argument("--debug", action="store_true", default=None,
                   help="check against the debug-lane kernel")
    p.set_defaults(func=_cmd)


def _cmd(args: argparse.Namespace) -> int:
    from rustkm.machine import set_demangler
    from rustkm.project import find_project
    from rustkm.session import KernelRequest, prepare_kernel

    read_module(args.ko)  # a clear error for a bad file before any kernel work
    project = find_project()
    tc, kernel = prepare_kernel(
        KernelRequest.from_project(project, stock=args.stock, debug=args.debug), project)
    set_demangler(tc.wrap(["llvm-cxxfilt"]) if tc.root else ["llvm-cxxfilt"])
    report = check(args.ko, kernel)
    print_report(report)
    if not report.problems:
        say("ok")
    return 1 if report.problems else 0
