"""Read a kernel tree's Kconfig: every symbol's type, its dependencies (its own `depends on`
and those inherited from `if`, `menu` and `choice` blocks), its prompt, defaults and the
`select`/`imply` statements other symbols make of it; and evaluate them against a .config."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from rustkm.errors import RustkmError
from rustkm.kernel.kexpr import (
    TRISTATE,
    Evaluator,
    Expr,
    KconfigSyntaxError,
    conjunction,
    parse_expr,
    tokenize,
)

TYPES = ("bool", "tristate", "string", "int", "hex")
DEFAULT_VARIABLES = {"SRCARCH": "x86", "ARCH": "x86", "HEADER_ARCH": "x86"}
_VARIABLE = re.compile(r"\$\(([A-Za-z0-9_]+)\)")
_IF = re.compile(r"(?:^|\s)if(?:\s|$)")
_ASSIGNMENT = re.compile(r"^[A-Za-z0-9_-]+\s*(?::=|\+=|=)")
# Attributes this reader has no use for; they are known, so they are not errors.
_IGNORED = {"option", "modules", "optional", "transitional", "mainmenu", "will", "tests"}


@dataclass(frozen=True)
class Condition:
    """One term a symbol's value is limited by, and where it comes from."""

    text: str  # the expression as written (parsed on first use: most are never needed)
    origin: str | None = None  # None: the entry's own `depends on`; else "`if X` at FILE:LINE"

    @property
    def expr(self) -> Expr:
        return parse_expr(self.text)


@dataclass(frozen=True)
class Reverse:
    """`select` or `imply` of a symbol, made by `by` (when `cond` holds)."""

    by: str
    cond_text: str | None
    location: str

    @property
    def cond(self) -> Expr | None:
        return None if self.cond_text is None else parse_expr(self.cond_text)


@dataclass(frozen=True)
class Default:
    value_text: str
    cond_text: str | None

    @property
    def value(self) -> Expr:
        return parse_expr(self.value_text)

    @property
    def cond(self) -> Expr | None:
        return None if self.cond_text is None else parse_expr(self.cond_text)


@dataclass
class Choice:
    location: str
    prompt: str
    members: list[str] = field(default_factory=list)


@dataclass
class Definition:
    """One `config`/`menuconfig` entry; a symbol may be defined more than once."""

    location: str
    depends: list[Condition] = field(default_factory=list)
    prompt: str | None = None
    prompt_if: list[Condition] = field(default_factory=list)  # the prompt's `if`, `visible if`
    defaults: list[Default] = field(default_factory=list)
    choice: Choice | None = None


@dataclass
class Symbol:
    name: str
    type: str = ""  # one of TYPES once an entry declares it
    definitions: list[Definition] = field(default_factory=list)
    selected_by: list[Reverse] = field(default_factory=list)
    implied_by: list[Reverse] = field(default_factory=list)

    @property
    def is_bool(self) -> bool:
        return self.type in ("bool", "tristate")


@dataclass
class Kconfig:
    tree: Path
    symbols: dict[str, Symbol] = field(default_factory=dict)
    files: int = 0
    skipped: list[str] = field(default_factory=list)  # sources whose path could not be resolved

    def symbol(self, name: str) -> Symbol:
        sym = self.symbols.get(name)
        if sym is None:
            sym = self.symbols[name] = Symbol(name)
        return sym

    def evaluator(self, config: Mapping[str, str]) -> Evaluator:
        """Expressions evaluated against a .config (symbols it lacks are n, or "" if not bool)."""

        def tri(name: str) -> int:
            return TRISTATE.get(config.get(name, name if name in TRISTATE else "n"), 0)

        def text(name: str) -> str:
            if name in config:
                return config[name].strip('"')
            sym = self.symbols.get(name)
            if sym is None or not sym.definitions:
                return name  # an undefined word is a constant: Kconfig compares its name
            return "n" if sym.is_bool else ""

        return Evaluator(tri, text)


@dataclass
class _Block:
    kind: str  # if, menu, choice
    conditions: list[Condition]
    visible: list[Condition] = field(default_factory=list)
    choice: Choice | None = None


