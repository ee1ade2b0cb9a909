"""Why a .config lacks an option someone asked for, in the words of the tree's own Kconfig:
the unmet terms of its `depends on` (and of enclosing `if`/`menu`/`choice` blocks), the
`select` that forced it on, or the missing prompt that leaves it to defaults."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from rustkm.kernel.kconfig import Definition, Kconfig, Symbol, dependency, read_kconfig
from rustkm.kernel.kexpr import (
    TRISTATE,
    Cmp,
    Evaluator,
    Expr,
    M,
    Macro,
    Sym,
    Y,
    conjunction,
    symbols_in,
)

_NAMES = {0: "n", 1: "m", 2: "y"}


def explain_missing(tree: Path, final: dict[str, str], lost: dict[str, tuple[str, str]]) -> str:
    """One paragraph per lost option (symbol -> (wanted, got)), from `tree`'s Kconfig."""
    kconfig = read_kconfig(tree)
    return "\n".join(explain(kconfig, final, {name: wanted for name, (wanted, _) in lost.items()}))


def explain(kconfig: Kconfig, config: Mapping[str, str], wanted: Mapping[str, str]) -> list[str]:
    """For each symbol whose value in `config` is not the wanted one, why; then notes on the
    toolchain probes (RUST_IS_AVAILABLE, RUSTC_VERSION, ...) those reasons rest on."""
    why = _Explainer(kconfig, config)
    lines = [why.symbol(name, value) for name, value in wanted.items()
             if config.get(name, "n") != value]
    lines += why.probe_notes()
    return lines


def value_of(config: Mapping[str, str], kconfig: Kconfig, name: str) -> str:
    """A symbol's value as a person reads it: y/m/n, a number, a string, or 'unset'."""
    if name in config:
        return config[name]
    sym = kconfig.symbols.get(name)
    return "n" if sym is None or sym.is_bool or not sym.type else "unset"


