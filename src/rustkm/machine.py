"""The Machine API: a throwaway QEMU guest driven from Python, after the NixOS test driver."""

from __future__ import annotations

import functools
import os
import re
import shlex
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from rustkm.accel import choose_accel
from rustkm.agent import AgentChannel, AgentError, CommandResult, GuestStuck
from rustkm.arch import Arch, arch_of_machine, get_arch
from rustkm.console import ConsoleLog
from rustkm.crash import DEVICES as CRASH_DEVICES
from rustkm.crash import (
    FW_CFG_WORD,
    DumpContext,
    dumps_wanted,
    save_dump,
)
from rustkm.crash import QEMU_ARGS as CRASH_QEMU_ARGS
from rustkm.devices import check_devices, qemu_device_names, snapshot_obstacle
from rustkm.devicetree import merged_dtb
from rustkm.errors import RustkmError
from rustkm.host_file import replacing
from rustkm.initramfs import GUEST_MODULE_DIR, InitramfsSpec, toolchain_busybox, write_initramfs
from rustkm.kernel.guest import GuestKernel
from rustkm.log import say, step
from rustkm.modinfo import read_module
from rustkm.oops import Trouble, classify, find_trouble, set_demangler, strip_timestamp
from rustkm.qmp import QmpClient, vcpu_places
from rustkm.snapshot import Snapshot, discard, find, restore, save, snapshot_key, snapshots_enabled
from rustkm.toolchain import Toolchain, ensure_toolchain, toolchain_named
from rustkm.vm import QBOOT, VIRTIO_AGENT_PORT, QemuProcess, VmOptions, arm64_machine, qemu_argv
from rustkm.workdir import make_workdir

DEFAULT_TIMEOUT = 60.0
_COPY_CHUNK = 1 << 20
# What guest/init prints when the agent dies: the call in flight ends at once, saying so.
_AGENT_DIED = re.compile(r"^rustkm: agent exited with status (\d+)")
# Kernel reports that mean a guest stalled before its agent started.
_BOOT_LOCKUPS = ("soft-lockup", "hard-lockup", "rcu-stall")


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


