"""From a finding to the shortest operation list that still triggers it.

The guest fuzzer's generator depends on the seed and thread number alone, so each thread's
operations up to the crash are known exactly (`rustkm-fuzz plan`, run on the host: the program
is static and makes no system call to plan). Each candidate runs alone (`rustkm-fuzz exec`, one
thread) in a fresh guest; a thread whose operations trigger the same kind of report on their
own is cut: first to the shortest prefix that does (bisection), then by removing chunks of it,
halves first (delta debugging), within a budget of guests. Before delta debugging, the
descriptor slice is tried: the last operation (the one the kernel died in) with only what
made its descriptor (its slot's last open and what touched that slot since), which is one
guest where delta debugging over hundreds of operations spends dozens. A finding that needs two threads
racing does not reproduce alone: it is reported as such, with its seed.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable

from rustkm.fuzz.session import Finding, FuzzRun, fuzzer_argv, fuzzer_binary
from rustkm.log import say

Probe = Callable[[list[str]], bool]  # does this operation list trigger the finding?


def planned(run: FuzzRun, thread: int, count: int, kept: list[int] | None = None) -> list[str]:
    out = subprocess.run(fuzzer_argv(run, str(fuzzer_binary()), "plan", str(run.seed),
                                     str(thread), str(count), kept=kept or ()),
                         capture_output=True, text=True, check=True)
    return out.stdout.splitlines()


def candidates(run: FuzzRun, finding: Finding) -> list[tuple[int, int]]:
    """(thread, operations): each thread's count at the last progress line plus what it did
    in a second more (the report came within it), busiest thread first."""
    counts = finding.counts or [0] * run.threads
    rate = finding.rate or [1000.0] * len(counts)
    pairs = [(t, counts[t] + int(max(rate[t], 200) * 1.5) + 50) for t in range(len(counts))]
    return sorted(pairs, key=lambda pair: -pair[1])


def shortest_prefix(ops: list[str], probe: Probe, budget: list[int]) -> list[str]:
    """The shortest prefix of `ops` (which triggers) that still triggers, by bisection."""
    low, high = 0, len(ops)  # ops[:high] triggers; ops[:low] is not known to
    while high - low > 1 and budget[0] > 0:
        middle = (low + high) // 2
        budget[0] -= 1
        if probe(ops[:middle]):
            high = middle
        else:
            low = middle
    return ops[:high]


def delta_debug(ops: list[str], probe: Probe, budget: list[int]) -> list[str]:
    """Remove chunks of `ops` while it still triggers (ddmin's complement step)."""
    chunks = 2
    while len(ops) >= 2 and budget[0] > 0:
        size = max(1, len(ops) // chunks)
        removed = False
        for start in range(0, len(ops), size):
            if budget[0] <= 0:
                break
            rest = ops[:start] + ops[start + size:]
            budget[0] -= 1
            if rest and probe(rest):
                ops, chunks, removed = rest, max(chunks - 1, 2), True
                break
        if not removed:
            if size == 1:
                break
            chunks = min(len(ops), chunks * 2)
    return ops


def _slot(op: str) -> str | None:
    fields = op.split()
    return fields[2] if len(fields) == 5 else None


def descriptor_slices(ops: list[str]) -> list[list[str]]:
    """Shorter candidates for `ops` (a prefix whose last operation triggers), smallest first:
    the last operation alone, with its slot's last open, and with everything done to that
    slot since that open. Operations name their descriptor by slot (see fuzz.c), so these
    keep what the triggering call's descriptor went through and drop the rest."""
    if not ops:
        return []
    last, slot = ops[-1], _slot(ops[-1])
    slices = [[last]]
    opened = [i for i, op in enumerate(ops[:-1]) if op.startswith("open ") and _slot(op) == slot]
    if slot is not None and opened:
        start = opened[-1]
        slices.append([ops[start], last])
        slices.append([op for op in ops[start:] if _slot(op) == slot])
    unique: list[list[str]] = []
    for candidate in slices:
        if len(candidate) < len(ops) and candidate not in unique:
            unique.append(candidate)
    return unique


def interleaved(per_thread: list[list[str]]) -> list[str]:
    """The threads' operations as one sequence, each thread's in its order and all of them
    spread as evenly as they ran (operation i of n at i/n): threads share their descriptors,
    so one may write to a file another opened, which no thread's operations alone repeat."""
    keyed = [((i + 1) / len(ops), thread, op) for thread, ops in enumerate(per_thread)
             for i, op in enumerate(ops)]
    return [op for _, _, op in sorted(keyed, key=lambda k: (k[0], k[1]))]


ALL_THREADS = -1  # minimize()'s answer when the threads' operations had to be interleaved


def minimize(run: FuzzRun, finding: Finding, probe: Probe,
             probes: int = 40) -> tuple[list[str], int] | None:
    """The minimized operations and the thread they came from (ALL_THREADS: from all of them,
    interleaved), or None when neither one thread's operations nor all of them in one
    sequence trigger the finding."""
    budget = [probes]
    plans: list[list[str]] = []
    for thread, count in candidates(run, finding):
        ops = planned(run, thread, count, finding.kept.get(thread))
        plans.append(ops)
        if budget[0] <= 0:
            continue
        say(f"fuzz: replaying thread {thread}'s {len(ops)} operations alone")
        budget[0] -= 1
        if probe(ops):
            return _cut(ops, probe, budget, probes), thread
    if len(plans) > 1 and budget[0] > 0:
        ops = interleaved(plans)
        say(f"fuzz: replaying all threads' {len(ops)} operations interleaved in one sequence")
        budget[0] -= 1
        if probe(ops):
            return _cut(ops, probe, budget, probes), ALL_THREADS
    return None


def _cut(ops: list[str], probe: Probe, budget: list[int], probes: int) -> list[str]:
    ops = shortest_prefix(ops, probe, budget)
    say(f"fuzz: the first {len(ops)} operations trigger it; removing what is not needed")
    for candidate in descriptor_slices(ops):
        if budget[0] <= 0:
            break
        budget[0] -= 1
        if probe(candidate):
            ops = candidate
            break
    ops = delta_debug(ops, probe, budget)
    say(f"fuzz: minimized to {len(ops)} operation(s) ({probes - budget[0]} guests)")
    return ops