class _Explainer:
    def __init__(self, kconfig: Kconfig, config: Mapping[str, str]) -> None:
        self.kconfig = kconfig
        self.config = config
        self.eval: Evaluator = kconfig.evaluator(config)
        self.blamed: list[str] = []  # symbols named as unmet terms, for the probe notes

    def show(self, name: str) -> str:
        return value_of(self.config, self.kconfig, name)

    def symbol(self, name: str, wanted: str) -> str:
        got = self.show(name)
        head = f"{name} is {got} (wanted {wanted})"
        sym = self.kconfig.symbols.get(name)
        if sym is None or not sym.definitions:
            return f"{head}: {self.kconfig.tree.name}'s Kconfig has no symbol {name} " \
                   "(misspelt, or not in this kernel version)"
        if not sym.is_bool:
            return f"{head}: {self.raise_reason(sym, M)}"
        if wanted == "m" and sym.type == "bool":
            return f"{head}: {name} is bool, so it is y or n, never m"
        if TRISTATE.get(wanted, 0) > TRISTATE.get(got, 0):
            return f"{head}: {self.raise_reason(sym, self.need(sym, wanted))}"
        return f"{head}: {self.lower_reason(sym, TRISTATE.get(wanted, 0))}"

    def need(self, sym: Symbol, wanted: str) -> int:
        """The dependency value that lets `sym` reach `wanted` (a bool takes y from m)."""
        modules = self.config.get("MODULES", "n") == "y"
        return Y if wanted == "y" and sym.type == "tristate" and modules else M

    def raise_reason(self, sym: Symbol, need: int) -> str:
        blocked = [d for d in sym.definitions if self.eval.value(dependency(d)) < need]
        if len(blocked) == len(sym.definitions):
            return "; or ".join(self.unmet(d, need) for d in blocked)
        open_defs = [d for d in sym.definitions if d not in blocked]
        if not any(d.prompt is not None and self.visible(d) for d in open_defs):
            return self.hidden(sym, open_defs)
        for d in open_defs:
            if d.choice is not None:
                chosen = [m for m in d.choice.members if m != sym.name and self.eval.value(Sym(m))]
                if chosen:
                    picked = ", ".join(f"{m}={self.show(m)}" for m in chosen)
                    return f'it is one of the choice "{d.choice.prompt}" ({d.choice.location}), ' \
                           f"which took {picked}"
        deps = " && ".join(str(dependency(d)) for d in open_defs)
        if not sym.is_bool:
            return f"its dependencies hold ({deps}), so Kconfig refused the value itself: is it " \
                   f"outside the symbol's `range`? [{open_defs[0].location}]"
        return f"nothing in Kconfig keeps it off: its dependencies hold ({deps}), so this " \
               f".config just does not set it [{open_defs[0].location}]"

    def visible(self, d: Definition) -> bool:
        return all(self.eval.value(c.expr) > 0 for c in d.prompt_if)

    def unmet(self, d: Definition, need: int) -> str:
        own = [c.expr for c in d.depends if c.origin is None]
        text = str(conjunction(own)) if own else ""
        inherited = [f"{c.text} (from {c.origin})" for c in d.depends
                     if c.origin is not None and self.eval.value(c.expr) < need]
        shown = " && ".join(filter(None, [text, *inherited]))
        leaves = self.leaves(self.eval.too_low(dependency(d), need))
        return f"depends on {shown}, but {leaves or 'a toolchain test in it failed'} " \
               f"[{d.location}]"

    def leaves(self, leaves: Sequence[Expr]) -> str:
        out: list[str] = []
        for leaf in leaves:
            for text in self.leaf(leaf):
                if text not in out:
                    out.append(text)
        return ", ".join(out)

    def leaf(self, leaf: Expr) -> list[str]:
        names = symbols_in(leaf)
        self.blamed += [n for n in names if n not in self.blamed]
        if isinstance(leaf, Cmp):
            values = ", ".join(f"{n}={self.show(n)}" for n in names)
            return [f"{values} (so `{leaf}` is {_NAMES[self.eval.value(leaf)]})"]
        if isinstance(leaf, Macro):
            return [f"the toolchain test {leaf}"]
        return [f"{n}={self.show(n)}" for n in names] or [f"the constant {leaf}"]

    def hidden(self, sym: Symbol, defs: list[Definition]) -> str:
        selects = [f"{r.by}{f' if {r.cond_text}' if r.cond_text else ''}"
                   f" ({self.leaves([Sym(r.by), *([r.cond] if r.cond else [])])})"
                   for r in sym.selected_by]
        defaults = [f"{df.value_text}{f' if {df.cond_text}' if df.cond_text else ''}"
                    for d in defs for df in d.defaults]
        text = "it has no prompt, so only a `select` or its default sets it"
        if selects:
            text += "; selected by " + ", ".join(selects)
        if defaults:
            text += "; default " + ", ".join(defaults)
        return f"{text} [{defs[0].location}]"

    def lower_reason(self, sym: Symbol, wanted: int) -> str:
        forcing = [r for r in sym.selected_by
                   if min(self.eval.value(Sym(r.by)),
                          self.eval.value(r.cond) if r.cond else Y) > wanted]
        if forcing:
            return "forced by " + "; ".join(
                f"`select {sym.name}{f' if {r.cond_text}' if r.cond_text else ''}` in {r.by} "
                f"({self.leaves([Sym(r.by), *([r.cond] if r.cond else [])])}) [{r.location}]"
                for r in forcing)
        defs = sym.definitions
        if not any(d.prompt is not None and self.visible(d) for d in defs):
            return self.hidden(sym, defs)
        return "nothing selects it, and it has a prompt: it is on because this .config " \
               f"(or its default) says so [{defs[0].location}]"

    def probe_notes(self) -> list[str]:
        """Symbols set by Kconfig's toolchain tests: their values describe the toolchain that
        made this .config, not necessarily the one that will build it."""
        notes = []
        for name in self.blamed:
            sym = self.kconfig.symbols.get(name)
            if sym is None or any(d.prompt is not None for d in sym.definitions):
                continue
            probes = [df.value_text for d in sym.definitions for df in d.defaults
                      if "$(" in df.value_text]
            if probes:
                why = "; `make LLVM=1 rustavailable` in the tree says why" \
                    if "rust_is_available" in probes[0] and self.show(name) == "n" else ""
                notes.append(f"note: {name}={self.show(name)} was measured by Kconfig "
                             f"({probes[0]}) with the toolchain that made this .config{why}")
        return notes
