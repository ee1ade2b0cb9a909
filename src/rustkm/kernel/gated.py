"""A module that uses a kernel Rust item this kernel's config leaves out: rustc says "found an
item that was configured out" and quotes the `#[cfg(CONFIG_X)]` gate; this names the option,
its value in the kernel's .config, why Kconfig leaves it off (rustkm.kernel.explain), and the
fragment line that turns it on."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from rustkm.kernel.config import parse_config

_CONFIGURED_OUT = "found an item that was configured out"
# A source line in rustc's snippets: "73 | pub mod firmware;".
_SNIPPET = re.compile(r"^\s*\d+\s*\|\s?(.*)$")
_ITEM = re.compile(r"\b(?:mod|fn|struct|enum|trait|type|const|static|macro_rules!|use)\s+"
                   r"(\w+)")
_GATE = re.compile(r"#\[cfg\((.*)\)\]")
_OPTION = re.compile(r'\bCONFIG_(\w+)(?:\s*=\s*"(\w+)")?')


@dataclass(frozen=True)
class Gate:
    """A configured-out item (`firmware`), the option gating it and the value it needs."""

    item: str
    option: str  # without CONFIG_
    wanted: str  # "y" for `CONFIG_X = "y"`, "m" for `= "m"`, "y or m" for a bare `CONFIG_X`
    gate: str  # the cfg as written, e.g. `CONFIG_DRM = "y"`


def configured_out(output: str) -> list[Gate]:
    """The gates rustc names in `output`, each once, in the order they came."""
    lines = output.splitlines()
    found: list[Gate] = []
    for i, line in enumerate(lines):
        if _CONFIGURED_OUT not in line:
            continue
        item, gate = "", ""
        for later in lines[i + 1:i + 16]:
            snippet = _SNIPPET.match(later)
            if snippet is None:
                continue
            code = snippet.group(1)
            if not gate and (cfg := _GATE.search(code)):
                gate = cfg.group(1).strip()
                break
            if not item and (named := _ITEM.search(code)):
                item = named.group(1)
        for option, value in _OPTION.findall(gate):
            wanted = value or "y or m"
            entry = Gate(item or "?", option, wanted, gate)
            if all((g.item, g.option) != (entry.item, entry.option) for g in found):
                found.append(entry)
    return found


def explain_gates(gates: list[Gate], config_file: Path, tree: Path | None,
                  stock: bool = False) -> str:
    """What each gate needs, why this kernel's config leaves it off and how to turn it on."""
    try:
        config = parse_config(config_file.read_text(errors="replace"))
    except OSError:
        config = {}
    reasons = _reasons(gates, config, tree)
    paragraphs = []
    for gate in gates:
        value = config.get(gate.option, "not set")
        why = reasons.get(gate.option, "")
        head = (f"kernel::{gate.item} is configured out of this kernel: rustc names the gate "
                f"#[cfg({gate.gate})], and CONFIG_{gate.option} is {value} in {config_file}")
        if why:
            head += f"\n  {why}"
        if stock:
            head += ("\n  this is a distribution's stock kernel, whose config cannot change: "
                     "use the self-built kernel (drop --kernel/RUSTKM_KERNEL) with the "
                     "fragment line below")
        line = f"CONFIG_{gate.option}={'m' if gate.wanted == 'm' else 'y'}"
        head += (f"\n  add to a config fragment: {line}\n  (a file listed in rustkm.toml's "
                 "[kernel] fragments, or --fragment FILE), then `rustkm kernel build`")
        paragraphs.append(head)
    return "\n".join(paragraphs)


def _reasons(gates: list[Gate], config: Mapping[str, str], tree: Path | None) -> dict[str, str]:
    """Kconfig's word on why each option is off, where the tree's Kconfig can be read."""
    if tree is None or not (tree / "Kconfig").is_file():
        return {}
    from rustkm.kernel.explain import explain
    from rustkm.kernel.kconfig import read_kconfig

    try:
        kconfig = read_kconfig(tree)
        wanted = {g.option: "m" if g.wanted == "m" else "y" for g in gates}
        return {option: text for option in wanted
                for text in explain(kconfig, config, {option: wanted[option]})[:1]}
    except Exception:  # noqa: BLE001 (an explanation is a bonus; the gate itself is named)
        return {}
