"""The console parser over real logs recorded from guests (tests/data/console)."""

from pathlib import Path

import pytest

from rustkm.oops import classify, demangle_symbols, find_trouble, set_demangler

DATA = Path(__file__).parent / "data" / "console"


def lines(name: str) -> list[str]:
    return (DATA / f"{name}.log").read_text(errors="replace").splitlines()


def test_clean_boot_has_no_trouble():
    boot = [line for line in lines("warn") if "trouble" not in line]
    cut = next(i for i, line in enumerate(boot) if "cut here" in line)
    assert find_trouble(boot[:cut]) == []


def test_warn_is_one_report_from_cut_here_to_end_trace():
    found = find_trouble(lines("warn"))
    assert [t.kind for t in found] == ["warn"]
    report = found[0]
    assert "cut here" in report.lines[0]
    assert "trouble.rs:45" in report.report()
    assert "end trace" in report.lines[-1]
    assert not report.fatal


def test_rust_panic_and_the_bug_it_causes_are_one_report():
    found = find_trouble(lines("rust-panic"))
    assert found[0].kind == "rust-panic"
    text = found[0].report()
    assert "panicked at" in text and "trouble.rs:47:18" in text
    assert "kernel BUG at rust/helpers/bug.c" in text
    assert "a Rust panic on purpose" in text


def test_a_fault_and_the_oops_header_after_it_are_one_report():
    # x86 describes the fault ("BUG: kernel NULL pointer dereference") before die()'s "Oops:"
    # header, the registers and the call trace (the trouble module's action 4); arm64 does the
    # same with "Unable to handle kernel ..." and "Internal error: Oops".
    found = find_trouble(lines("null-deref"))
    assert [t.kind for t in found] == ["bug"]
    text = found[0].report(demangle=False)
    assert found[0].title.startswith("BUG: kernel NULL pointer dereference")
    assert "Oops: Oops: 0000 [#1]" in text and "Call Trace:" in text
    assert "Module4init" in text and "end trace" in found[0].lines[-1]


def test_sysrq_crash_is_a_fatal_panic():
    found = find_trouble(lines("sysrq-panic"))
    assert [t.kind for t in found] == ["panic"]
    assert found[0].fatal
    assert found[0].title == "Kernel panic - not syncing: sysrq triggered crash"
    assert any("sysrq_handle_crash" in line for line in found[0].lines)


def test_hung_task_report_names_the_task_and_its_stack():
    found = find_trouble(lines("hung-task"))
    assert found[0].kind == "hung-task"
    text = found[0].report()
    assert "task insmod" in text and "state:D" in text and "msleep" in text


def test_arm64_reports_recorded_on_debians_arm64_kernel():
    # The same trouble module on debian:latest@arm64 (QEMU virt, TCG): arm64's own wording.
    [warn] = find_trouble(lines("arm64-warn"))
    assert warn.kind == "warn" and "cut here" in warn.lines[0]
    assert "WARNING: trouble.rs:45 at" in warn.report(demangle=False)
    assert "Call trace:" in warn.report() and "end trace" in warn.lines[-1]

    [fault] = find_trouble(lines("arm64-null-deref"))
    text = fault.report(demangle=False)
    assert fault.kind == "bug"
    assert fault.title == ("Unable to handle kernel NULL pointer dereference at virtual "
                           "address 0000000000000000")
    assert "Internal error: Oops: 0000000096000006" in text and "Call trace:" in text
    assert "Module4init" in text and "[trouble]" in text and "end trace" in fault.lines[-1]

    # A Rust panic ends in BUG() (one report with it); arm64 then warns that the dying task
    # left with interrupts masked, and the idle task trips over the same: separate reports,
    # each from its "cut here" (the first with its message before its WARNING line).
    panic, daif, idle = find_trouble(lines("arm64-rust-panic"))
    assert panic.kind == "rust-panic" and "trouble.rs:47:18" in panic.report()
    assert "Internal error: Oops - BUG" in panic.report(demangle=False)
    assert daif.kind == "warn" and "cut here" in daif.lines[0]
    assert "Unexpected DAIF value" in daif.lines[1]
    assert idle.kind == "warn" and "context_tracking" in idle.report()

    [crash] = find_trouble(lines("arm64-sysrq-panic"))
    assert crash.fatal and crash.title == "Kernel panic - not syncing: sysrq triggered crash"


def test_search_starts_at_the_given_line():
    log = lines("warn")
    first = find_trouble(log)[0]
    assert find_trouble(log, first.line_number + len(first.lines)) == []


@pytest.mark.parametrize("line,kind", [
    ("[    3.1] BUG: KASAN: slab-out-of-bounds in foo+0x1/0x2", "kasan"),
    ("[   22.0] watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [insmod:40]", "soft-lockup"),
    ("[   30.0] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:", "rcu-stall"),
    ("[    1.0] BUG: kernel NULL pointer dereference, address: 0000000000000000", "bug"),
    ("[    1.0] Oops: general protection fault, probably for non-canonical address", "bug"),
    ("[    1.0] Internal error: Oops: 0000000096000005 [#1] PREEMPT SMP", "bug"),
    ("[    1.0] Unable to handle kernel NULL pointer dereference at virtual address 0", "bug"),
    ("[    2.0] WARNING: possible circular locking dependency detected", "warn"),
    ("[    2.0] UBSAN: array-index-out-of-bounds in foo.c:3:4", "bug"),
    ("[    9.0] kmemleak: 2 new suspected memory leaks (see /sys/kernel/debug/kmemleak)", "leak"),
    ("[    1.0] printerfact: ready, 12 facts", None),
    ("[    1.0] BUG_ON is a macro name in a log line about docs", None),
])
def test_classify(line, kind):
    assert classify(line) == kind


def toolchain_demangler() -> list[str]:
    from rustkm.toolchain import rootfs_toolchain

    tc = rootfs_toolchain()
    if tc.root is None or not (tc.root / "usr/bin/llvm-cxxfilt").exists():
        pytest.skip("the toolchain (llvm-cxxfilt) is not set up: run rustkm setup")
    return tc.wrap(["llvm-cxxfilt"])


def test_demangling_replaces_v0_and_legacy_symbols_with_llvm_cxxfilt():
    set_demangler(toolchain_demangler())
    try:
        text = "RIP: _RNvCs1234_7trouble4init+0x1/0x2 and _ZN7trouble4init17h0123456789abcdefE"
        assert demangle_symbols(text) == \
            "RIP: trouble::init+0x1/0x2 and trouble::init::h0123456789abcdef"
    finally:
        set_demangler([])


def test_without_a_demangler_text_is_unchanged():
    set_demangler([])
    assert demangle_symbols("at _RNvCs1234_7trouble4init+0x1") == "at _RNvCs1234_7trouble4init+0x1"


def test_a_2cpu_guest_stalled_at_boot_in_stop_machine_is_a_soft_lockup():
    # A real console: a cold 2-CPU boot under TCG that never reached its agent (about one
    # in a thousand): CPU 0 waits in multi_cpu_stop, the switch to the final TSC clocksource.
    found = find_trouble(lines("boot-lockup-stop-machine-2cpu-tcg"))
    assert [t.kind for t in found] == ["soft-lockup"]
    assert "multi_cpu_stop" in "\n".join(found[0].lines)
