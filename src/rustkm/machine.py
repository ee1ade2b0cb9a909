"""The Machine API: a throwaway QEMU guest driven from Python, after the NixOS test driver."""

from __future__ import annotations

import base64
import shlex
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rustkm.accel import choose_accel
from rustkm.agent import AgentChannel, CommandResult, GuestStuck
from rustkm.console import ConsoleLog
from rustkm.errors import RustkmError
from rustkm.initramfs import GUEST_MODULE_DIR, InitramfsSpec, toolchain_busybox, write_initramfs
from rustkm.log import say, step
from rustkm.oops import Trouble, find_trouble, set_demangler
from rustkm.toolchain import Toolchain, ensure_toolchain
from rustkm.vm import QBOOT, QemuProcess, VmOptions, qemu_argv

DEFAULT_TIMEOUT = 60.0
_COPY_CHUNK = 48 * 1024


class CommandFailed(RustkmError):
    def __init__(self, message: str, result: CommandResult) -> None:
        details = f"stdout:\n{result.out[-2000:]}\nstderr:\n{result.err[-2000:]}"
        super().__init__(message, details=details)
        self.result = result


class KernelTrouble(RustkmError):
    """The guest kernel reported an oops, BUG, WARN, panic, lockup, stall or Rust panic."""

    def __init__(self, troubles: list[Trouble], during: str) -> None:
        kinds = ", ".join(sorted({t.kind for t in troubles}))
        body = "\n\n".join(t.report() for t in troubles)
        super().__init__(f"kernel trouble ({kinds}) during {during}: {troubles[0].title}",
                         details=body)
        self.troubles = troubles


@dataclass(frozen=True)
class GuestKernel:
    """The kernel image to boot (vmlinux boots through PVH, bzImage through firmware)."""

    image: Path
    release: str = ""


