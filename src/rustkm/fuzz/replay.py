"""Running a list of fuzzer operations in a guest: for minimization probes, `rustkm fuzz
--replay`, and the regression tests `rustkm fuzz` writes (`replay_ops(vm, ...)`)."""

from __future__ import annotations

import shlex
import tempfile
from pathlib import Path

from rustkm.fuzz.session import FUZZER, PLACEHOLDER, fuzzer_binary
from rustkm.machine import Machine

OPS_FILE = "/tmp/rustkm-fuzz.ops"


def replay_ops(vm: Machine, files: list[str], ops: str | list[str], cycle: str = "-",
               timeout: float = 600.0, params: str = "") -> str:
    """Run `ops` (lines as `rustkm-fuzz plan` prints them) one after another in `vm`, on
    `files`; the kernel's report, if any, raises as for any command (KernelTrouble)."""
    text = ops if isinstance(ops, str) else "\n".join(ops) + "\n"
    if vm.execute(f"test -x {FUZZER}")[0] != 0:
        vm.copy_to(fuzzer_binary(vm.tc, vm.kernel.arch), FUZZER)
    with tempfile.TemporaryDirectory(prefix="rustkm-fuzz-") as tmp:
        host = Path(tmp) / "ops"
        host.write_text(text)
        vm.copy_to(host, OPS_FILE)
    argv = shlex.join([*(["env", f"RUSTKM_FUZZ_PARAMS={params}"] if params else []),
                       FUZZER, "exec", cycle, *(files or [PLACEHOLDER])])
    return vm.succeed(f"{argv} < {OPS_FILE}", timeout=timeout)
