// SPDX-License-Identifier: GPL-2.0

//! KUnit suites with known outcomes, to test rustkm's KUnit support against a real kernel.
//!
//! `rustkm_selftest`: `adds_up` passes, `fails_on_purpose` fails an `assert_eq!`,
//! `returns_an_error` returns `Err`, `disabled_by_cfg` is cfg'd out (KUnit skips it),
//! `panics_when_asked` panics when the module was loaded with `crash=1` (a Rust panic in a
//! KUnit case is a BUG in the case's thread), and `hangs_when_asked` sleeps until KUnit's
//! timeout stops it when loaded with `crash=2`. The C half (params_glue.c) adds
//! `rustkm_selftest_params`, a parameterised suite. Never load it anywhere but a throwaway VM.

use kernel::{bindings, prelude::*};

module! {
    type: KunitSelftest,
    name: "kunit_selftest",
    authors: ["rustkm"],
    description: "KUnit suites with known outcomes (rustkm's own tests)",
    license: "GPL",
    params: {
        crash: i64 {
            default: 0,
            description: "1: panics_when_asked panics; 2: hangs_when_asked hangs",
        },
    },
}

struct KunitSelftest;

impl kernel::Module for KunitSelftest {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("loaded\n");
        Ok(KunitSelftest)
    }
}

/// Whether the module was loaded with `crash=1`.
fn crash_requested() -> bool {
    *module_parameters::crash.value() == 1
}

/// Whether the module was loaded with `crash=2`.
fn hang_requested() -> bool {
    *module_parameters::crash.value() == 2
}

/// Whether KUnit asked the case's thread to stop (at its timeout).
fn stop_requested() -> bool {
    // SAFETY: only called from a KUnit case, which runs in a kthread of its own.
    unsafe { bindings::kthread_should_stop() }
}

/// Sleeps about `ms` milliseconds.
fn nap(ms: u32) {
    // SAFETY: KUnit cases run in process context (a kthread), where sleeping is allowed.
    unsafe { bindings::msleep_interruptible(ms) };
}

#[kunit_tests(rustkm_selftest)]
mod tests {
    use super::*;

    #[test]
    fn adds_up() {
        assert_eq!(1 + 1, 2);
    }

    #[test]
    fn fails_on_purpose() {
        let answer = 41;
        assert_eq!(answer + 1, 43);
    }

    #[test]
    fn returns_an_error() -> Result {
        Err(EINVAL)
    }

    #[test]
    #[cfg(any())]
    fn disabled_by_cfg() {
        assert!(false);
    }

    #[test]
    fn panics_when_asked() {
        if crash_requested() {
            panic!("kunit_selftest: a panic on purpose");
        }
    }

    #[test]
    fn runs_after_the_others() {
        assert_eq!(2 * 21, 42);
    }

    #[test]
    fn hangs_when_asked() {
        while hang_requested() && !stop_requested() {
            nap(50);
        }
    }
}
