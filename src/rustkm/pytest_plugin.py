"""pytest fixtures: `kernel` (built once per session), `vm` (a fresh guest per test).

    @pytest.mark.rustkm(modules=["."], cpus=2, memory=256, append=["quiet"])
    def test_read(vm):
        vm.insmod("printerfact")
        assert vm.succeed("cat /dev/printerfact")

Module folders in the marker are relative to the test file, as are `files=[(guest path, host
path)]` and `programs=["tool.c"]`: one-file C programs built static with the toolchain's gcc
(cached by their hash) and put at /bin/tool in the guest. `devices=` adds QEMU devices, each
a `-device` string (`"edu"`, `"qemu-xhci,id=xhci"`). The console log of a failed
test is attached to its report.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Generator, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from rustkm.errors import RustkmError, printable
from rustkm.guest_tools import user_program
from rustkm.kernel.build import KernelBuild
from rustkm.kernel.guest import guest_kernel
from rustkm.machine import Machine, boot
from rustkm.pytest_lanes import build_modules, configured_lanes, item_lane, lane_kernel
from rustkm.toolchain import Toolchain
from rustkm.vm import VmOptions

if TYPE_CHECKING:
    from rustkm.keep import Kept

_MODULES = pytest.StashKey[list[Path]]()
_KEPT = pytest.StashKey["Kept"]()
_STACK = pytest.StashKey[ExitStack]()
_kept: list[Kept] = []  # failed tests' guests kept up (--rustkm-keep-on-failure)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rustkm")
    group.addoption("--rustkm-kernel", metavar="LANE[,LANE...]", default=None,
                    help="the kernel lane(s) to test on (as RUSTKM_KERNEL): default, debug, "
                         "debian:latest, debian:next, debian:RELEASE, a [lanes.NAME]; with "
                         "several, each VM test runs once per lane, the lane in its id")
    group.addoption("--rustkm-arch", metavar="ARCH", default=None,
                    help="the guests' architecture (as RUSTKM_ARCH): x86_64 or arm64, under "
                         "TCG; the lanes become LANE@ARCH (Debian's stock kernel when none "
                         "is named)")
    group.addoption("--rustkm-debug", action="store_true", default=False,
                    help="test on the debug kernel: KASAN, lockdep (as RUSTKM_DEBUG_KERNEL=1)")
    group.addoption("--rustkm-keep-on-failure", action="store_true", default=False,
                    help="keep a failed test's VM up: its report says how to attach a shell "
                         "or gdb; a REPL opens at the end of the session (not with -n, not "
                         "in CI)")
    group.addoption("--rustkm-keep-minutes", type=float, default=15.0, metavar="MINUTES",
                    help="how long kept VMs stay up after the session (default 15)")


def pytest_configure(config: pytest.Config) -> None:
    from rustkm.kunit import pytest_items  # KUnit cases of module folders, one item each

    if config.getoption("rustkm_keep_on_failure"):
        from rustkm.keep import refusal

        why = refusal(getattr(config.option, "numprocesses", None),
                      hasattr(config, "workerinput"), dict(os.environ))
        if why:
            raise pytest.UsageError(why)

    config.pluginmanager.register(pytest_items, "rustkm-kunit")
    config.addinivalue_line("markers", "rustkm_lanes(skip={pattern: reason}): the kernel "
                            "lanes (fnmatch patterns) where a test does not apply, and why")
    config.addinivalue_line("markers", "rustkm(modules=[...], cpus=, memory=, append=[...], "
                            "files=[(guest, host)], programs=[...], devices=[...], "
                            "devicetree=[...]): modules to build and put in the `vm` fixture's "
                            "guest, files and C programs, VM options, QEMU devices (-device "
                            "strings), device-tree overlays (arm64 guests)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """With several lanes, every test that needs a kernel runs once per lane."""
    lanes = configured_lanes(metafunc.config)
    if len(lanes) > 1 and "rustkm_lane" in metafunc.fixturenames:
        metafunc.parametrize("rustkm_lane", lanes, indirect=True, ids=lanes, scope="session")


@pytest.fixture(scope="session")
def rustkm_lane(request: pytest.FixtureRequest) -> str | None:
    """The lane of this test: its parameter with several lanes, else the one asked for."""
    if hasattr(request, "param"):
        return str(request.param)
    lanes = configured_lanes(request.config)
    return lanes[0] if lanes else None


@pytest.fixture(scope="session")
def rustkm_kernel(pytestconfig: pytest.Config,
                  rustkm_lane: str | None) -> tuple[Toolchain, KernelBuild]:
    return lane_kernel(pytestconfig, rustkm_lane)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests (or whole files, through pytestmark) declare the lanes where they do not apply:
    @pytest.mark.rustkm_lanes(skip={"debian:*": "why"}), and module folders in their
    rustkm-module.toml; they show as skipped, with why."""
    from rustkm.module_file import lane_skip_reason, module_lane_skip

    for item in items:
        if reason := module_lane_skip(item.path.parent, item_lane(item)):
            # The module folder's rustkm-module.toml: the whole module does not apply.
            item.add_marker(pytest.mark.skip(reason=f"not on lane {item_lane(item)}: {reason}"))
            continue
        marker = item.get_closest_marker("rustkm_lanes")
        if marker is None:
            continue
        skip = marker.kwargs.get("skip", {})
        if not isinstance(skip, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in skip.items()):
            raise pytest.UsageError(f"{item.nodeid}: rustkm_lanes(skip=...) takes a dict of "
                                    "lane name patterns to reasons")
        lane = item_lane(item)
        if reason := lane_skip_reason(skip, lane):
            item.add_marker(pytest.mark.skip(reason=f"not on lane {lane}: {reason}"))


