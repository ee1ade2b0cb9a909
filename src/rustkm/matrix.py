"""`rustkm matrix`: every module on every lane, built and tested, as one module x lane table.

A cell is one module folder on one lane: its build (the first rustc error, file:line, when it
fails), then its tests (pytest on the folder with that lane, JUnit XML read back for counts
and the first failure). A module folder declares the lanes it does not apply to in its
rustkm-module.toml ([lanes] skip = {PATTERN = REASON}); those cells say so and run nothing.
Cells are ordered lane by lane (each lane's kernel is prepared once), and `--shard K/N` takes
every Nth of them, so N CI runners share one matrix; `--merge` joins their JSON.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from rustkm.errors import RustkmError
from rustkm.kernel.lane import Lane
from rustkm.module_file import module_lane_skip

PASSED, BUILT, FAILED, BUILD_ERROR, NOT_APPLICABLE, ERROR = (
    "passed", "built", "failed", "build error", "not applicable", "error")
BAD = (FAILED, BUILD_ERROR, ERROR)
_RUSTC_ERROR = re.compile(r"^(error(\[E\d+\])?: .*)$", re.MULTILINE)
_LOCATION = re.compile(r"^\s*--> (\S+:\d+:\d+)", re.MULTILINE)


@dataclass
class Cell:
    module: str  # the folder, relative to the project
    lane: str
    status: str = ""
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    detail: str = ""  # the first failure and why, the first rustc error, or the reason
    seconds: float = 0.0

    def text(self) -> str:
        if self.status == BUILT:
            return "built (tests not run)"
        if self.status == PASSED:
            extra = f", {self.skipped} skipped" if self.skipped else ""
            return f"passed ({self.passed}{extra})" if self.passed else "built (no tests)"
        return f"{self.status}: {self.detail}" if self.detail else self.status


def parse_shard(text: str) -> tuple[int, int]:
    """K/N with 1 <= K <= N."""
    match = re.fullmatch(r"(\d+)/(\d+)", text.strip())
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise RustkmError(f"--shard {text!r} is not K/N with 1 <= K <= N",
                          hint="e.g. --shard 2/3: the second of three runners")
    return int(match.group(1)), int(match.group(2))


def plan(modules: list[str], lanes: list[str], shard: tuple[int, int] = (1, 1)) -> list[Cell]:
    """The cells, lane by lane, then this shard's share: every Nth, from the Kth."""
    cells = [Cell(module, lane) for lane in lanes for module in modules]
    k, n = shard
    return cells[k - 1::n]


def first_build_error(details: str) -> str:
    """rustc's (or the C compiler's) first error and where, in one line."""
    match = _RUSTC_ERROR.search(details)
    if match:
        where = _LOCATION.search(details, match.end())
        return f"{match.group(1)}" + (f" ({where.group(1)})" if where else "")
    c_error = re.search(r"^(\S+:\d+:\d+): error: (.*)$", details, re.MULTILINE)
    if c_error:
        return f"error: {c_error.group(2)} ({c_error.group(1)})"
    lines = [line for line in details.splitlines() if line.strip()]
    return lines[0] if lines else "the build failed"


def read_junit(path: Path) -> tuple[int, int, int, str]:
    """(passed, failed, skipped, the first failure's test and first line of why)."""
    root = ET.parse(path).getroot()
    passed = failed = skipped = 0
    first = ""
    for case in root.iter("testcase"):
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if problem is not None:
            failed += 1
            if not first:
                why = (problem.get("message") or problem.text or "").strip().splitlines()
                first = f"{case.get('name')}: {why[0] if why else 'failed'}"
        elif case.find("skipped") is not None:
            skipped += 1
        else:
            passed += 1
    return passed, failed, skipped, first


def run_cell(cell: Cell, folder: Path, lane: Lane, build: Callable[[Path], object],
             junit: Path, test: bool = True) -> Cell:
    """Build and (unless `test` is false) test one module on one lane; every outcome is a
    status, never a raise."""
    start = time.monotonic()
    try:
        if reason := module_lane_skip(folder, lane.name):
            cell.status, cell.detail = NOT_APPLICABLE, reason
            return cell
        try:
            build(folder)
        except RustkmError as e:
            cell.status, cell.detail = BUILD_ERROR, first_build_error(e.details or e.message)
            return cell
        if not test:
            cell.status = BUILT
            return cell
        if not any(folder.glob("test_*.py")):
            cell.status = PASSED
            return cell
        junit.parent.mkdir(parents=True, exist_ok=True)
        junit.unlink(missing_ok=True)
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               f"--rustkm-kernel={lane.name}", f"--junitxml={junit}",
                               str(folder)], capture_output=True, text=True, check=False)
        if not junit.is_file():
            tail = (proc.stdout + proc.stderr).strip().splitlines()
            cell.status, cell.detail = ERROR, tail[-1] if tail else f"pytest exit {proc.returncode}"
            return cell
        cell.passed, cell.failed, cell.skipped, first = read_junit(junit)
        if cell.failed or proc.returncode not in (0, 5):
            cell.status, cell.detail = FAILED, first or f"pytest exit {proc.returncode}"
        elif cell.passed == 0 and cell.skipped:
            cell.status, cell.detail = NOT_APPLICABLE, "every test skipped on this lane"
        else:
            cell.status = PASSED
        return cell
    finally:
        cell.seconds = round(time.monotonic() - start, 1)


def junit_name(cell: Cell) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{cell.lane}--{cell.module}") + ".xml"


def to_json(cells: Iterable[Cell], lanes: list[str], shard: tuple[int, int]) -> str:
    return json.dumps({"lanes": lanes, "shard": f"{shard[0]}/{shard[1]}",
                       "cells": [asdict(c) for c in cells]}, indent=2) + "\n"


def merge(files: list[Path]) -> tuple[list[Cell], list[str]]:
    """The cells of several shards' JSON, each (module, lane) once."""
    cells: dict[tuple[str, str], Cell] = {}
    lanes: list[str] = []
    for path in files:
        try:
            data = json.loads(path.read_text())
            for lane in data["lanes"]:
                if lane not in lanes:
                    lanes.append(lane)
            for entry in data["cells"]:
                cell = Cell(**entry)
                cells[(cell.module, cell.lane)] = cell
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise RustkmError(f"{path} is not a rustkm matrix JSON file: {e}") from None
    return list(cells.values()), lanes
