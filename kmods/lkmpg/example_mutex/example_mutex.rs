// SPDX-License-Identifier: GPL-2.0

//! LKMPG example_mutex in Rust: a static mutex, try-locked at load as in the original, and a
//! demonstration that it prevents lost updates.
//!
//! `echo N > /proc/sys/lkmpg/example_mutex` increments a shared count N times, each increment
//! under the mutex; `insmod example_mutex.ko use_lock=0` leaves the mutex out, and concurrent
//! writers on two CPUs then lose updates.

use kernel::{global_lock, prelude::*};

#[path = "../../lib/compat.rs"]
mod compat;
#[path = "../../lib/race.rs"]
mod race;
#[path = "../../lib/sysctl.rs"]
mod sysctl;

use race::{Hammer, Increment, RacyCount};
use sysctl::{entry, Registration, SysctlTable};

module! {
    type: ExampleMutex,
    name: "example_mutex",
    authors: ["rustkm"],
    description: "Mutex example",
    license: "GPL",
    params: {
        use_lock: i32 {
            default: 1,
            description: "1: increments take the mutex; 0: they race",
        },
    },
}

global_lock! {
    // SAFETY: initialised in `init` before the sysctl file that uses it exists.
    unsafe(uninit) static MYMUTEX: Mutex<()> = ();
}

struct UnderMutex;

impl Increment for UnderMutex {
    fn increment(&self, count: &RacyCount, protect: bool) {
        if protect {
            let _guard = MYMUTEX.lock();
            count.increment_in_window();
        } else {
            count.increment_in_window();
        }
    }

    fn protect(&self) -> bool {
        compat::param(&module_parameters::use_lock) != 0
    }
}

static HAMMER: Hammer<UnderMutex> = Hammer::new(UnderMutex);
static TABLE: SysctlTable<1> = SysctlTable::new([entry(c"example_mutex", 0o644, &HAMMER)]);

struct ExampleMutex {
    _sysctl: Registration,
}

impl kernel::Module for ExampleMutex {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        // SAFETY: called once, before anything locks the mutex.
        unsafe { MYMUTEX.init() };
        pr_info!("example_mutex init\n");
        match MYMUTEX.try_lock() {
            Some(guard) => {
                pr_info!("mutex is locked\n");
                drop(guard);
                pr_info!("mutex is unlocked\n");
            }
            None => pr_info!("Failed to lock\n"),
        }
        Ok(ExampleMutex {
            _sysctl: Registration::register(c"lkmpg", &TABLE)?,
        })
    }
}

impl Drop for ExampleMutex {
    fn drop(&mut self) {
        pr_info!("example_mutex exit\n");
    }
}