class _Reader:
    def __init__(self, tree: Path, variables: Mapping[str, str]) -> None:
        self.kconfig = Kconfig(tree)
        self.tree = tree
        # $(srctree) only in source paths: explanations show expressions as the tree has them.
        self.variables = {**DEFAULT_VARIABLES, **variables}
        self.path_variables = {"srctree": str(tree), **self.variables}
        self.stack: list[_Block] = []
        self.entry: Definition | _Block | None = None
        self.current: Symbol | None = None
        self.where = ""
        self.title = ""

    def expand(self, text: str, variables: Mapping[str, str] | None = None) -> str:
        if "$(" not in text:
            return text
        values = variables or self.variables
        return _VARIABLE.sub(lambda m: values.get(m.group(1), m.group(0)), text)

    def read_file(self, path: Path) -> None:
        self.kconfig.files += 1
        try:
            rel = str(path.relative_to(self.tree))
        except ValueError:
            rel = str(path)
        lines = path.read_text(errors="replace").splitlines()
        help_indent: int | None = -1  # -1: not in help text
        pending = ""
        for number, raw in enumerate(lines, 1):
            if help_indent != -1:
                body = raw.lstrip()
                if not body:
                    continue
                indent = _indent(raw[:len(raw) - len(body)])
                if help_indent is None:
                    help_indent = indent
                if indent >= help_indent and indent > 0:
                    continue
                help_indent = -1
            line = pending + raw
            if line.endswith("\\"):
                pending = line[:-1]
                continue
            pending = ""
            stripped = line.strip()
            if not stripped or stripped[0] == "#":
                continue
            if "#" in stripped:
                stripped = _strip_comment(stripped)
            self.where = f"{rel}:{number}"
            try:
                if self.statement(stripped, path):
                    help_indent = None
            except KconfigSyntaxError as e:
                if e.located:
                    raise
                located = KconfigSyntaxError(f"{self.where}: {e.message}")
                located.located = True
                raise located from None

    def statement(self, line: str, path: Path) -> bool:
        """Handle one line; True when a help text follows."""
        keyword, *more = line.split(None, 1)
        rest = more[0] if more else ""
        if keyword in ("config", "menuconfig"):
            self.start_symbol(rest)
        elif keyword in TYPES or keyword in ("def_bool", "def_tristate"):
            self.type_line(keyword, rest)
        elif keyword == "depends":
            self.depends(rest.removeprefix("on").strip())
        elif keyword in ("select", "imply"):
            self.reverse(keyword, rest)
        elif keyword == "prompt":
            self.prompt(rest)
        elif keyword == "default":
            self.default(rest)
        elif keyword in ("help", "---help---"):
            return True
        elif keyword in ("source", "osource", "rsource", "orsource"):
            self.source(keyword, rest, path)
        elif keyword == "if":
            self.push(_Block("if", [Condition(self.expand(rest), f"`if {rest}` at {self.where}")]))
        elif keyword == "menu":
            self.push(_Block("menu", []))
            self.title = _first_string(rest)
        elif keyword == "choice":
            self.push(_Block("choice", [], choice=Choice(self.where, "")))
        elif keyword in ("endif", "endmenu", "endchoice"):
            self.pop(keyword[3:])
        elif keyword == "visible":
            self.visible(rest.removeprefix("if").strip())
        elif keyword == "comment":
            self.entry, self.current = None, None
        elif (keyword == "range" or keyword in _IGNORED or keyword.startswith("$(")
              or _ASSIGNMENT.match(line)):
            pass
        else:
            raise KconfigSyntaxError(f"unknown Kconfig keyword {keyword!r}")
        return False

    def start_symbol(self, name: str) -> None:
        sym = self.kconfig.symbol(name)
        inherited = [c for block in self.stack for c in block.conditions]
        visible = [c for block in self.stack for c in block.visible]
        choice = self.stack[-1].choice if self.stack and self.stack[-1].kind == "choice" else None
        definition = Definition(self.where, list(inherited), None, list(visible), [], choice)
        if choice is not None:
            choice.members.append(name)
        sym.definitions.append(definition)
        self.entry, self.current = definition, sym

    def type_line(self, keyword: str, rest: str) -> None:
        kind = {"def_bool": "bool", "def_tristate": "tristate"}.get(keyword, keyword)
        if self.current is not None:
            self.current.type = kind
        if keyword.startswith("def_"):
            self.default(rest)
        elif rest:
            self.prompt(rest)

    def split_if(self, rest: str) -> tuple[str, str | None]:
        """`VALUE if COND` -> (VALUE, COND); a prompt's string may itself contain " if "."""
        rest = self.expand(rest)
        m = _IF.search(rest)
        if m is None:
            return rest, None
        if "\"" in rest or "'" in rest or "$(" in rest:
            tokens = tokenize(rest)
            for i, (kind, value) in enumerate(tokens):
                if kind == "word" and value == "if":
                    return _join(tokens[:i]), _join(tokens[i + 1:])
            return rest, None
        return rest[:m.start()].strip(), rest[m.end():].strip()

    def depends(self, text: str) -> None:
        # `depends on A if B` (Linux 6.19+) limits the entry by A only where B holds.
        value, cond = self.split_if(text)
        expr = value if cond is None else f"({value}) || !({cond})"
        if isinstance(self.entry, Definition):
            self.entry.depends.append(Condition(expr))
        elif isinstance(self.entry, _Block):
            choice = self.entry.choice
            label = f'choice "{choice.prompt}"' if choice else f'menu "{self.title}"'
            self.entry.conditions.append(Condition(expr, f"{label} at {self.where}"))

    def visible(self, text: str) -> None:
        if isinstance(self.entry, _Block):
            self.entry.visible.append(Condition(self.expand(text), f"`visible if` at {self.where}"))

    def prompt(self, rest: str) -> None:
        text, cond = self.split_if(rest)
        if isinstance(self.entry, _Block) and self.entry.choice is not None:
            self.entry.choice.prompt = text.strip('"')
        elif isinstance(self.entry, Definition):
            self.entry.prompt = text.strip('"')
            if cond is not None:
                self.entry.prompt_if.append(Condition(cond, f"the prompt's `if` at {self.where}"))

    def default(self, rest: str) -> None:
        if isinstance(self.entry, Definition):
            value, cond = self.split_if(rest)
            self.entry.defaults.append(Default(value, cond))

    def reverse(self, keyword: str, rest: str) -> None:
        if self.current is None:
            return
        target, cond = self.split_if(rest)
        record = Reverse(self.current.name, cond, self.where)
        sym = self.kconfig.symbol(target)
        (sym.selected_by if keyword == "select" else sym.implied_by).append(record)

    def push(self, block: _Block) -> None:
        self.stack.append(block)
        self.entry, self.current = block, None

    def pop(self, kind: str) -> None:
        if not self.stack or self.stack[-1].kind != kind:
            raise KconfigSyntaxError(f"end{kind} without a matching {kind}")
        self.stack.pop()
        self.entry, self.current = None, None

    def source(self, keyword: str, rest: str, current: Path) -> None:
        spec = self.expand(_first_string(rest), self.path_variables)
        if "$(" in spec:
            self.kconfig.skipped.append(f"{self.where}: {spec}")
            return
        base = current.parent if keyword.startswith(("r", "or")) else self.tree
        target = Path(spec) if spec.startswith("/") else base / spec
        optional = keyword.startswith("o")
        found = sorted(target.parent.glob(target.name)) if "*" in spec else [target]
        for path in found:
            if path.is_file():
                self.read_file(path)
            elif not optional:
                raise KconfigSyntaxError(f"{keyword} {spec}: no such file")


