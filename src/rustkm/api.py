"""`rustkm.boot`: the Machine API's entry point for scripts and tests. It resolves what to boot
(nothing: the project's kernel lane; a lane name; a kernel build; an image file) into a ready
guest kernel, then boots it with rustkm.machine.boot, which takes ready images only."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from rustkm.kernel.build import KernelBuild
from rustkm.kernel.guest import GuestKernel, guest_kernel
from rustkm.machine import Machine
from rustkm.machine import boot as boot_image
from rustkm.toolchain import Toolchain
from rustkm.vm import VmOptions


@contextmanager
def boot(kernel: GuestKernel | KernelBuild | Path | str | None = None,
         modules: Sequence[Path] = (), *, files: Sequence[tuple[str, Path]] = (),
         options: VmOptions | None = None, name: str = "machine",
         toolchain: Toolchain | None = None,
         keep_logs: Path | None = None) -> Iterator[Machine]:
    """Boot a throwaway guest (`with rustkm.boot() as vm: vm.succeed("uname -r")`).

    `kernel`: None for the project's lane (--kernel, RUSTKM_KERNEL, RUSTKM_DEBUG_KERNEL=1, else
    the default; prepared, and built if need be, first), a lane name (`"debian:latest"`), a
    kernel build, or a kernel image file.
    """
    tc = toolchain
    if kernel is None or (isinstance(kernel, str) and "/" not in kernel
                          and not Path(kernel).is_file()):
        from rustkm.kernel.choice import LaneChoice
        from rustkm.kernel.prepare import prepare_lane
        from rustkm.project import find_project

        project = find_project()
        tc, kernel = prepare_lane(LaneChoice.ask(kernel).lane(project), project)
    with boot_image(guest_kernel(kernel), modules, files=files, options=options, name=name,
                    toolchain=tc, keep_logs=keep_logs) as machine:
        yield machine