class Machine:
    def __init__(self, name: str, tc: Toolchain, kernel: GuestKernel, spec: InitramfsSpec,
                 options: VmOptions, workdir: Path) -> None:
        self.name = name
        self.tc = tc
        self.kernel = kernel
        self.spec = spec
        self.options = options
        self.workdir = workdir
        self.accel = ""
        self._qemu: QemuProcess | None = None
        self._console: ConsoleLog | None = None
        self._agent: AgentChannel | None = None
        self._checked = 0  # console lines already searched for trouble
        self._expected: list[str] = []  # trouble kinds the caller expects right now
        self.troubles: list[Trouble] = []

    # -- life cycle ---------------------------------------------------------------------

    def start(self) -> None:
        initramfs = write_initramfs(self.spec)
        self.accel = choose_accel(self.tc, self.kernel.image, self.options.accel)
        with self._step(f"booting {self.kernel.image.name} ({self.accel}, "
                        f"{self.options.memory_mb} MiB, {self.options.cpus} CPU)"):
            console_sock = self.workdir / "console.sock"
            agent_sock = self.workdir / "agent.sock"
            qboot = (self.tc.root or Path("/")) / QBOOT.lstrip("/")
            argv = qemu_argv(self.kernel.image, initramfs, self.options, self.accel,
                             console_sock, agent_sock, QBOOT if qboot.exists() else None)
            self._qemu = QemuProcess(self.tc, argv, self.workdir,
                                     binds=[self.kernel.image.parent, initramfs.parent])
            self._qemu.connect(console_sock, agent_sock)
            assert self._qemu.console is not None and self._qemu.agent is not None
            self._console = ConsoleLog(self._qemu.console, self.workdir / "console.log")
            self._agent = AgentChannel(self._qemu.agent, self._stop_reason)
            try:
                self._agent.wait_ready(self.options.boot_timeout)
            except GuestStuck as e:
                self._raise_trouble("boot")
                raise GuestStuck(f"{self.name} did not boot: {e.message}",
                                 details=self._console_tail() + "\n" + self._qemu.stderr_text(),
                                 hint=f"the console log is at {self.console_path}") from None
        self._raise_trouble("boot")

    def close(self) -> None:
        """Kill QEMU (the guest is throwaway) and check the console one last time."""
        if self._qemu is None:
            return
        try:
            if self._qemu.alive() and self._console is not None:
                self._console.settle(0.2, 1.0)
            self._raise_trouble("the test (found at teardown)")
        finally:
            self._qemu.kill()
            if self._console is not None:
                self._console.join()
            self._qemu = None

    def shutdown(self, timeout: float = 20.0) -> None:
        """A clean power-off: the guest runs `reboot -f` and QEMU exits (-no-reboot)."""
        assert self._qemu is not None and self._agent is not None
        with self._step("shutting down"):
            self._agent.sock.sendall(b"RUN 0 5 " + base64.b64encode(b"sync; reboot -f") + b"\n")
            if not self._qemu.wait(timeout):
                say(f"{self.name}: did not power off in {timeout:.0f} s; killing QEMU")
        self.close()

    # -- commands -----------------------------------------------------------------------

    def run(self, command: str, timeout: float = DEFAULT_TIMEOUT) -> CommandResult:
        """Run a shell command; return its status, stdout and stderr (bytes). Never raises on
        the exit status; raises GuestStuck if the guest stops answering, KernelTrouble if the
        kernel reports trouble meanwhile."""
        agent = self._require_agent()
        start = len(self._console.lines) if self._console else 0
        with self._step(f"running: {command}"):
            try:
                result = agent.run(command, timeout)
            except GuestStuck as e:
                self._stuck(e, command, start)
                raise
        self._raise_trouble(repr(command))
        if result.timed_out:
            say(f"{self.name}: {command!r} was killed after its {timeout:.0f} s timeout")
        return result

    def execute(self, command: str, timeout: float = DEFAULT_TIMEOUT) -> tuple[int, str]:
        result = self.run(command, timeout)
        return result.status, result.out

    def succeed(self, *commands: str, timeout: float = DEFAULT_TIMEOUT) -> str:
        output = ""
        for command in commands:
            result = self.run(command, timeout)
            if result.status != 0:
                why = "timed out" if result.timed_out else f"failed with status {result.status}"
                raise CommandFailed(f"{self.name}: {command!r} {why}", result)
            output += result.out
        return output

    def fail(self, *commands: str, timeout: float = DEFAULT_TIMEOUT) -> str:
        output = ""
        for command in commands:
            result = self.run(command, timeout)
            if result.status == 0:
                raise CommandFailed(f"{self.name}: {command!r} succeeded but should fail", result)
            output += result.out
        return output

    def wait_until_succeeds(self, command: str, timeout: float = 30.0) -> str:
        return self._retry(command, timeout, want_success=True)

    def wait_until_fails(self, command: str, timeout: float = 30.0) -> str:
        return self._retry(command, timeout, want_success=False)

    def _retry(self, command: str, timeout: float, want_success: bool) -> str:
        end = time.monotonic() + timeout
        while True:
            left = max(1.0, end - time.monotonic())
            result = self.run(command, timeout=left)
            if (result.status == 0) == want_success:
                return result.out
            if time.monotonic() >= end:
                state = "succeed" if want_success else "fail"
                raise CommandFailed(f"{self.name}: {command!r} did not {state} in "
                                    f"{timeout:.0f} s", result)
            time.sleep(0.2)

    def wait_for_file(self, path: str, timeout: float = 30.0) -> None:
        self.wait_until_succeeds(f"test -e {shlex.quote(path)}", timeout)

    def wait_for_console_text(self, pattern: str, timeout: float = 30.0) -> str:
        """The first console line (since boot) matching the regex `pattern`."""
        assert self._console is not None
        with self._step(f"waiting for {pattern!r} on the console"):
            match = self._console.wait_for(pattern, timeout)
        if match is None:
            raise RustkmError(f"{self.name}: {pattern!r} did not appear on the console "
                              f"in {timeout:.0f} s", details=self._console_tail())
        self._raise_trouble(f"waiting for {pattern!r}")
        return match.string

    # -- modules ------------------------------------------------------------------------

    def insmod(self, module: str | Path, timeout: float = DEFAULT_TIMEOUT,
               **params: object) -> None:
        """Load a module by name (one given to boot()) or by host path, with parameters."""
        guest_path = self._module_path(module)
        args = " ".join(shlex.quote(f"{k}={_param(v)}") for k, v in params.items())
        mark = len(self._console.lines) if self._console else 0
        result = self.run(f"insmod {guest_path} {args}".strip(), timeout)
        if result.status != 0:
            raise CommandFailed(f"{self.name}: insmod {Path(guest_path).name} failed: "
                                f"{result.err.strip()}\nkernel log:\n"
                                f"{self._kernel_lines(mark)}", result)

    def rmmod(self, name: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.succeed(f"rmmod {shlex.quote(name)}", timeout=timeout)

    def _module_path(self, module: str | Path) -> str:
        if isinstance(module, Path) or "/" in str(module) or str(module).endswith(".ko"):
            host = Path(module)
            if any(m.name == host.name for m in self.spec.modules):
                return f"{GUEST_MODULE_DIR}/{host.name}"
            guest = f"/tmp/{host.name}"
            self.copy_to(host, guest)
            return guest
        names = [m.name for m in self.spec.modules]
        if f"{module}.ko" not in names:
            raise RustkmError(f"{self.name}: no module {module!r} in this VM",
                              hint=f"pass it to boot(modules=...); this VM has: "
                                   f"{', '.join(names) or 'none'}")
        return f"{GUEST_MODULE_DIR}/{module}.ko"

    def dmesg(self) -> str:
        return self.succeed("dmesg")

    # -- files --------------------------------------------------------------------------

    def copy_to(self, host_path: Path, guest_path: str) -> None:
        data = Path(host_path).read_bytes()
        quoted = shlex.quote(guest_path)
        with self._step(f"copying {host_path} to {guest_path} ({len(data)} bytes)"):
            self._quiet_run(f": > {quoted}")
            for offset in range(0, len(data), _COPY_CHUNK):
                chunk = base64.b64encode(data[offset:offset + _COPY_CHUNK]).decode()
                self._quiet_run(f"echo {chunk} | base64 -d >> {quoted}")

    def copy_from(self, guest_path: str, host_path: Path) -> None:
        result = self.run(f"cat {shlex.quote(guest_path)}")
        if result.status != 0:
            raise CommandFailed(f"{self.name}: cannot read {guest_path}", result)
        Path(host_path).write_bytes(result.stdout)

    def _quiet_run(self, command: str) -> None:
        agent = self._require_agent()
        result = agent.run(command, DEFAULT_TIMEOUT)
        if result.status != 0:
            raise CommandFailed(f"{self.name}: {command[:60]!r} failed", result)

    # -- kernel trouble -----------------------------------------------------------------

    @contextmanager
    def expect_trouble(self, *kinds: str) -> Iterator[list[Trouble]]:
        """Inside the block, trouble of these kinds (e.g. 'warn') is collected, not raised;
        leaving the block without seeing any raises."""
        seen: list[Trouble] = []
        before = len(self.troubles)
        self._expected = list(kinds)
        try:
            yield seen
            if self._console is not None:
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and not any(
                        t.kind in kinds for t in self.troubles[before:]):
                    self._console.settle(0.2, 0.5)
                    self._raise_trouble("an expected-trouble block")
                self._console.settle(0.3, 2.0)
                self._raise_trouble("an expected-trouble block")
        finally:
            self._expected = []
        seen.extend(t for t in self.troubles[before:] if t.kind in kinds)
        if not seen:
            raise RustkmError(f"{self.name}: expected kernel trouble of kind {kinds}, saw none")

    def _raise_trouble(self, during: str) -> None:
        if self._console is None:
            return
        lines = self._console.snapshot()
        found = find_trouble(lines, self._checked)
        if not found:
            self._checked = max(self._checked, len(lines) - 1)
            return
        # Let the report finish printing before cutting it.
        self._console.wait_report_end(found[0].line_number, timeout=10.0)
        lines = self._console.snapshot()
        found = find_trouble(lines, self._checked)
        self._checked = len(lines)
        self.troubles.extend(found)
        unexpected = [t for t in found if t.kind not in self._expected]
        if unexpected:
            raise KernelTrouble(unexpected, during)

    def _stuck(self, error: GuestStuck, command: str, start: int) -> None:
        """The guest stopped answering: report what the kernel said, end this VM."""
        assert self._qemu is not None and self._console is not None
        if self._qemu.alive():
            # khungtaskd looks every hung_task_timeout_secs and needs a task to sit in D state
            # for a whole period, so a report can take up to twice that.
            first = self._console.wait_for(r"INFO: task .+ blocked|Kernel panic|BUG:",
                                           2 * self.options.hung_task_seconds + 5, start)
            if first is not None:
                self._console.wait_report_end(start)
        lines = self._console.snapshot()
        found = find_trouble(lines, start)
        self._checked = len(lines)
        self.troubles.extend(found)
        qemu = self._qemu
        self._qemu.kill()
        self._console.join()
        self._qemu = None
        if found:
            raise KernelTrouble(found, repr(command)) from error
        raise GuestStuck(f"{self.name}: {error.message}",
                         details=self._console_tail() + "\n" + qemu.stderr_text(),
                         hint="the VM was torn down; the next one starts fresh") from error

    def _stop_reason(self) -> str | None:
        if self._qemu is not None and not self._qemu.alive():
            return f"QEMU exited with status {self._qemu.proc.returncode}"
        if self._console is not None and any(
                "Kernel panic - not syncing" in line for line in self._console.lines[-50:]):
            return "the kernel panicked"
        return None

    # -- logs ---------------------------------------------------------------------------

    @property
    def console_log(self) -> str:
        return self._console.text if self._console else ""

    @property
    def console_path(self) -> Path:
        return self.workdir / "console.log"

    def _console_tail(self, lines: int = 40) -> str:
        return "\n".join(self._console.snapshot()[-lines:]) if self._console else ""

    def _kernel_lines(self, start: int) -> str:
        if self._console is None:
            return ""
        self._console.settle(0.1, 0.5)
        return "\n".join(self._console.snapshot(start)[-20:])

    def _require_agent(self) -> AgentChannel:
        if self._agent is None or self._qemu is None:
            raise RustkmError(f"{self.name} is not running")
        return self._agent

    @contextmanager
    def _step(self, what: str) -> Iterator[None]:
        with step(f"{self.name}: {what}"):
            yield


def _param(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


@contextmanager
def boot(kernel: object = None, modules: Sequence[Path] = (), *,
         files: Sequence[tuple[str, Path]] = (), options: VmOptions | None = None,
         name: str = "machine", toolchain: Toolchain | None = None,
         keep_logs: Path | None = None) -> Iterator[Machine]:
    """Boot a throwaway guest; on leaving the block it is gone (QEMU killed if need be)."""
    tc = toolchain or ensure_toolchain()
    set_demangler(tc.wrap(["llvm-cxxfilt"]))
    image = _kernel_image(kernel)
    from rustkm.guest_tools import guest_tools

    spec = InitramfsSpec(modules=tuple(Path(m).resolve() for m in modules),
                         files=(*guest_tools(),
                                *((g, Path(h).resolve()) for g, h in files)),
                         busybox=toolchain_busybox(tc))
    workdir = Path(tempfile.mkdtemp(prefix=f"rustkm-{name}-", dir="/tmp"))
    if options is None:
        options = VmOptions(memory_mb=max(VmOptions.memory_mb, getattr(kernel, "memory_mb", 0)))
    machine = Machine(name, tc, image, spec, options, workdir)
    try:
        machine.start()
        yield machine
    finally:
        try:
            machine.close()
        finally:
            if keep_logs is not None and machine.console_path.exists():
                keep_logs.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(machine.console_path, keep_logs)
            shutil.rmtree(workdir, ignore_errors=True)


def _kernel_image(kernel: object) -> GuestKernel:
    from rustkm.kernel.build import KernelBuild

    if isinstance(kernel, GuestKernel):
        return kernel
    if isinstance(kernel, KernelBuild):
        return GuestKernel(kernel.image, kernel.release)
    if isinstance(kernel, (str, Path)):
        path = Path(kernel)
        if not path.is_file():
            raise RustkmError(f"kernel image {path} does not exist")
        return GuestKernel(path.resolve())
    if kernel is None:
        from rustkm.session import default_kernel

        return _kernel_image(default_kernel())
    raise TypeError(f"cannot boot {kernel!r}")