class Machine:
    def __init__(self, name: str, tc: Toolchain, kernel: GuestKernel, spec: InitramfsSpec,
                 options: VmOptions, workdir: Path,
                 files: Sequence[tuple[str, Path]] = ()) -> None:
        self.name = name
        self.files = tuple(files)  # (guest path, host path): the caller's files
        self.tc = tc
        self.kernel = kernel
        self.spec = spec
        self.options = options
        self.workdir = workdir
        self.accel = ""
        self._qemu: QemuProcess | None = None
        self._console: ConsoleLog | None = None
        self._agent: AgentChannel | None = None
        self._agent_ready = False  # it greeted (or was restored): it can be asked things
        self._boot_lockup: str | None = None  # the lockup the kernel reported at boot
        self._qmp: QmpClient | None = None
        self._checked = 0  # console lines already searched for trouble
        self._request_mark = 0  # console lines before the request in flight
        self.boot_how = ""  # "restored from snapshot KEY" or "cold boot: WHY"
        self.snapshot_key = ""  # the snapshot this VM was restored from or saved as
        self._expected: list[str] = []  # trouble kinds the caller expects right now
        self.troubles: list[Trouble] = []
        self._dumps = False  # pause at a panic and save the memory (rustkm.crash)
        self.crash_dump: Path | None = None  # the dump folder saved at a panic, if any
        self._dtb: Path | None = None  # an arm64 guest's device tree with its overlays

    # -- life cycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Boot the guest: restored from a snapshot where one fits, else cold (saving one);
        then the modules and files go in, and the agent is ready.

        Over virtio one snapshot serves every module set: modules and files are copied in
        after the restore. A serial port takes some 30 KB/s from the host, so there they are
        baked into the initramfs instead, and the snapshot is keyed by it.
        """
        self.accel = choose_accel(self.tc, self.kernel.image, self.options.accel,
                                  get_arch(self.kernel.arch))
        self._dumps = dumps_wanted(not self.kernel.crash_missing, list(self.kernel.crash_missing))
        full = replace(self.spec, files=(*self.spec.files, *self.files))
        if not snapshots_enabled():
            self._boot(write_initramfs(full), "cold boot: snapshots are off (RUSTKM_SNAPSHOTS=0)")
            return
        if not self.options.snapshot:
            self._boot(write_initramfs(full), "cold boot: this VM's boot is part of its test")
            return
        if obstacle := snapshot_obstacle(self.options.devices):
            self._boot(write_initramfs(full), f"cold boot: {obstacle}")
            return
        push = bool(self.spec.agent_virtio)
        initramfs = write_initramfs(replace(self.spec, modules=()) if push else full)
        key = self.snapshot_key = self._snapshot_key(initramfs)
        snapshot = find(key)
        if snapshot is not None:
            try:
                self._boot(initramfs, f"restored from snapshot {key}", snapshot)
            except RustkmError as e:
                if self._qemu is not None and self._qemu.killed() is not None:
                    raise  # QEMU was killed: a guest death, not a bad snapshot
                say(f"{self.name}: snapshot {key} did not restore ({e.message}); it is "
                    "removed, and this VM boots cold and saves a new one")
                self._teardown()
                discard(snapshot)
                snapshot = None
        if snapshot is None:
            self._boot(initramfs, f"cold boot: no snapshot yet for this kernel and VM options "
                                  f"(saving {key})")
            self._settle_clock()
            assert self._qmp is not None
            with self._step("saving the booted guest as a snapshot"):
                try:
                    saved = save(self._qmp, key)
                except (RustkmError, OSError) as e:
                    # Nothing partial was published; this VM goes on, the next one retries.
                    say(f"{self.name}: could not save snapshot {key}: {e}")
                    saved = None
                self._qmp.execute("cont")
            if saved is not None:
                say(f"snapshot {key}: {saved.size >> 20} MiB")
        if push:
            self._push_payload()

    def _settle_clock(self) -> None:
        """Wait (at most 3 s) until the guest has left its early TSC clocksource. The kernel
        moves to its final one by a work item about a second after boot; a guest saved before
        that ran it after every restore, against a clock that jumped, and some of them lost
        their timer ticks (a `sleep 2` that never ended)."""
        with self._step("waiting for the guest's final clocksource"):
            self.run("i=0; while grep -qw tsc-early "
                     "/sys/devices/system/clocksource/clocksource0/available_clocksource "
                     "&& [ $i -lt 300 ]; do sleep 0.01; i=$((i+1)); done", timeout=10)

    def _snapshot_key(self, initramfs: Path) -> str:
        """Everything that shapes the booted guest: QEMU's whole command line (the kernel's
        included, socket paths aside), the kernel file, the initramfs (by content) and the
        QEMU version."""
        image = self.kernel.image.stat()
        argv = self._qemu_argv(initramfs, Path("console.sock"), Path("agent.sock"))
        return snapshot_key(argv=argv, kernel_file=(image.st_size, image.st_mtime_ns),
                            qemu=self.tc.versions().get("qemu", ""))

    def _qemu_argv(self, initramfs: Path, console_sock: Path, agent_sock: Path) -> list[str]:
        qboot = (self.tc.root or Path("/")) / QBOOT.lstrip("/")
        options = self.options
        if self._dumps:
            options = replace(options, devices=(*options.devices, *CRASH_DEVICES),
                              append=(*options.append, FW_CFG_WORD),
                              qemu_args=(*options.qemu_args, *CRASH_QEMU_ARGS))
        return qemu_argv(self.kernel.image, initramfs, options, self.accel, console_sock,
                         agent_sock, QBOOT if qboot.exists() else None,
                         virtio=bool(self.spec.agent_virtio), arch=get_arch(self.kernel.arch),
                         dtb=self._device_tree())

    def _device_tree(self) -> Path | None:
        """The arm64 guest's device tree with the VM's overlays, made once per VM (cached)."""
        if not self.options.dt_overlays or get_arch(self.kernel.arch).name != "arm64":
            return None  # qemu_argv refuses overlays for a guest without a device tree
        if self._dtb is None:
            self._dtb = merged_dtb(self.tc, arm64_machine(self.options),
                                   self.tc.versions().get("qemu", ""), self.options.dt_overlays)
        return self._dtb

    def _boot(self, initramfs: Path, how: str, snapshot: Snapshot | None = None) -> None:
        """Boot (or restore) once. A cold boot whose kernel locks up before the agent starts
        (no module of the test loaded yet) boots once more, saying so: under TCG a 2-CPU
        guest has been seen, about once in a thousand boots, to stall for good in the
        stop_machine of its switch to the final TSC clocksource."""
        try:
            self._boot_once(initramfs, how, snapshot)
        except RustkmError as e:
            lockup = self._boot_lockup
            if snapshot is not None or lockup is None:
                raise
            places = vcpu_places(self._qmp) if self._qmp is not None else ""
            say(f"{self.name}: the guest locked up while booting ({lockup}); it boots once "
                f"more. Its vCPUs:\n{places}\nIts console:\n{self._console_tail(25)}")
            self._teardown()
            try:
                self._boot_once(initramfs, f"{how}; booted twice, the first boot locked up: "
                                           f"{lockup}")
            except RustkmError as again:
                again.message = f"{again.message} (the boot before locked up too: {lockup})"
                raise again from e

    def _boot_once(self, initramfs: Path, how: str, snapshot: Snapshot | None = None) -> None:
        self.boot_how = how
        self._boot_lockup = None
        with self._step(f"booting {self.kernel.image.name} ({self.accel}, "
                        f"{self.options.memory_mb} MiB, {self.options.cpus} CPU): {how}"):
            console_sock = self.workdir / "console.sock"
            agent_sock = self.workdir / "agent.sock"
            qmp_sock = self.workdir / "qmp.sock"
            argv = self._qemu_argv(initramfs, console_sock, agent_sock)
            argv += ["-qmp", f"unix:{qmp_sock},server=on,wait=off"]
            if snapshot is not None:
                argv += ["-incoming", "defer"]
            binds = [self.kernel.image.parent, initramfs.parent]
            self._qemu = QemuProcess(self.tc, argv, self.workdir, binds=binds)
            try:
                self._qemu.connect(console_sock, agent_sock)
                assert self._qemu.console is not None and self._qemu.agent is not None
                self._console = ConsoleLog(self._qemu.console, self.workdir / "console.log")
                self._agent = AgentChannel(self._qemu.agent, self._stop_reason)
                self._qmp = QmpClient(qmp_sock)
            except (RustkmError, OSError) as e:
                raise _refused_start(self._qemu, e) from None
            try:
                self._agent_ready = False
                if snapshot is not None:
                    restore(self._qmp, snapshot)
                    self._agent.seed()
                else:
                    self._agent.wait_ready(self.options.boot_timeout)
                self._agent_ready = True
            except GuestStuck as e:
                self._raise_trouble("boot")
                raise GuestStuck(f"{self.name} did not boot: {e.message}",
                                 details=self._console_tail() + "\n" + self._qemu.stderr_text(),
                                 hint=f"the console log is at {self.console_path}") from None
        self._raise_trouble("boot")

    def _push_payload(self) -> None:
        """Modules and files, for a guest restored from (or saved as) a common snapshot."""
        payload = [(f"{GUEST_MODULE_DIR}/{m.name}", m) for m in self.spec.modules]
        payload += list(self.files)
        if not payload:
            return
        with self._step(f"copying {len(payload)} module(s) and file(s) in"):
            for guest_path, host_path in payload:
                self.copy_to(host_path, guest_path)

    def qmp(self, command: str, **arguments: object) -> object:
        """Send a QMP command to this VM's QEMU (`vm.qmp("query-status")`); returns QEMU's
        answer, raises QmpError with QEMU's reason."""
        if self._qmp is None:
            raise RustkmError(f"{self.name} is not running")
        return self._qmp.execute(command, **arguments)

    def _teardown(self) -> None:
        if self._qmp is not None:
            self._save_crash_dump()
            self._qmp.close()
            self._qmp = None
        if self._qemu is not None:
            self._qemu.kill()
            if self._console is not None:
                self._console.join()
            self._qemu = None

    def _save_crash_dump(self) -> None:
        """A guest paused at its panic (pvpanic): its memory goes to a dump folder."""
        if not self._dumps or self._qmp is None or self._qemu is None or \
                not self._qemu.alive() or self.crash_dump is not None:
            return
        try:
            status = self._qmp.execute("query-status")
            if not isinstance(status, dict) or status.get("status") != "guest-panicked":
                return
            with self._step("the guest panicked: saving its memory for rustkm crash"):
                context = DumpContext(self.name, self.kernel.vmlinux, self.kernel.release,
                                      self.spec.modules)
                self.crash_dump = save_dump(self._qmp, context, self._console_tail(80))
            say(f"{self.name}: crash dump saved: rustkm crash {self.crash_dump}")
        except (RustkmError, OSError) as e:
            say(f"{self.name}: the guest panicked, but its memory could not be saved: {e}")

    def _dump_hint(self, error: RustkmError) -> RustkmError:
        if self.crash_dump is not None:
            error.hint = (f"{error.hint}; " if error.hint else "") + \
                f"the guest's memory at the panic: rustkm crash {self.crash_dump}"
        return error

    def debugger_may_hold(self) -> None:
        """A debugger is attached or may be: while it holds the guest stopped at a breakpoint
        no request is reported as a stuck guest (the guest's own command timeouts still apply,
        on its clock)."""
        self._require_agent().debugger_may_hold = True

    @property
    def running(self) -> bool:
        """Whether this guest's QEMU is up."""
        return self._qemu is not None and self._qemu.alive()

    def close(self) -> None:
        """Kill QEMU (the guest is throwaway) and check the console one last time; raises
        KernelTrouble for trouble found there."""
        if self._qemu is None:
            return
        try:
            if self._qemu.alive() and self._console is not None:
                self._drain_console()
            self._raise_trouble("the test (found at teardown)")
        except RustkmError as e:
            self._teardown()  # saves the dump of a guest paused at its panic
            self._dump_hint(e)
            raise
        finally:
            self._teardown()

    def _drain_console(self) -> None:
        """Wait until the console has printed everything the kernel logged so far: a mark
        written to the kernel log comes out after it. (A quiet spell is no proof: a loaded
        host can stall the guest in the middle of a report.)"""
        assert self._console is not None and self._agent is not None
        if not self._agent_ready:  # a boot that failed: nobody to write the mark
            self._console.settle(0.2, 1.0)
            return
        mark = f"rustkm-teardown-{os.urandom(6).hex()}"
        start = len(self._console.lines)
        try:
            self._agent.run(f"echo {mark} > /dev/kmsg", 10)
        except (GuestStuck, AgentError):
            self._console.settle(0.2, 1.0)
            return
        if self._console.wait_for(re.escape(mark), 10.0, start) is None:
            self._console.settle(0.2, 1.0)

    def shutdown(self, timeout: float = 20.0) -> None:
        """A clean power-off: the guest syncs and runs `reboot -f`, QEMU exits (-no-reboot);
        QEMU is killed if it has not exited after `timeout` seconds."""
        assert self._qemu is not None and self._agent is not None
        with self._step("shutting down"):
            self._agent.start("sync; reboot -f", 5)
            if not self._qemu.wait(timeout):
                say(f"{self.name}: did not power off in {timeout:.0f} s; killing QEMU")
        self.close()

    # -- commands -----------------------------------------------------------------------

    def run(self, command: str, timeout: float = DEFAULT_TIMEOUT) -> CommandResult:
        """Run a shell command; return its status, stdout and stderr (bytes). Never raises on
        the exit status; raises GuestStuck if the guest stops answering, KernelTrouble if the
        kernel reports trouble meanwhile."""
        with self._step(f"running: {command}"):
            result = self._call(command, lambda agent: agent.run(command, timeout))
        if result.timed_out:
            say(f"{self.name}: {command!r} was killed after its {timeout:.0f} s timeout, "
                "with everything it started")
        return result

    def _call(self, what: str, request: Callable[[AgentChannel], CommandResult]) -> CommandResult:
        """One agent request; kernel trouble, a dead agent and a broken channel all raise."""
        agent = self._require_agent()
        start = self._request_mark = len(self._console.lines) if self._console else 0
        try:
            result = request(agent)
        except GuestStuck as e:
            self._stuck(e, what, start)
            raise
        except AgentError as e:
            self._raise_trouble(repr(what))
            e.details = self._console_tail(20)
            raise
        self._raise_trouble(repr(what))
        return result

    def execute(self, command: str, timeout: float = DEFAULT_TIMEOUT) -> tuple[int, str]:
        """Run a shell command; return (status, stdout as text). Never raises on the status
        (`rc, out = vm.execute("false")`)."""
        result = self.run(command, timeout)
        return result.status, result.out

    def succeed(self, *commands: str, timeout: float = DEFAULT_TIMEOUT) -> str:
        """Run each command in turn; return their stdout joined. Raises CommandFailed (with
        stdout and stderr) on the first that exits non-zero or times out."""
        output = ""
        for command in commands:
            result = self.run(command, timeout)
            if result.status != 0:
                why = "timed out" if result.timed_out else f"failed with status {result.status}"
                raise CommandFailed(f"{self.name}: {command!r} {why}", result)
            output += result.out
        return output

    def fail(self, *commands: str, timeout: float = DEFAULT_TIMEOUT) -> str:
        """Run each command in turn; raise CommandFailed if one of them succeeds. Returns
        their stdout joined."""
        output = ""
        for command in commands:
            result = self.run(command, timeout)
            if result.status == 0:
                raise CommandFailed(f"{self.name}: {command!r} succeeded but should fail", result)
            output += result.out
        return output

    def wait_until_succeeds(self, command: str, timeout: float = 30.0) -> str:
        """Run `command` until it exits 0 (every 0.2 s), at most `timeout` seconds; returns
        its stdout, raises CommandFailed with the last attempt's output."""
        return self._retry(command, timeout, want_success=True)

    def wait_until_fails(self, command: str, timeout: float = 30.0) -> str:
        """Run `command` until it exits non-zero, at most `timeout` seconds."""
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
        """Wait until `path` exists in the guest."""
        self.wait_until_succeeds(f"test -e {shlex.quote(path)}", timeout)

    def wait_for_console_text(self, pattern: str, timeout: float = 30.0) -> str:
        """The first console line (since boot) matching the regex `pattern`. The serial
        console can lose or cut a line when the host is loaded; a line the console lacks
        after a couple of seconds is looked for in the kernel log too (dmesg)."""
        assert self._console is not None
        deadline = time.monotonic() + timeout
        with self._step(f"waiting for {pattern!r} on the console"):
            match = self._console.wait_for(pattern, min(timeout, 2.0))
            while match is None and time.monotonic() < deadline:
                if line := self._kernel_log_line(pattern):
                    # Logged: the console may only lag behind (a loaded host); give it time.
                    match = self._console.wait_for(pattern, 5.0)
                    if match is None:
                        say(f"{self.name}: {pattern!r} is in the kernel log but not on the "
                            "console (it lost the line)")
                        self._raise_trouble(f"waiting for {pattern!r}")
                        return line
                    break
                match = self._console.wait_for(pattern, min(2.0, deadline - time.monotonic()))
        if match is None:
            raise RustkmError(f"{self.name}: {pattern!r} did not appear on the console "
                              f"in {timeout:.0f} s", details=self._console_tail())
        self._raise_trouble(f"waiting for {pattern!r}")
        return match.string

    @contextmanager
    def subtest(self, name: str) -> Iterator[None]:
        """Group what runs inside under `name` in the log, nested and timed, as the NixOS
        driver's subtest does: `with vm.subtest("reads are uniform"): ...`. An exception
        inside is re-raised with the subtest's name in front."""
        with self._step(f"subtest: {name}"):
            try:
                yield
            except RustkmError as e:
                e.message = f"subtest {name!r}: {e.message}"
                e.args = (e.message,)
                raise

    # -- modules ------------------------------------------------------------------------

    def insmod(self, module: str | Path, timeout: float = DEFAULT_TIMEOUT,
               **params: object) -> None:
        """Load a module by name (one given to boot()) or by host path, with parameters as
        keywords (`vm.insmod("hello", count=3)`). Raises CommandFailed with the kernel's log
        when insmod fails, or when it succeeds and the module is nonetheless not loaded."""
        host, guest_path = self._module_path(module)
        args = " ".join(shlex.quote(f"{k}={_param(v)}") for k, v in params.items())
        mark = len(self._console.lines) if self._console else 0
        result = self.run(f"insmod {shlex.quote(guest_path)} {args}".strip(), timeout)
        if result.status != 0:
            raise CommandFailed(f"{self.name}: insmod {host.name} failed: "
                                f"{result.err.strip()}\nkernel log:\n"
                                f"{self._kernel_lines(mark)}", result)
        loaded = _loaded_name(host)
        check = self.run(f"test -d /sys/module/{shlex.quote(loaded)}")
        if check.status != 0:
            raise CommandFailed(f"{self.name}: insmod {host.name} reported success, but no "
                                f"module {loaded!r} is loaded", result)

    def rmmod(self, name: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Unload a module by name; raises CommandFailed with rmmod's message."""
        self.succeed(f"rmmod {shlex.quote(name)}", timeout=timeout)

    def _check_module_arch(self, host: Path) -> None:
        """Refuse a module built for another architecture than the guest's, with the reason
        (the guest's insmod would say only "Exec format error")."""
        try:
            machine = read_module(host).machine
        except Exception:  # noqa: BLE001 (not a module rustkm can read: insmod judges it)
            return
        guest = get_arch(self.kernel.arch)
        if machine != guest.elf_machine:
            built = arch_of_machine(machine)
            raise RustkmError(f"{self.name}: {host.name} is built for "
                              f"{built.name if built else f'ELF machine {machine}'}, and this "
                              f"guest is {guest.name}",
                              hint=f"build it for the guest's lane (--arch {guest.name})")

    def _module_path(self, module: str | Path) -> tuple[Path, str]:
        """The module's host file and its path in the guest (copied in if it is not there)."""
        if isinstance(module, Path) or "/" in str(module) or str(module).endswith(".ko"):
            host = Path(module)
            if any(m == host.resolve() for m in self.spec.modules):
                return host, f"{GUEST_MODULE_DIR}/{host.name}"
            if not host.is_file():
                raise RustkmError(f"{self.name}: module file {host} does not exist"
                                  if not host.exists() else
                                  f"{self.name}: module {host} is not a file")
            self._check_module_arch(host)
            # The guest's name is ours, whatever characters the host's file name holds.
            safe = re.sub(r"[^A-Za-z0-9_.-]", "_", host.name).lstrip(".-") or "module.ko"
            guest = f"{GUEST_MODULE_DIR}/host-{safe}"
            self.copy_to(host, guest)
            return host, guest
        for path in self.spec.modules:
            if path.name == f"{module}.ko":
                return path, f"{GUEST_MODULE_DIR}/{path.name}"
        names = [m.stem for m in self.spec.modules]
        raise RustkmError(f"{self.name}: no module {module!r} in this VM",
                          hint=f"pass it to boot(modules=...); this VM has: "
                               f"{', '.join(names) or 'none'}")

    def assert_no_leaks(self, *modules: str) -> None:
        """Unload `modules` (those still loaded) and have kmemleak scan; raises LeakFound with
        its report of objects they allocated and never freed, their frames named. On a kernel
        without kmemleak (all but the debug lane) it only unloads them."""
        from rustkm.leaks import LeakFound, attribute, has_kmemleak, placements, scan

        kos = {_loaded_name(ko): ko for ko in self.spec.modules}
        placed = placements(self, {m: kos[m] for m in modules if m in kos}) \
            if has_kmemleak(self) else None
        for module in reversed(modules):
            if self.execute(f"test -d /sys/module/{shlex.quote(module)}")[0] == 0:
                self.rmmod(module)
        if placed is None:
            return
        if report := attribute(scan(self), list(modules), placed):
            raise LeakFound(f"{self.name}: kmemleak found objects {', '.join(modules)} never "
                            "freed", details=report)

    def dmesg(self) -> str:
        """The kernel log as `dmesg` prints it in the guest."""
        return self.succeed("dmesg")

    # -- files --------------------------------------------------------------------------

    def copy_to(self, host_path: Path, guest_path: str,
                timeout: float = DEFAULT_TIMEOUT) -> None:
        """Copy a host file into the guest, byte for byte, keeping its permission bits. It is
        read and sent a chunk at a time: a file larger than the host's memory copies too."""
        host = Path(host_path)
        _check_guest_path(guest_path)
        try:
            source = host.open("rb")
            mode = os.fstat(source.fileno()).st_mode & 0o7777
        except OSError as e:
            raise RustkmError(f"{self.name}: cannot copy {host} into the guest: "
                              f"{e.strerror}") from None
        with source, self._step(f"copying {host} to {guest_path} "
                                f"({os.fstat(source.fileno()).st_size} bytes)"):
            offset = 0
            while True:
                try:
                    chunk = source.read(_COPY_CHUNK)
                except OSError as e:
                    raise RustkmError(f"{self.name}: cannot read {host}: {e.strerror}") from None
                if not chunk and offset:
                    break  # an empty file is one empty write: the guest file exists
                result = self._call(f"copy to {guest_path}", functools.partial(
                    AgentChannel.put, guest_path=guest_path, data=chunk, offset=offset,
                    mode=mode, timeout=timeout))
                if result.status != 0:
                    raise CommandFailed(f"{self.name}: cannot write {guest_path} in the "
                                        f"guest: {result.err.strip()}", result)
                offset += len(chunk)
                if not chunk:
                    break

    def copy_from(self, guest_path: str, host_path: Path,
                  timeout: float = DEFAULT_TIMEOUT) -> None:
        """Copy a regular file out of the guest, byte for byte. Its bytes are written as they
        come to a file that replaces `host_path` once the copy is whole (rustkm.host_file): a
        failed copy leaves `host_path` as it was, and an existing one keeps its mode."""
        _check_guest_path(guest_path)
        host = Path(host_path)
        try:
            with replacing(host) as sink, self._step(f"copying {guest_path} to {host}"):
                result = self._call(f"copy from {guest_path}",
                                    lambda agent: agent.get(guest_path, timeout, sink))
                if result.status != 0:
                    raise CommandFailed(f"{self.name}: cannot read {guest_path} in the guest: "
                                        f"{result.err.strip()}", result)
        except OSError as e:
            raise RustkmError(f"{self.name}: cannot write {host}: {e.strerror or e}") from None

    # -- kernel trouble -----------------------------------------------------------------

    @contextmanager
    def expect_trouble(self, *kinds: str, required: bool = True) -> Iterator[list[Trouble]]:
        """Inside the block, trouble of these kinds (e.g. 'warn') is collected, not raised;
        leaving the block without seeing any raises, unless `required` is False."""
        seen: list[Trouble] = []
        before = len(self.troubles)
        self._expected = list(kinds)
        try:
            yield seen
            if self._console is not None:
                deadline = time.monotonic() + (10 if required else 0)
                while time.monotonic() < deadline and not any(
                        t.kind in kinds for t in self.troubles[before:]):
                    self._console.settle(0.2, 0.5)
                    self._raise_trouble("an expected-trouble block")
                self._console.settle(0.3, 2.0)
                self._raise_trouble("an expected-trouble block")
        finally:
            self._expected = []
        seen.extend(t for t in self.troubles[before:] if t.kind in kinds)
        if not seen and required:
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
        if self._qemu.alive() and error.hung:
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
        self._teardown()
        if found:
            raise self._dump_hint(KernelTrouble(found, repr(command))) from error
        raise self._dump_hint(GuestStuck(f"{self.name}: {error.message}",
                                         details=self._console_tail() + "\n" +
                                         qemu.stderr_text(),
                                         hint="the VM was torn down; the next one starts "
                                              "fresh")) from error

    def _stop_reason(self) -> str | None:
        if self._qemu is not None and not self._qemu.alive():
            return f"QEMU exited with status {self._qemu.proc.returncode}"
        if self._console is None:
            return None
        lines = self._console.snapshot(max(self._request_mark, len(self._console.lines) - 50))
        if any("Kernel panic - not syncing" in line for line in lines):
            return "the kernel panicked"
        if not self._agent_ready:
            for line in lines:
                if classify(line) in _BOOT_LOCKUPS:
                    self._boot_lockup = strip_timestamp(line)
                    return f"the kernel locked up while booting: {self._boot_lockup}"
        for line in lines:
            died = _AGENT_DIED.match(line)
            if died:
                return f"the guest agent died (exit status {died.group(1)}): {line}"
        return None

    # -- logs ---------------------------------------------------------------------------

    @property
    def console_log(self) -> str:
        """Everything the guest's console printed so far (kernel log included), as text."""
        return self._console.text if self._console else ""

    @property
    def console_path(self) -> Path:
        """The file the console is logged to while the VM runs."""
        return self.workdir / "console.log"

    def _kernel_log_line(self, pattern: str) -> str | None:
        """The first dmesg line matching `pattern`, or None (also when the guest cannot
        answer: the caller's timeout then speaks)."""
        try:
            status, out = self.execute("dmesg", timeout=10)
        except KernelTrouble:
            raise
        except RustkmError:
            return None
        regex = re.compile(pattern)
        return next((line for line in out.splitlines() if regex.search(line)), None) \
            if status == 0 else None

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


def _lane_toolchain(kernel: GuestKernel) -> Toolchain | None:
    """Another architecture's guest boots with its lane's toolchain (its QEMU, its cross
    compiler) when the caller names none; the host's guests with the default one."""
    if get_arch(kernel.arch).is_host:
        return None
    return toolchain_named(kernel.toolchain)


def _check_emulator(tc: Toolchain, arch: Arch) -> None:
    """The toolchain has the guest architecture's QEMU: say what is missing before a boot
    that would end in bwrap's "No such file or directory"."""
    root = tc.root
    if root is None:
        found = shutil.which(arch.qemu) is not None
    else:
        found = any((root / folder / arch.qemu).exists() for folder in ("usr/bin", "bin"))
    if not found:
        where = f"the toolchain {tc.name}" if root is not None else "the host's PATH"
        raise RustkmError(f"{where} has no {arch.qemu} to run this {arch.name} kernel",
                          hint=f"boot it through its lane (--arch {arch.name}: the lane's "
                               f"toolchain has Debian's {arch.qemu_package}), or install "
                               f"{arch.qemu_package}")


def _refused_start(qemu: QemuProcess, error: Exception) -> Exception:
    """QEMU exits at start when it refuses its command line (a device property it does not
    know, a bad value): its own message, not a broken socket, is what the user needs."""
    if not qemu.wait(5):
        return error
    stderr = qemu.stderr_text().strip()
    first = next((line for line in stderr.splitlines() if line.strip()), "")
    reason = first.split(": ", 1)[1] if first.startswith("qemu-system") and ": " in first \
        else first
    return RustkmError(f"QEMU refused to start: {reason or f'exit status {qemu.proc.returncode}'}",
                       details=stderr[-4000:],
                       hint="check the --device/devices= properties against "
                            "`qemu-system-x86_64 -device DRIVER,help`")


def _check_guest_path(path: str) -> None:
    if not path.startswith("/"):
        raise RustkmError(f"guest path {path!r} is not absolute",
                          hint="name files in the guest by absolute path, e.g. /tmp/data")


def _loaded_name(ko: Path) -> str:
    """The name the kernel lists a module under: its modinfo name, with - as _."""
    try:
        name = read_module(ko).name or ko.stem
    except Exception:  # noqa: BLE001 (insmod itself judges the file; this only names it)
        name = ko.stem
    return name.replace("-", "_")


def _param(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


@contextmanager
def boot(kernel: GuestKernel, modules: Sequence[Path] = (), *,
         files: Sequence[tuple[str, Path]] = (), options: VmOptions | None = None,
         name: str = "machine", toolchain: Toolchain | None = None,
         keep_logs: Path | None = None) -> Iterator[Machine]:
    """Boot a throwaway guest of a ready kernel image (rustkm.kernel.guest.guest_kernel makes
    one of a kernel build; rustkm.boot also resolves the default lane); on leaving the block
    it is gone (QEMU killed if need be)."""
    tc = toolchain or _lane_toolchain(kernel) or ensure_toolchain()
    _check_emulator(tc, get_arch(kernel.arch))
    set_demangler(tc.wrap(["llvm-cxxfilt"]))
    image = kernel
    from rustkm.guest_tools import guest_tools

    if image.busybox is None and not get_arch(image.arch).is_host:
        raise RustkmError(f"an {image.arch} guest needs an {image.arch} busybox, and this "
                          "kernel names none (the toolchain's is the host's)",
                          hint=f"boot it through its lane: rustkm.boot(\"debian:latest@"
                               f"{image.arch}\"), or GuestKernel(..., busybox=PATH)")
    spec = InitramfsSpec(modules=tuple(Path(m).resolve() for m in modules),
                         files=tuple(guest_tools(tc, image.arch)),
                         busybox=image.busybox or toolchain_busybox(tc),
                         agent_virtio=VIRTIO_AGENT_PORT if _channel(image) == "virtio" else "",
                         early_modules=image.early_modules if _channel(image) == "virtio"
                         else ())
    if options is None:
        options = VmOptions(memory_mb=max(VmOptions.memory_mb, image.memory_mb))
    if options.devices:
        check_devices(options.devices, qemu_device_names(tc, get_arch(image.arch).qemu))
    workdir = make_workdir(name)
    machine = Machine(name, tc, image, spec, options, workdir,
                      [(g, Path(h).resolve()) for g, h in files])
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


def _channel(kernel: GuestKernel) -> str:
    """The agent's channel: virtio-serial where the kernel has it, else the serial port;
    RUSTKM_CHANNEL=serial forces the serial port (to compare, or to rule virtio out)."""
    wanted = os.environ.get("RUSTKM_CHANNEL", "auto")
    if wanted not in ("auto", "virtio", "serial"):
        raise RustkmError(f"RUSTKM_CHANNEL={wanted!r} is not a channel",
                          hint="use auto, virtio or serial")
    if wanted == "virtio" and not kernel.virtio:
        raise RustkmError(f"RUSTKM_CHANNEL=virtio, but {kernel.image} has no virtio-pci and "
                          "virtio-console built in")
    return "virtio" if kernel.virtio and wanted != "serial" else "serial"
