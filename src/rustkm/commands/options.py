"""What the verbs share: their kernel, VM and module options, and turning those options into a
lane, a ready kernel and built modules. The lane is chosen here, once per command, from the
options and the environment (rustkm.kernel.choice), and rustkm.lock is read once."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from rustkm.errors import RustkmError

if TYPE_CHECKING:
    from rustkm.kernel.build import KernelBuild
    from rustkm.kernel.lane import Lane
    from rustkm.module import ModuleBuild
    from rustkm.project import Project
    from rustkm.toolchain import Toolchain
    from rustkm.vm import VmOptions


def positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number above 0, not {text!r}")
    return int(text)


def kernel_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", help="debian:SERIES (default debian:7.2) or a kernel tree path")
    p.add_argument("--toolchain", choices=("debian", "host"), help="default: debian")
    p.add_argument("--debug", action="store_true", default=None,
                   help="the debug lane: KASAN, lockdep, atomic-sleep checks, kmemleak")
    p.add_argument("--fragment", action="append", dest="fragments",
                   help="an extra config fragment (file), beside the lane's; repeatable")
    p.add_argument("--kernel", dest="stock", metavar="LANE",
                   help="the kernel lane: default, debug, debian:latest, debian:next, "
                        "debian:RELEASE (stock kernels, pinned in rustkm.lock), a "
                        "[lanes.NAME] of rustkm.toml, or a kernel build folder")
    arch_option(p)


def arch_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", metavar="ARCH",
                   help="the guest's architecture: x86_64 or arm64 (default: the host's, or "
                        "RUSTKM_ARCH); arm64 runs under TCG, on Debian's stock arm64 kernel "
                        "unless --kernel says otherwise")


def vm_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--memory", type=positive, default=256, help="guest memory in MiB")
    p.add_argument("--cpus", type=positive, default=1)
    p.add_argument("--accel", choices=("auto", "kvm", "tcg"), default="auto")
    p.add_argument("--append", action="append", default=[], help="kernel command line word")
    p.add_argument("--device", action="append", default=[], dest="devices", metavar="DEVICE",
                   help="a QEMU device, as -device takes it (e.g. edu, "
                        "qemu-xhci,id=xhci); repeatable")
    p.add_argument("--dt-overlay", action="append", default=[], dest="dt_overlays",
                   type=Path, metavar="FILE",
                   help="a device-tree overlay (.dts or .dtbo) applied to the guest's device "
                        "tree (arm64 guests); repeatable")


def gdb_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gdb", action="store_true",
                   help="start QEMU's gdb stub and print the gdb command that attaches, with "
                        "the modules' symbols (needs a kernel with debug info: --kernel debug)")


def chosen_lane(args: argparse.Namespace, fallback: str = "default") -> tuple[Project, Lane]:
    """The project and the lane the command's options (then the environment) choose, with
    its --source, --toolchain and --fragment; `fallback` when nothing names one."""
    from rustkm.kernel.choice import LaneChoice
    from rustkm.project import find_project

    project = find_project()
    choice = LaneChoice.ask(getattr(args, "stock", None), getattr(args, "debug", None),
                            getattr(args, "arch", None), fallback)
    lane = choice.lane(project).with_options(
        getattr(args, "source", None), getattr(args, "toolchain", None),
        tuple(getattr(args, "fragments", None) or ()))
    return project, lane


def prepared_kernel(args: argparse.Namespace,
                    fallback: str = "default") -> tuple[Toolchain, KernelBuild]:
    """The chosen lane's toolchain and kernel, ready."""
    from rustkm.kernel.prepare import prepare_lane

    project, lane = chosen_lane(args, fallback)
    return prepare_lane(lane, project)


def build_modules(args: argparse.Namespace, dirs: list[Path], coverage: bool = False,
                  fallback: str = "default"
                  ) -> tuple[Toolchain, KernelBuild, list[ModuleBuild]]:
    """The chosen lane's toolchain and kernel, and the modules of `dirs` built for it."""
    tc, kernel = prepared_kernel(args, fallback)
    return tc, kernel, built(tc, kernel, dirs, bool(getattr(args, "clippy", False)), coverage)


def lane_modules(args: argparse.Namespace, dirs: list[Path], coverage: bool = False,
                 fallback: str = "default"
                 ) -> tuple[str, Toolchain, KernelBuild, list[Path]]:
    """The chosen lane's name, toolchain and kernel, and the .ko files of `dirs` built for it
    (for the verbs that boot them and name the lane)."""
    from rustkm.kernel.prepare import prepare_lane

    project, lane = chosen_lane(args, fallback)
    tc, kernel = prepare_lane(lane, project)
    kos = [ko for b in built(tc, kernel, dirs, coverage=coverage) for ko in b.modules]
    return lane.name, tc, kernel, kos


def built(tc: Toolchain, kernel: KernelBuild, dirs: list[Path], clippy: bool = False,
          coverage: bool = False) -> list[ModuleBuild]:
    """The modules of `dirs`, built for `kernel`."""
    from rustkm.module import build_module

    return [build_module(tc, kernel, d, clippy=clippy, coverage=coverage) for d in dirs]


def check_module_folders(folders: list[Path]) -> None:
    """Each folder exists and declares modules (Kbuild with obj-m): checked before the
    toolchain and kernel are prepared, which may take minutes."""
    from rustkm.module import module_names

    for folder in folders:
        path = folder.expanduser().resolve()
        if not path.exists():
            raise RustkmError(f"module folder {path} does not exist")
        if not path.is_dir():
            raise RustkmError(f"{path} is a file, not a module folder",
                              hint="pass the folder holding the module's Kbuild and .rs files")
        module_names(path)


def module_dirs(dirs: list[Path]) -> list[Path]:
    """The folders given (checked), or the project's module folders."""
    from rustkm.project import find_project

    if dirs:
        check_module_folders(dirs)
        return dirs
    project = find_project()
    found = sorted({p.parent for d in project.module_dirs
                    for p in (project.root / d).glob("**/Kbuild")})
    if not found:
        raise RustkmError("no module folders given, and none found in the project",
                          hint="rustkm build path/to/module, or create one: rustkm new NAME")
    return found


def check_device_syntax(devices: list[str]) -> None:
    """A --device that names no driver is refused before the toolchain and kernel; whether
    QEMU has that driver is checked (against QEMU's list) before the boot."""
    from rustkm.devices import device_driver

    for device in devices:
        device_driver(device)


def vm_settings(args: argparse.Namespace) -> VmOptions:
    from rustkm.vm import VmOptions

    return VmOptions(memory_mb=args.memory, cpus=args.cpus, accel=args.accel,
                     append=tuple(args.append), devices=tuple(args.devices),
                     dt_overlays=tuple(str(p) for p in args.dt_overlays))
