"""`rustkm demo`: from a bare machine to a printer fact read from /dev/printerfact in a VM."""

from __future__ import annotations

from pathlib import Path

from rustkm.errors import RustkmError
from rustkm.log import console, step
from rustkm.machine import boot
from rustkm.module import build_module
from rustkm.project import find_project
from rustkm.session import prepare_kernel


def printerfact_folder() -> Path:
    project = find_project()
    for folder in (project.root / "kmods" / "printerfact", Path.cwd() / "kmods" / "printerfact"):
        if (folder / "printerfact.rs").is_file():
            return folder
    raise RustkmError("kmods/printerfact not found", hint="run the demo from the rustkm checkout")


def run_demo() -> int:
    with step("rustkm demo"):
        with step("toolchain and kernel"):
            tc, kernel = prepare_kernel()
        module = build_module(tc, kernel, printerfact_folder())
        with boot(kernel, module.modules, toolchain=tc, name="demo") as vm:
            vm.insmod("printerfact")
            fact = vm.succeed("cat /dev/printerfact").strip()
    console.print(f"\n[bold]A printer fact from /dev/printerfact, inside a Linux {kernel.release} "
                  f"VM:[/]\n\n    {fact}\n", highlight=False)
    return 0
