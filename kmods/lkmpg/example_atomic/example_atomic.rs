// SPDX-License-Identifier: GPL-2.0

//! LKMPG example_atomic in Rust: atomic arithmetic and bit operations at load, as in the
//! original, and a demonstration that an atomic add loses no updates where a read-then-write
//! does (`echo N > /proc/sys/lkmpg/example_atomic`; `use_atomic=0` uses the racy increment).

use core::sync::atomic::{AtomicI32, AtomicUsize, Ordering::Relaxed};
use kernel::prelude::*;

#[path = "../../lib/compat.rs"]
mod compat;
#[path = "../../lib/race.rs"]
mod race;
#[path = "../../lib/sysctl.rs"]
mod sysctl;

use race::{Hammer, Increment, RacyCount};
use sysctl::{entry, Registration, SysctlTable};

module! {
    type: ExampleAtomic,
    name: "example_atomic",
    authors: ["rustkm"],
    description: "Atomic operations example",
    license: "GPL",
    params: {
        use_atomic: i32 {
            default: 1,
            description: "1: increments are one atomic add; 0: read, then write",
        },
    },
}

struct AtomicAdd;

impl Increment for AtomicAdd {
    fn increment(&self, count: &RacyCount, protect: bool) {
        if protect {
            count.increment_atomically();
        } else {
            count.increment_in_window();
        }
    }

    fn protect(&self) -> bool {
        compat::param(&module_parameters::use_atomic) != 0
    }
}

static HAMMER: Hammer<AtomicAdd> = Hammer::new(AtomicAdd);
static TABLE: SysctlTable<1> = SysctlTable::new([entry(c"example_atomic", 0o644, &HAMMER)]);

fn atomic_add_subtract() {
    let debbie = AtomicI32::new(45);
    let chris = AtomicI32::new(50);
    debbie.fetch_sub(1, Relaxed);
    debbie.fetch_add(7, Relaxed);
    debbie.fetch_add(1, Relaxed);
    pr_info!(
        "chris: {}, debbie: {}\n",
        chris.load(Relaxed),
        debbie.load(Relaxed)
    );
}

fn show_bits(step: u32, word: &AtomicUsize) {
    pr_info!("Bits {}: {:08b}\n", step, word.load(Relaxed) & 0xff);
}

fn atomic_bitwise() {
    let word = AtomicUsize::new(0);
    show_bits(0, &word);
    word.fetch_or(1 << 3, Relaxed);
    word.fetch_or(1 << 5, Relaxed);
    show_bits(1, &word);
    word.fetch_and(!(1 << 5), Relaxed);
    show_bits(2, &word);
    word.fetch_xor(1 << 3, Relaxed);
    show_bits(3, &word);
    if word.fetch_or(1 << 3, Relaxed) & (1 << 3) != 0 {
        pr_info!("wrong\n");
    }
    show_bits(4, &word);
    word.store(255, Relaxed);
    show_bits(5, &word);
}

struct ExampleAtomic {
    _sysctl: Registration,
}

impl kernel::Module for ExampleAtomic {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("example_atomic started\n");
        atomic_add_subtract();
        atomic_bitwise();
        Ok(ExampleAtomic {
            _sysctl: Registration::register(c"lkmpg", &TABLE)?,
        })
    }
}

impl Drop for ExampleAtomic {
    fn drop(&mut self) {
        pr_info!("example_atomic exit\n");
    }
}
