"""Kconfig expressions: parse `depends on`/`select ... if` text, evaluate it in tristate logic
against a .config, and find the leaf terms that keep an expression from a wanted value."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from rustkm.errors import RustkmError

# Tristate values as Kconfig computes them: n < m < y.
N, M, Y = 0, 1, 2
TRISTATE = {"n": N, "m": M, "y": Y}


@dataclass(frozen=True, slots=True)
class Sym:
    """A symbol name, or an unquoted constant (y, m, n, a number)."""

    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class Str:
    """A quoted string constant."""

    text: str

    def __str__(self) -> str:
        return f'"{self.text}"'


@dataclass(frozen=True, slots=True)
class Macro:
    """A `$(...)` call Kconfig expands at configure time (a toolchain test); its result is
    not recorded in a .config."""

    text: str

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class Cmp:
    op: str  # = != < > <= >=
    left: Sym | Str | Macro
    right: Sym | Str | Macro

    def __str__(self) -> str:
        return f"{self.left} {self.op} {self.right}"


@dataclass(frozen=True, slots=True)
class Not:
    arg: Expr

    def __str__(self) -> str:
        inner = str(self.arg)
        return f"!{inner}" if isinstance(self.arg, (Sym, Str, Macro)) else f"!({inner})"


@dataclass(frozen=True, slots=True)
class And:
    terms: tuple[Expr, ...]

    def __str__(self) -> str:
        return " && ".join(f"({t})" if isinstance(t, Or) else str(t) for t in self.terms)


@dataclass(frozen=True, slots=True)
class Or:
    terms: tuple[Expr, ...]

    def __str__(self) -> str:
        return " || ".join(f"({t})" if isinstance(t, And) else str(t) for t in self.terms)


Atom = Sym | Str | Macro
Leaf = Sym | Str | Macro | Cmp
Expr = Sym | Str | Macro | Cmp | Not | And | Or


class KconfigSyntaxError(RustkmError):
    located = False  # True once the message names the file and line


_TOKEN = re.compile(r"""\s*(?:(&&|\|\||!=|<=|>=|[!=<>()])|"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'"""
                    r"""|(\$\()|([A-Za-z0-9_.+-]+))""")


def tokenize(text: str) -> list[tuple[str, str]]:
    """(kind, value) tokens: op, str, macro, word. Macros keep their balanced `$(...)` text."""
    tokens: list[tuple[str, str]] = []
    pos, end = 0, len(text)
    while pos < end:
        m = _TOKEN.match(text, pos)
        if m is None:
            if text[pos:].strip() == "":
                break
            raise KconfigSyntaxError(f"cannot read Kconfig expression {text!r} at {text[pos:]!r}")
        op, dq, sq, macro, word = m.groups()
        pos = m.end()
        if op:
            tokens.append(("op", op))
        elif dq is not None or sq is not None:
            tokens.append(("str", dq if dq is not None else sq or ""))
        elif macro:
            depth, start = 1, m.start(4)
            while pos < end and depth:
                depth += {"(": 1, ")": -1}.get(text[pos], 0)
                pos += 1
            tokens.append(("macro", text[start:pos]))
        elif word:
            tokens.append(("word", word))
    return tokens


@lru_cache(maxsize=8192)
def parse_expr(text: str) -> Expr:
    """The expression in `text` (the part after `depends on`, `if`, `select X if`, ...)."""
    return _Parser(tokenize(text), text).parse()


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], text: str) -> None:
        self.tokens = tokens
        self.pos = 0
        self.text = text

    def parse(self) -> Expr:
        expr = self.or_expr()
        if self.pos != len(self.tokens):
            self.fail("unexpected token")
        return expr

    def fail(self, why: str) -> None:
        raise KconfigSyntaxError(f"cannot read Kconfig expression {self.text!r}: {why}")

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take_op(self, op: str) -> bool:
        if self.peek() == ("op", op):
            self.pos += 1
            return True
        return False

    def or_expr(self) -> Expr:
        terms = [self.and_expr()]
        while self.take_op("||"):
            terms.append(self.and_expr())
        return terms[0] if len(terms) == 1 else Or(tuple(_flatten(terms, Or)))

    def and_expr(self) -> Expr:
        terms = [self.unary()]
        while self.take_op("&&"):
            terms.append(self.unary())
        return terms[0] if len(terms) == 1 else And(tuple(_flatten(terms, And)))

    def unary(self) -> Expr:
        if self.take_op("!"):
            return Not(self.unary())
        if self.take_op("("):
            inner = self.or_expr()
            if not self.take_op(")"):
                self.fail("missing )")
            return inner
        left = self.atom()
        token = self.peek()
        if token and token[0] == "op" and token[1] in ("=", "!=", "<", ">", "<=", ">="):
            self.pos += 1
            return Cmp(token[1], left, self.atom())
        return left

    def atom(self) -> Atom:
        token = self.peek()
        if token is None or token[0] == "op":
            self.fail("a symbol is missing")
            raise AssertionError  # fail() raised
        self.pos += 1
        kind, value = token
        return Str(value) if kind == "str" else Macro(value) if kind == "macro" else Sym(value)


