"""One QEMU process: its command line, its two serial ports (console, agent), and its reaping."""

from __future__ import annotations

import ctypes
import os
import queue
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rustkm.arch import ARM64, X86_64, Arch
from rustkm.errors import RustkmError
from rustkm.log import say
from rustkm.toolchain import Toolchain
from rustkm.workdir import record_qemu

_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class VmOptions:
    memory_mb: int = 256
    cpus: int = 1
    accel: str = "auto"  # auto, kvm or tcg
    append: tuple[str, ...] = ()  # extra kernel command line words
    network: bool = False  # a user-mode NIC (needs a driver in the kernel)
    boot_timeout: float = 120.0
    hung_task_seconds: int = 10
    shell_port: bool = False  # a third serial port (ttyS2) for an interactive shell
    devices: tuple[str, ...] = ()  # QEMU -device strings (rustkm.devices checks them)
    qemu_args: tuple[str, ...] = field(default=())
    # False: always a cold boot, never saved (the boot itself is what is measured or tested,
    # as for the kernel's own KUnit suites, which run before init).
    snapshot: bool = True
    # Device-tree overlays (.dts or .dtbo host paths) applied to the guest's device tree:
    # arm64 guests only (rustkm.devicetree).
    dt_overlays: tuple[str, ...] = ()


# Under TCG the local APIC timer always fails the kernel's verification (which takes a quarter
# of a second of boot to find out) and the IO-APIC timer check waits on ticks: skipping both
# changes nothing the guest ends up with and cuts cold boots by about 0.5 s (bench: 2.27 s to
# 1.72 s to a ready agent).
_TCG_WORDS = ("noapictimer", "no_timer_check")


def _tcg_words() -> tuple[str, ...]:
    from rustkm.host_tsc import host_tsc_khz

    khz = host_tsc_khz()  # the guest's TSC is the host's: see host_tsc
    return _TCG_WORDS + ((f"tsc_early_khz={khz}", "tsc=reliable") if khz else ())


def kernel_cmdline(options: VmOptions, accel: str = "tcg", arch: Arch = X86_64) -> str:
    x86_tcg = accel == "tcg" and arch == X86_64
    words = [f"console={arch.console}", "panic=-1", "rdinit=/init", "printk.devkmsg=on",
             f"sysctl.kernel.hung_task_timeout_secs={options.hung_task_seconds}",
             "sysctl.kernel.softlockup_panic=0", *(_tcg_words() if x86_tcg else ()),
             *options.append]
    return " ".join(words)


QBOOT = "/usr/share/qemu/qboot.rom"
# The agent's virtio-serial port, as guest/init looks for it in /sys/class/virtio-ports.
VIRTIO_AGENT_PORT = "rustkm.agent"
# The interactive shell's port where the machine has no third UART (arm64's virt has one).
VIRTIO_SHELL_PORT = "rustkm.shell"
# arm64: QEMU's virt machine (PCIe, one PL011 UART, no firmware needed for -kernel). A
# `max` CPU with QEMU's own pointer-authentication algorithm: the architected one (QARMA)
# costs TCG much time at every function return of a kernel built with pointer auth.
ARM64_MACHINE = ("-M", "virt", "-cpu", "max,pauth-impdef=on")


