// SPDX-License-Identifier: GPL-2.0

//! A module that causes kernel trouble on purpose, to test that rustkm detects it.
//!
//! `insmod trouble.ko action=N`: 0 loads quietly, 1 triggers a WARN, 2 a Rust panic, 3 sleeps
//! uninterruptibly for `seconds` (a hung task in D state), 4 reads through a NULL pointer (an
//! oops). Never load it anywhere but a throwaway VM.

use kernel::{bindings, prelude::*};

module! {
    type: Trouble,
    name: "trouble",
    authors: ["rustkm"],
    description: "Causes kernel trouble on purpose (rustkm's own tests)",
    license: "GPL",
    params: {
        action: i64 {
            default: 0,
            description: "0 nothing, 1 WARN, 2 Rust panic, 3 sleep in D state, 4 NULL read",
        },
        seconds: i64 {
            default: 60,
            description: "how long action 3 sleeps",
        },
    },
}

struct Trouble;

/// Sleep without being woken by signals: the task shows as D in ps.
fn sleep_uninterruptible(seconds: u32) {
    // SAFETY: `msleep` may sleep, and module init runs in process context where sleeping is
    // allowed; it has no other preconditions.
    unsafe { bindings::msleep(seconds.saturating_mul(1000)) }
}

impl kernel::Module for Trouble {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let action = *module_parameters::action.value();
        pr_info!("action {}\n", action);
        match action {
            0 => {}
            1 => {
                kernel::warn_on!(true);
            }
            2 => panic!("trouble: a Rust panic on purpose"),
            3 => {
                let seconds = u32::try_from(*module_parameters::seconds.value()).unwrap_or(60);
                sleep_uninterruptible(seconds);
            }
            4 => {
                // `black_box` hides the null from the compiler, which would refuse it.
                let address = core::hint::black_box(core::ptr::null::<u64>());
                // SAFETY: none: this reads through a NULL pointer on purpose, so that the
                // kernel oopses (the fault kills insmod; the module is only ever loaded in a
                // throwaway VM by rustkm's own tests).
                let value = unsafe { core::ptr::read_volatile(address) };
                pr_info!("read {}\n", value);
            }
            _ => return Err(EINVAL),
        }
        pr_info!("done\n");
        Ok(Trouble)
    }
}