@pytest.fixture(scope="session")
def kernel(rustkm_kernel: tuple[Toolchain, KernelBuild]) -> KernelBuild:
    return rustkm_kernel[1]


@pytest.fixture
def vm(request: pytest.FixtureRequest,
       rustkm_kernel: tuple[Toolchain, KernelBuild]) -> Iterator[Machine]:
    marker = request.node.get_closest_marker("rustkm")
    settings: dict[str, Any] = dict(marker.kwargs) if marker else {}
    here = Path(str(request.node.fspath)).parent
    folders = [here / m for m in settings.pop("modules", ())]
    files = [(g, here / h) for g, h in settings.pop("files", ())]
    tc, kernel = rustkm_kernel
    files += [user_program(here / p, tc, kernel.arch) for p in settings.pop("programs", ())]
    memory = max(settings.pop("memory", VmOptions.memory_mb), kernel.memory_mb)
    devices = settings.pop("devices", ())
    if isinstance(devices, str) or not all(isinstance(d, str) for d in devices):
        raise pytest.UsageError("rustkm marker: devices= takes a list of QEMU -device strings, "
                                "e.g. devices=[\"edu\"]")
    overlays = settings.pop("devicetree", ())
    if isinstance(overlays, str) or not all(isinstance(o, str) for o in overlays):
        raise pytest.UsageError("rustkm marker: devicetree= takes a list of overlay files (.dts "
                                "or .dtbo), e.g. devicetree=[\"dt-overlay.dts\"]")
    hung_task = settings.pop("hung_task_seconds", VmOptions.hung_task_seconds)
    if not isinstance(hung_task, int) or isinstance(hung_task, bool) or hung_task < 1:
        raise pytest.UsageError("rustkm marker: hung_task_seconds= takes a whole number of "
                                f"seconds, 1 or more (got {hung_task!r})")
    options = VmOptions(memory_mb=memory, cpus=settings.pop("cpus", 1),
                        hung_task_seconds=hung_task,
                        append=tuple(settings.pop("append", ())), devices=tuple(devices),
                        dt_overlays=tuple(str(here / o) for o in overlays))
    if settings:
        raise pytest.UsageError(f"unknown rustkm marker options: {', '.join(settings)}")
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)[:60]
    logs = Path(str(request.config.rootpath)) / ".pytest_cache" / "rustkm" / f"{name}.log"
    keeping = bool(request.config.getoption("rustkm_keep_on_failure"))
    if keeping:
        options = dataclasses.replace(options, shell_port=True)  # for `rustkm attach`
    kos = build_modules(rustkm_kernel, folders)
    stack = ExitStack()
    request.node.stash[_MODULES] = kos
    request.node.stash[_STACK] = stack
    try:
        machine = stack.enter_context(boot(guest_kernel(kernel), kos, files=files, options=options,
                                           toolchain=tc, name="machine", keep_logs=logs))
        yield machine
    finally:
        kept = request.node.stash.get(_KEPT, None)
        if kept is not None:
            _kept.append(kept)  # stopped at the end of the session (rustkm.keep.hold)
        else:
            stack.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                               call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    machine = getattr(item, "funcargs", {}).get("vm")
    if report.when == "setup" and isinstance(machine, Machine) and machine.boot_how:
        report.user_properties.append(("rustkm_boot", machine.boot_how))
    if report.failed and isinstance(machine, Machine):
        report.sections.append(("rustkm guest console", printable(machine.console_log[-20000:])))
    if report.when == "call" and report.failed and isinstance(machine, Machine) and \
            item.config.getoption("rustkm_keep_on_failure") and machine.running:
        _keep_guest(item, machine, report)


def _keep_guest(item: pytest.Item, machine: Machine, report: pytest.TestReport) -> None:
    from rustkm.keep import keep

    stack = item.stash[_STACK]
    tc, kernel = item.funcargs["rustkm_kernel"]  # type: ignore[attr-defined]
    try:
        kept = keep(item.nodeid, machine, stack, tc, kernel, item.stash.get(_MODULES, []))
    except RustkmError as e:
        report.sections.append(("rustkm kept guest", f"could not keep the guest: {e.message}"))
        return
    item.stash[_KEPT] = kept
    report.sections.append(("rustkm kept guest", "\n".join(kept.lines)))


def pytest_unconfigure(config: pytest.Config) -> None:
    """Kept guests: after the summary, a REPL (in a terminal) or a wait, then they stop."""
    if not _kept:
        return
    from rustkm.keep import hold

    capture = config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        capture.suspend_global_capture(in_=True)
    hold(_kept, config.getoption("rustkm_keep_minutes"), os.isatty(0))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """How each test's VM started: restored from a snapshot or booted cold, and why (-v)."""
    how: list[tuple[str, str]] = []
    for reports in terminalreporter.stats.values():
        for report in reports:
            for name, value in getattr(report, "user_properties", ()):
                if name == "rustkm_boot":
                    how.append((report.nodeid, str(value)))
    if not how:
        return
    restored = sum(1 for _, value in how if value.startswith("restored"))
    terminalreporter.write_sep("-", f"rustkm: {restored} VM(s) restored from snapshots, "
                                    f"{len(how) - restored} booted cold")
    if config.option.verbose > 0:
        for nodeid, value in sorted(how):
            terminalreporter.write_line(f"{nodeid}: {value}")
