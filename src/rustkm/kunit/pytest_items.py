"""pytest: one item per KUnit case of each module folder, e.g.
`kmods/printerfact/Kbuild::kunit::printerfact::facts_are_distinct` (rooted at the folder's
Kbuild, so that the id selects the case on the command line and `--lf` finds it again: pytest
takes no `::` after a folder).

A module folder (a Kbuild) whose own .rs or .c files declare a suite is built at collection
(builds are cached: seconds) and its cases are read from the .ko, not from the source. The
first case of a module to run boots one guest, loads the module and runs all its suites; the
other cases report from those results. Under xdist's default `load` distribution the cases of
a module are kept on one worker (a scheduler that groups them, every other test alone). On a
kernel without CONFIG_KUNIT (Debian's stock kernels) a folder gives one skipped item saying so.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rustkm.errors import RustkmError
from rustkm.kunit.collect import KunitCase, KunitSuite, read_suites
from rustkm.kunit.ktap import Status
from rustkm.kunit.run import CaseResult, ModuleRun, kernel_has_kunit, run_module
from rustkm.pytest_lanes import build_modules, configured_lanes, lane_kernel

# What a folder's own sources say before anything is built: a Rust or a C suite.
_DECLARES_SUITE = re.compile(r"#\[kunit_tests\(|\bkunit_test_(init_section_)?suites?\(")
KUNIT_SCOPE = "::kunit"  # "::kunit::" with one lane, "::kunit[LANE]::" with several


def declares_suites(folder: Path) -> bool:
    for path in sorted(folder.iterdir()):
        if path.suffix in (".rs", ".c") and path.is_file() \
                and _DECLARES_SUITE.search(path.read_text(errors="replace")):
            return True
    return False


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.name != "Kbuild" or not declares_suites(file_path.parent):
        return None
    kbuild: KbuildFile = KbuildFile.from_parent(parent, path=file_path)
    return kbuild


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under `-n N` (xdist's `load`), the cases of one module go to one worker, so that one
    guest serves them; every other test is scheduled alone, as `load` does."""
    if config.getoption("dist", None) != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class KunitGrouping(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            if KUNIT_SCOPE in nodeid:
                return nodeid.split(KUNIT_SCOPE, 1)[0]
            return nodeid

    return KunitGrouping(config, log)


class KbuildFile(pytest.File):
    """A module folder's Kbuild: its KUnit suites sit below, under `kunit`."""

    def collect(self) -> Iterator[pytest.Collector]:
        lanes = configured_lanes(self.config)
        if len(lanes) > 1:  # as the VM tests: once per lane, the lane in the id
            for lane in lanes:
                yield KunitModule.from_parent(self, name=f"kunit[{lane}]", lane=lane)
        else:
            yield KunitModule.from_parent(self, name="kunit", lane=lanes[0] if lanes else None)


class KunitModule(pytest.Collector):
    """The KUnit suites of one module folder, on one lane."""

    def __init__(self, *, lane: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lane = lane
        self.runs: dict[Path, ModuleRun | RustkmError] = {}
        self.siblings: list[Path] = []  # every .ko the folder builds

    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        try:
            tc, kernel = lane_kernel(self.config, self.lane)
            if not kernel_has_kunit(kernel.config):
                yield KunitUnavailable.from_parent(
                    self, name="suites", reason=f"kernel {kernel.release} has no CONFIG_KUNIT: "
                                                "the module's KUnit suites compile away")
                return
            kos = build_modules((tc, kernel), [self.path.parent])
            found = [(ko, suite) for ko in kos for suite in read_suites(ko)]
        except RustkmError as e:
            yield KunitUnavailable.from_parent(self, name="suites", error=e)
            return
        self.siblings = kos
        for ko, suite in found:
            yield KunitSuiteNode.from_parent(self, name=suite.name, suite=suite, ko=ko)

    def result(self, ko: Path, suite: str, case: str) -> CaseResult:
        """The case's result; the first call for a module boots its guest and runs it all."""
        if ko not in self.runs:
            tc, kernel = lane_kernel(self.config, self.lane)
            logs = self.config.rootpath / ".pytest_cache" / "rustkm" / f"kunit-{ko.stem}.log"
            try:
                self.runs[ko] = run_module(tc, kernel, ko, keep_logs=logs,
                                           siblings=self.siblings)
            except RustkmError as e:
                self.runs[ko] = e
        run = self.runs[ko]
        if isinstance(run, RustkmError):
            raise run
        for result in run.cases():
            if (result.suite, result.name) == (suite, case):
                return result
        raise RustkmError(f"{suite}.{case}: no result (the suite did not run)")


class KunitSuiteNode(pytest.Collector):
    def __init__(self, suite: KunitSuite, ko: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.suite = suite
        self.ko = ko

    def collect(self) -> Iterator[pytest.Item]:
        for case in self.suite.cases:
            yield KunitCaseItem.from_parent(self, name=case.name, case=case)


class KunitCaseFailed(Exception):
    pass


class KunitCaseItem(pytest.Item):
    def __init__(self, case: KunitCase, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case
        module = self.parent.parent if self.parent else None
        group = f"rustkm-kunit-{module.nodeid if module else self.nodeid}"
        self.add_marker(pytest.mark.xdist_group(group))

    @property
    def _suite(self) -> KunitSuiteNode:
        assert isinstance(self.parent, KunitSuiteNode)
        return self.parent

    def runtest(self) -> None:
        module = self._suite.parent
        assert isinstance(module, KunitModule)
        result = module.result(self._suite.ko, self._suite.suite.name, self.case.name)
        if result.status is Status.SKIP:
            raise pytest.skip.Exception(result.reason or "skipped by KUnit (a #[cfg]'d-out "
                                        "Rust case, or kunit_skip)", _use_item_location=True)
        if result.status is Status.TODO:
            pytest.xfail(result.reason or "KUnit TODO")
        if result.status.failed:
            raise KunitCaseFailed(short_paths(result.message, self.config.rootpath))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        if isinstance(excinfo.value, (KunitCaseFailed, RustkmError)):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, 0, f"kunit {self._suite.suite.name}.{self.case.name}"


class KunitUnavailable(pytest.Item):
    """A folder whose suites cannot be listed: skipped (no KUnit) or failed (no build)."""

    def __init__(self, reason: str = "", error: RustkmError | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reason = reason
        self.error = error

    def runtest(self) -> None:
        if self.error is not None:
            raise self.error
        raise pytest.skip.Exception(self.reason, _use_item_location=True)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        return str(excinfo.value)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, 0, "kunit suites"


def short_paths(text: str, root: Path) -> str:
    """Paths under the project shown relative to it (KUnit prints the absolute source path)."""
    return text.replace(f"{root}/", "")