@lru_cache(maxsize=64)
def _indent(whitespace: str) -> int:
    return len(whitespace.expandtabs(8))


def _first_string(rest: str) -> str:
    tokens = tokenize(rest)
    return tokens[0][1] if tokens else ""


def _join(tokens: list[tuple[str, str]]) -> str:
    return " ".join(f'"{v}"' if k == "str" else v for k, v in tokens)


def _strip_comment(line: str) -> str:
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            return line[:i].rstrip()
    return line


def read_kconfig(tree: Path, variables: Mapping[str, str] | None = None,
                 top: str = "Kconfig") -> Kconfig:
    """Every symbol of `tree`'s Kconfig, reading from TREE/Kconfig through its `source`s.

    `variables` gives the values of `$(NAME)` in source paths and expressions (SRCARCH=x86 by
    default); toolchain tests such as `$(success,...)` are kept unevaluated.
    """
    tree = tree.resolve()
    if not (tree / top).is_file():
        raise RustkmError(f"{tree} has no {top}: it is not a Linux source tree",
                          hint="point --source at the top of a kernel tree")
    reader = _Reader(tree, variables or {})
    reader.read_file(tree / top)
    if reader.stack:
        raise KconfigSyntaxError(f"{top}: a `{reader.stack[-1].kind}` block is never closed")
    return reader.kconfig


def dependency(definition: Definition) -> Expr:
    """One definition's whole dependency: its own and its inherited conditions, as one &&."""
    return conjunction([c.expr for c in definition.depends])

