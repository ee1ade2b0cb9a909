"""A KTAP v1 parser (Documentation/dev-tools/ktap.rst), for what KUnit prints.

Nested tests (a version line, KUnit's `# Subtest: NAME` header, a plan, the subtests, then the
parent's own result line), SKIP/TODO/XFAIL/TIMEOUT/ERROR directives, `#` diagnostic lines and
unknown lines (kept as the log of the test they precede), parameterised cases (one more level),
and output that stops in the middle because the kernel died: the test in flight is CRASHED and
the planned tests after it are NOT_RUN. Output that breaks the format (a result line that does
not parse, numbers out of order, more results than the plan, a misplaced plan, an unknown
version) is a KtapError quoting the line and its number.

Indentation is not trusted for structure (KUnit indents by four spaces, the specification by
two, and unknown lines may be indented either way); the plan and the subtest names are.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum

from rustkm.errors import RustkmError

_VERSION = re.compile(r"^\s*(K?TAP) version (\d+)\s*$")
_SUBTEST = re.compile(r"^\s*# Subtest: (.*?)\s*$")
_PLAN = re.compile(r"^\s*1\.\.(\d+)\s*$")
_RESULT = re.compile(r"^\s*(ok|not ok) (\d+)(?:\s+(?:- )?([^#]*?))?\s*(?:#\s*(.*?))?\s*$")
_RESULT_LIKE = re.compile(r"^\s*(ok|not ok)(\s|$)")
_TIMESTAMP = re.compile(r"^\[\s*\d+\.\d+\]\s?")
ACCEPTED_VERSIONS = {"KTAP": (1,), "TAP": (13, 14)}


class Status(Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    SKIP = "SKIP"
    TODO = "TODO"  # TODO or XFAIL: not expected to pass
    TIMEOUT = "TIMEOUT"
    ERROR = "ERROR"
    CRASHED = "CRASHED"  # in flight when the output stopped
    NOT_RUN = "NOT_RUN"  # planned, after a crash

    @property
    def failed(self) -> bool:
        return self in (Status.FAIL, Status.TIMEOUT, Status.ERROR, Status.CRASHED,
                        Status.NOT_RUN)


_DIRECTIVES = {"SKIP": Status.SKIP, "TODO": Status.TODO, "XFAIL": Status.TODO,
               "TIMEOUT": Status.TIMEOUT, "ERROR": Status.ERROR}


class KtapError(RustkmError):
    """Output that is not KTAP v1; the message quotes the offending line."""


@dataclass
class KtapTest:
    name: str
    number: int
    status: Status = Status.CRASHED
    directive: str = ""  # SKIP, TODO, ... as written, or ""
    reason: str = ""  # what follows `#` on the result line (the directive removed)
    log: list[str] = field(default_factory=list)  # diagnostic and unknown lines before it
    subtests: list[KtapTest] = field(default_factory=list)
    plan: int | None = None  # 1..N, when the test has subtests and printed a plan
    line: int = 0  # the line number of its result line; 0 if none came

    def walk(self) -> Iterator[tuple[tuple[str, ...], KtapTest]]:
        """Every test below this one, depth first, with the names of its parents."""
        for sub in self.subtests:
            yield (sub.name,), sub
            for path, inner in sub.walk():
                yield (sub.name, *path), inner

    def find(self, *names: str) -> KtapTest | None:
        test: KtapTest | None = self
        for name in names:
            test = next((s for s in test.subtests if s.name == name), None) if test else None
        return test


@dataclass(frozen=True)
class _Result:
    ok: bool
    number: int
    name: str
    directive: str
    reason: str
    line: int

    @property
    def status(self) -> Status:
        if self.directive.upper() in _DIRECTIVES:
            return _DIRECTIVES[self.directive.upper()]
        return Status.PASS if self.ok else Status.FAIL


def console_lines(text: str) -> list[str]:
    """The lines of a console log with their printk timestamps removed."""
    return [_TIMESTAMP.sub("", line) for line in text.splitlines()]


def parse_ktap(text: str | list[str], source: str = "KTAP output") -> KtapTest:
    """The tests of a KTAP document (debugfs results, or a console log: lines before the
    first version line are skipped and printk timestamps removed). Returns the root, whose
    subtests are the top-level tests; raises KtapError on output that breaks the format."""
    lines = console_lines(text) if isinstance(text, str) else list(text)
    start = next((i for i, line in enumerate(lines) if _VERSION.match(line)), None)
    if start is None:
        raise KtapError(f"{source}: no KTAP version line (\"KTAP version 1\")",
                        hint="did any KUnit suite run? Its module must be loaded on a kernel "
                             "with CONFIG_KUNIT=y and kunit.enable=1")
    numbered = [(start + i + 1, line) for i, line in enumerate(lines[start:])]
    return _Parser(numbered, source).document()


class _Parser:
    def __init__(self, lines: list[tuple[int, str]], source: str) -> None:
        self.lines = lines
        self.pos = 0
        self.source = source

    def _peek(self, offset: int = 0) -> str | None:
        at = self.pos + offset
        return self.lines[at][1] if at < len(self.lines) else None

    def _error(self, what: str, at: int | None = None) -> KtapError:
        index = self.pos if at is None else at
        number, line = self.lines[min(index, len(self.lines) - 1)]
        return KtapError(f"{self.source}, line {number}: {what}: {line.strip()!r}")

    def _pop(self) -> str:
        line = self.lines[self.pos][1]
        self.pos += 1
        return line

    def _diagnostics(self) -> list[str]:
        """Diagnostic and unknown lines up to the next structural line."""
        log = []
        while (line := self._peek()) is not None:
            if _VERSION.match(line) or _SUBTEST.match(line) or _PLAN.match(line) \
                    or _RESULT.match(line):
                break
            if _RESULT_LIKE.match(line):
                raise self._error("a result line must read 'ok|not ok NUMBER [NAME] "
                                  "[# DIRECTIVE REASON]'")
            log.append(self._pop())
        return log

    def _version(self) -> None:
        match = _VERSION.match(self._peek() or "")
        assert match is not None
        kind, number = match.group(1), int(match.group(2))
        if number not in ACCEPTED_VERSIONS[kind]:
            raise self._error(f"unsupported {kind} version {number} (this parser reads KTAP "
                              "version 1, and TAP 13 and 14)")
        self._pop()

    def _result(self) -> _Result:
        number = self.lines[self.pos][0]
        match = _RESULT.match(self._pop())
        assert match is not None
        comment = match.group(4) or ""
        word, _, rest = comment.partition(" ")
        directive, reason = (word, rest.strip()) if word.upper() in _DIRECTIVES else ("", comment)
        return _Result(match.group(1) == "ok", int(match.group(2)), match.group(3) or "",
                       directive, reason, number)

    def document(self) -> KtapTest:
        root = KtapTest(name="", number=0, status=Status.PASS)
        # Without a top-level header (a suite run through debugfs prints none on the console),
        # the document is a run of nested tests, each numbered on its own.
        implicit = bool(re.match(r"^\s+\S", self._peek() or "")) or \
            bool(_SUBTEST.match(self._peek(1) or ""))
        if not implicit:
            self._version()
            root.log += self._diagnostics()
            if (line := self._peek()) is not None and (plan := _PLAN.match(line)):
                root.plan = int(plan.group(1))
                self._pop()
        self._children(root, check_numbers=not implicit, closing=None)
        if any(t.status is Status.CRASHED for t in root.subtests):
            root.status = Status.CRASHED
        elif any(t.status.failed for t in root.subtests):
            root.status = Status.FAIL
        return root

    def _children(self, parent: KtapTest, check_numbers: bool, closing: str | None,
                  indent: int = -1) -> bool:
        """Parse the subtests of `parent` up to its own result line (left unread); True if
        the output ended first (the kernel died, or the output was cut). The parent's result
        is the line naming it, the one after its planned subtests, or, for a subtest with
        neither name nor plan, the first result indented less than its version line."""
        number = 1
        while True:
            log = self._diagnostics()
            line = self._peek()
            if line is None:
                if parent.plan is not None and number <= parent.plan:
                    parent.subtests.append(KtapTest("", number, Status.CRASHED, log=log))
                    parent.subtests += [KtapTest("", n, Status.NOT_RUN)
                                        for n in range(number + 1, parent.plan + 1)]
                else:
                    parent.log += log
                return True
            planned_done = parent.plan is not None and number > parent.plan
            if _PLAN.match(line):
                raise self._error("a plan line must follow a version line (or a subtest "
                                  "header), before any result")
            if _RESULT.match(line):
                result = _RESULT.match(line)
                assert result is not None
                name = (result.group(3) or "").strip()
                dedented = len(line) - len(line.lstrip()) < indent
                if closing is not None and (planned_done or dedented
                                            or (closing and name == closing)):
                    if parent.plan is not None and not planned_done:
                        raise self._error(f"the result of {closing!r} came after "
                                          f"{number - 1} of its {parent.plan} planned tests")
                    parent.log += log
                    return False
                if planned_done:
                    raise self._error(f"more results than the plan 1..{parent.plan}")
                test = self._leaf(self._result(), number, check_numbers, log)
                parent.subtests.append(test)
            else:
                if planned_done:
                    raise self._error(f"a subtest beyond the plan 1..{parent.plan}")
                test, ended = self._subtest(number, check_numbers, log)
                parent.subtests.append(test)
                if ended:
                    if parent.plan is not None:
                        parent.subtests += [KtapTest("", n, Status.NOT_RUN)
                                            for n in range(number + 1, parent.plan + 1)]
                    return True
            number += 1

    def _leaf(self, result: _Result, number: int, check_numbers: bool,
              log: list[str]) -> KtapTest:
        if check_numbers and result.number != number:
            raise self._error(f"test number {result.number} where {number} was expected",
                              self.pos - 1)
        return KtapTest(result.name, result.number, result.status, result.directive,
                        result.reason, log, line=result.line)

    def _subtest(self, number: int, check_numbers: bool,
                 log: list[str]) -> tuple[KtapTest, bool]:
        test = KtapTest("", number, log=log)
        first = self._peek() or ""
        indent = len(first) - len(first.lstrip())
        if _VERSION.match(first):
            self._version()
        test.log += self._diagnostics()
        if (header := _SUBTEST.match(self._peek() or "")) is not None:
            test.name = header.group(1)
            self._pop()
        test.log += self._diagnostics()
        if (plan := _PLAN.match(self._peek() or "")) is not None:
            test.plan = int(plan.group(1))
            self._pop()
        if self._children(test, check_numbers=True, closing=test.name, indent=indent):
            return test, True  # no result line: it was in flight when the output stopped
        result = self._leaf(self._result(), number, check_numbers, [])
        if test.name and result.name != test.name:
            raise self._error(f"the result line names {result.name!r}, but the subtest is "
                              f"{test.name!r}", self.pos - 1)
        test.name = test.name or result.name
        test.number, test.status, test.line = result.number, result.status, result.line
        test.directive, test.reason = result.directive, result.reason
        return test, False
