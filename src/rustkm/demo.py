"""`rustkm demo`: from a bare machine to a printer fact read from /dev/printerfact in a VM.

The first fact comes from the fastest lane that works on a fresh machine: Debian's stock kernel
(no kernel build, about 3 minutes from nothing). When that lane cannot be prepared (the archive
moved, a download failed), the demo says why and uses the self-built kernel instead. A lane
chosen by the user (`--kernel`, RUSTKM_KERNEL, RUSTKM_DEBUG_KERNEL=1) is used as it is.
"""

from __future__ import annotations

from pathlib import Path

from rustkm.errors import RustkmError
from rustkm.kernel.build import KernelBuild
from rustkm.kernel.choice import LaneChoice, lane_from_environment
from rustkm.kernel.guest import guest_kernel
from rustkm.kernel.lane import resolve_lane
from rustkm.kernel.prepare import prepare_lane
from rustkm.log import console, say, step
from rustkm.machine import boot
from rustkm.module import build_module
from rustkm.project import Project, find_project
from rustkm.toolchain import Toolchain

FAST_LANE = "debian:latest"


def printerfact_folder() -> Path:
    project = find_project()
    for folder in (project.root / "kmods" / "printerfact", Path.cwd() / "kmods" / "printerfact"):
        if (folder / "printerfact.rs").is_file():
            return folder
    raise RustkmError("kmods/printerfact not found", hint="run the demo from the rustkm checkout")


def _chosen_by_user(lane: str | None) -> bool:
    return bool(lane or lane_from_environment())


def _prepare(lane: str | None, project: Project) -> tuple[str, Toolchain, KernelBuild]:
    if _chosen_by_user(lane):
        chosen = LaneChoice.ask(lane).lane(project)
        return chosen.name, *prepare_lane(chosen, project)
    try:
        with step(f"the fastest lane: {FAST_LANE} (Debian's stock kernel, no kernel build)"):
            return FAST_LANE, *prepare_lane(resolve_lane(FAST_LANE, project), project)
    except RustkmError as e:
        say(f"Debian's stock kernel could not be prepared: {e.message}; "
            "using the self-built kernel instead")
    return "default", *prepare_lane(resolve_lane("default", project), project)


def run_demo(lane: str | None = None) -> int:
    project = find_project()
    with step("rustkm demo"):
        with step("toolchain and kernel"):
            used, tc, kernel = _prepare(lane, project)
        module = build_module(tc, kernel, printerfact_folder())
        with boot(guest_kernel(kernel), module.modules, toolchain=tc, name="demo") as vm:
            vm.insmod("printerfact")
            fact = vm.succeed("cat /dev/printerfact").strip()
    kind = "Debian's stock " if used.startswith("debian:") else ""
    console.print(f"\n[bold]A printer fact from /dev/printerfact, inside a VM running "
                  f"{kind}Linux {kernel.release} (lane {used}):[/]\n\n    {fact}\n",
                  highlight=False)
    return 0