def qemu_argv(kernel: Path, initramfs: Path, options: VmOptions, accel: str,
              console_sock: Path, agent_sock: Path, firmware: str | None = None,
              virtio: bool = False, arch: Arch = X86_64, dtb: Path | None = None) -> list[str]:
    """QEMU's command line. With `virtio` the agent talks over a virtio-serial port (raw
    bytes at memory speed) and the guest gets virtio-rng; its serial slot (ttyS1) stays, empty,
    so that the shell keeps ttyS2. `dtb`: the device tree an arm64 guest boots from (its
    overlays applied), instead of the one QEMU makes."""
    if arch != X86_64:
        return _arm64_argv(kernel, initramfs, options, console_sock, agent_sock, virtio, dtb)
    if options.dt_overlays:
        raise RustkmError("device-tree overlays need a guest that boots from a device tree: "
                          "an x86_64 guest has none",
                          hint="use the arm64 guest (--arch arm64), whose QEMU virt machine "
                               "boots from one")
    # qboot boots faster than SeaBIOS and its MP table lists every vCPU (SeaBIOS's listed
    # only the first one, so a kernel without ACPI saw one CPU).
    argv = ["qemu-system-x86_64", "-accel", accel, "-cpu", "host" if accel == "kvm" else "max",
            "-m", str(options.memory_mb), "-smp", str(options.cpus),
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-kernel", str(kernel), "-initrd", str(initramfs),
            "-append", kernel_cmdline(options, accel),
            "-chardev", f"socket,id=console,path={console_sock},server=on,wait=on",
            "-serial", "chardev:console",
            *(["-bios", firmware] if firmware else []),
            "-chardev", f"socket,id=agent,path={agent_sock},server=on,wait=on"]
    if virtio:
        argv += ["-serial", "null",
                 "-device", "virtio-serial-pci,id=vser0",
                 "-device", f"virtserialport,bus=vser0.0,chardev=agent,name={VIRTIO_AGENT_PORT}",
                 "-device", "virtio-rng-pci"]
    else:
        argv += ["-serial", "chardev:agent"]
    if options.shell_port:
        shell_sock = console_sock.with_name("shell.sock")
        argv += ["-chardev", f"socket,id=shell,path={shell_sock},server=on,wait=off",
                 "-serial", "chardev:shell"]
    if options.network:
        argv += ["-nic", "user,model=e1000"]
    for device in options.devices:
        argv += ["-device", device]
    return argv + list(options.qemu_args)


def arm64_machine(options: VmOptions) -> list[str]:
    """The part of an arm64 guest's command line that shapes its device tree."""
    return ["qemu-system-aarch64", *ARM64_MACHINE, "-accel", "tcg", "-m", str(options.memory_mb),
            "-smp", str(options.cpus), "-nodefaults", "-no-user-config", "-display", "none"]


def _arm64_argv(kernel: Path, initramfs: Path, options: VmOptions, console_sock: Path,
                agent_sock: Path, virtio: bool, dtb: Path | None) -> list[str]:
    """arm64 on QEMU's virt machine, always under TCG. Its only UART is the console: the
    agent needs the virtio-serial channel, and the shell gets a virtio port of its own."""
    if not virtio:
        raise RustkmError("an arm64 guest needs virtio-pci and virtio-console for its agent "
                          "(virt has one serial port, the console)",
                          hint="use a kernel with CONFIG_VIRTIO_PCI and CONFIG_VIRTIO_CONSOLE "
                               "(Debian's arm64 kernels have both)")
    argv = [*arm64_machine(options), "-no-reboot", *(["-dtb", str(dtb)] if dtb else []),
            "-kernel", str(kernel), "-initrd", str(initramfs),
            "-append", kernel_cmdline(options, "tcg", ARM64),
            "-chardev", f"socket,id=console,path={console_sock},server=on,wait=on",
            "-serial", "chardev:console",
            "-chardev", f"socket,id=agent,path={agent_sock},server=on,wait=on",
            "-device", "virtio-serial-pci,id=vser0",
            "-device", f"virtserialport,bus=vser0.0,chardev=agent,name={VIRTIO_AGENT_PORT}",
            "-device", "virtio-rng-pci"]
    if options.shell_port:
        shell_sock = console_sock.with_name("shell.sock")
        # A virtio console, not a plain port: the shell needs a terminal (hvc0, the only one).
        argv += ["-chardev", f"socket,id=shell,path={shell_sock},server=on,wait=off",
                 "-device", f"virtconsole,bus=vser0.0,chardev=shell,name={VIRTIO_SHELL_PORT}"]
    if options.network:
        argv += ["-nic", "user,model=virtio-net-pci"]
    else:
        argv += ["-nic", "none"]  # virt would add a NIC of its own
    for device in options.devices:
        argv += ["-device", device]
    return argv + list(options.qemu_args)