def _flatten(terms: list[Expr], kind: type[And | Or]) -> list[Expr]:
    out: list[Expr] = []
    for t in terms:
        out.extend(t.terms if isinstance(t, kind) else (t,))
    return out


def conjunction(exprs: list[Expr]) -> Expr:
    """`depends on A` and `depends on B` lines as one expression A && B."""
    if not exprs:
        return Sym("y")
    return exprs[0] if len(exprs) == 1 else And(tuple(_flatten(exprs, And)))


def _number(text: str) -> int | None:
    try:
        return int(text, 16) if text.lower().startswith(("0x", "-0x")) else int(text, 10)
    except ValueError:
        return None


class Evaluator:
    """Kconfig's expression semantics over symbol values.

    `tri(name)` gives a symbol's tristate value, `text(name)` its string value (what
    comparisons see); macros, whose results a .config does not keep, count as y.
    """

    def __init__(self, tri: Callable[[str], int], text: Callable[[str], str]) -> None:
        self.tri_of = tri
        self.text_of = text

    def value(self, e: Expr) -> int:
        if isinstance(e, Sym):
            return self.tri_of(e.name)
        if isinstance(e, And):
            return min(self.value(t) for t in e.terms)
        if isinstance(e, Or):
            return max(self.value(t) for t in e.terms)
        if isinstance(e, Not):
            return Y - self.value(e.arg)
        if isinstance(e, Cmp):
            return Y if self.compare(e) else N
        if isinstance(e, Macro):
            return Y
        return N  # a bare string constant

    def atom_text(self, a: Atom) -> str:
        return self.text_of(a.name) if isinstance(a, Sym) else a.text

    def compare(self, e: Cmp) -> bool:
        left, right = self.atom_text(e.left), self.atom_text(e.right)
        a, b = _number(left), _number(right)
        if a is None or b is None:
            if e.op in ("=", "!="):
                return (left == right) == (e.op == "=")
            return False  # Kconfig cannot order non-numbers: the comparison is n
        return {"=": a == b, "!=": a != b, "<": a < b, ">": a > b, "<=": a <= b,
                ">=": a >= b}[e.op]

    def too_low(self, e: Expr, want: int) -> list[Leaf]:
        """The leaves that keep `e` below `want`: fixing any one of an || or all of an &&."""
        if self.value(e) >= want:
            return []
        if isinstance(e, And):
            return [leaf for t in e.terms for leaf in self.too_low(t, want)]
        if isinstance(e, Or):
            return [leaf for t in e.terms for leaf in self.too_low(t, want)]
        if isinstance(e, Not):
            return self.too_high(e.arg, Y - want)
        return [e]

    def too_high(self, e: Expr, limit: int) -> list[Leaf]:
        """The leaves that keep `e` above `limit`."""
        if self.value(e) <= limit:
            return []
        if isinstance(e, (And, Or)):
            return [leaf for t in e.terms for leaf in self.too_high(t, limit)]
        if isinstance(e, Not):
            return self.too_low(e.arg, Y - limit)
        return [e]


def symbols_in(e: Expr) -> list[str]:
    """Names of the (non-constant) symbols an expression mentions, in order."""
    if isinstance(e, Sym):
        return [] if e.name in TRISTATE or _number(e.name) is not None else [e.name]
    if isinstance(e, Cmp):
        return symbols_in(e.left) + symbols_in(e.right)
    if isinstance(e, Not):
        return symbols_in(e.arg)
    if isinstance(e, (And, Or)):
        return [name for t in e.terms for name in symbols_in(t)]
    return []
