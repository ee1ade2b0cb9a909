"""Which lane a command runs on: its options first, then the environment (RUSTKM_KERNEL,
RUSTKM_DEBUG_KERNEL=1, RUSTKM_ARCH), then the default. Read once, at the top: by the CLI, the
pytest plugin and rustkm.boot, which hand the chosen Lane on; nothing below reads these
variables.

`--kernel LANE` means the same in every verb, `--rustkm-kernel LANE[,LANE...]` in pytest and
RUSTKM_KERNEL; `--debug`, `--rustkm-debug` and RUSTKM_DEBUG_KERNEL=1 spell the `debug` lane.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from rustkm.arch import arch_from_environment, get_arch
from rustkm.errors import RustkmError
from rustkm.kernel.lane import Lane, resolve_lane, with_arch
from rustkm.log import say
from rustkm.project import Project

# The lane of another architecture when none is named: its stock kernel needs no build.
FOREIGN_DEFAULT = "debian:latest"


def debug_from_environment() -> bool:
    """RUSTKM_DEBUG_KERNEL=1: the debug lane (0 or unset: not asked for)."""
    value = os.environ.get("RUSTKM_DEBUG_KERNEL", "")
    if value not in ("", "0", "1"):
        raise RustkmError(f"RUSTKM_DEBUG_KERNEL={value!r} is neither 1 nor 0",
                          hint="RUSTKM_DEBUG_KERNEL=1 selects the debug kernel (KASAN, "
                               "lockdep); unset it or set 0 for the default one")
    return value == "1"


def environment_lanes() -> str:
    """RUSTKM_KERNEL: one lane, or several separated by commas (pytest); "" when unset."""
    return os.environ.get("RUSTKM_KERNEL", "").strip()


def lane_from_environment() -> tuple[str, str] | None:
    """The lane the environment chooses and the variable that chose it: RUSTKM_KERNEL, else
    RUSTKM_DEBUG_KERNEL=1 (the debug lane); None when it chooses none."""
    if name := environment_lanes():
        return name, "RUSTKM_KERNEL"
    if debug_from_environment():
        return "debug", "RUSTKM_DEBUG_KERNEL=1"
    return None


@dataclass(frozen=True)
class LaneChoice:
    """What a command was asked to run on, before it is resolved against a project."""

    name: str | None = None  # a lane name (None: none was named)
    origin: str = "--kernel"  # what named it, for error messages
    debug: bool = False  # --debug and its spellings
    arch: str = ""  # "" for the host's

    @classmethod
    def ask(cls, name: str | None = None, debug: bool | None = None, arch: str | None = None,
            fallback: str = "default") -> LaneChoice:
        """The options given (None: not given), completed from the environment. `fallback`
        is the lane when nothing names one (`debug` for rustkm fuzz and rustkm debug)."""
        origin = "--kernel"
        if not name and (variable := environment_lanes()):
            name, origin = variable, "RUSTKM_KERNEL"
        if debug is None:
            debug = debug_from_environment()
        if not name and not debug and fallback == "debug":
            debug = True
        return cls(name or None, origin, debug, arch or arch_from_environment())

    def lane(self, project: Project) -> Lane:
        """The lane chosen, resolved against `project`."""
        name = self.name
        if name is None and not self.debug and self.arch and not get_arch(self.arch).is_host:
            # Another architecture's self-built kernel is built by hand: its stock kernel is
            # the lane that needs no build.
            name = FOREIGN_DEFAULT
            say(f"--arch {self.arch}: using the lane {FOREIGN_DEFAULT}@{self.arch} (Debian's "
                f"stock {self.arch} kernel; --kernel chooses another)")
        lane = resolve_lane(with_arch(name or ("debug" if self.debug else "default"), self.arch),
                            project, self.origin)
        if self.debug and not lane.debug:
            if lane.stock or lane.build_dir:
                raise RustkmError(f"the debug lane is a self-built kernel, but {self.origin} "
                                  f"names {lane.kind} lane {lane.name}",
                                  hint="drop --debug (or RUSTKM_DEBUG_KERNEL=1), or choose a "
                                       "self-built lane")
            lane = replace(lane, debug=True)
        return lane