def shell_device(arch: Arch) -> str:
    """The guest's terminal of the interactive shell: ttyS2, or arm64's virtio console (hvc0:
    its only one, as the kernel's console is the PL011)."""
    return "/dev/ttyS2" if arch == X86_64 else "/dev/hvc0"


def _die_with_parent() -> None:
    # The QEMU (bwrap) process gets SIGKILL when this Python process dies, even by kill -9.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    os.setsid()  # Ctrl-C in the terminal goes to us; we decide when QEMU ends.


class _Spawner:
    """Starts QEMU processes from one thread that lives as long as this process.

    PR_SET_PDEATHSIG fires when the *thread* that forked the child ends, not the process: a
    QEMU started from a short-lived worker thread died with that thread. Forking from a thread
    that never ends ties QEMU's life to the process, as intended.
    """

    def __init__(self) -> None:
        self._requests: queue.Queue[tuple[Callable[[], object], queue.Queue[object]]] = \
            queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def call(self, start: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, name="rustkm-spawner",
                                                daemon=True)
                self._thread.start()
        answer: queue.Queue[object] = queue.Queue(1)
        self._requests.put((start, answer))
        result = answer.get()
        if isinstance(result, BaseException):
            raise result
        assert isinstance(result, subprocess.Popen)
        return result

    def _serve(self) -> None:
        while True:
            start, answer = self._requests.get()
            try:
                answer.put(start())
            except BaseException as e:  # noqa: BLE001 (handed to the caller's thread)
                answer.put(e)


_spawner = _Spawner()
_KILL_WAIT = 10.0


class QemuProcess:
    """A started QEMU with both serial ports connected. `kill()` is idempotent."""

    def __init__(self, tc: Toolchain, argv: list[str], workdir: Path, binds: list[Path]) -> None:
        self.workdir = workdir
        self.stderr_path = workdir / "qemu.stderr"
        self._stderr = self.stderr_path.open("wb")
        command = tc.wrap(argv, binds=binds)
        self.proc = _spawner.call(lambda: subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=self._stderr, stderr=self._stderr,
            preexec_fn=_die_with_parent))  # noqa: PLW1509 (PDEATHSIG only)
        record_qemu(workdir, self.proc.pid)
        self.console: socket.socket | None = None
        self.agent: socket.socket | None = None

    def connect(self, console_sock: Path, agent_sock: Path, timeout: float = 30) -> None:
        self.console = self._connect(console_sock, timeout)
        self.agent = self._connect(agent_sock, timeout)

    def _connect(self, path: Path, timeout: float) -> socket.socket:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RustkmError(f"QEMU exited with status {self.proc.returncode} at start",
                                  details=self.stderr_text())
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(str(path))
                return sock
            except (FileNotFoundError, ConnectionRefusedError):
                sock.close()
                if time.monotonic() > deadline:
                    raise RustkmError(f"QEMU did not open {path.name} in {timeout:.0f} s",
                                      details=self.stderr_text()) from None
                time.sleep(0.01)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def killed(self) -> int | None:
        """The signal that ended QEMU, if one did (None while it runs or after a normal exit).
        QEMU runs under bubblewrap, which reports its child's death by signal N as 128 + N."""
        code = self.proc.poll()
        if code is None:
            return None
        if code < 0:
            return -code
        return code - 128 if 128 < code < 128 + 65 else None

    def stderr_text(self) -> str:
        if not self._stderr.closed:
            self._stderr.flush()
        try:
            return self.stderr_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def wait(self, timeout: float) -> bool:
        try:
            self.proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(_KILL_WAIT)
            except subprocess.TimeoutExpired:
                say(f"QEMU (pid {self.proc.pid}) did not end {_KILL_WAIT:.0f} s after SIGKILL "
                    "(stuck in the host kernel?); leaving it")
        for sock in (self.console, self.agent):
            if sock is not None:
                sock.close()
        self._stderr.close()
