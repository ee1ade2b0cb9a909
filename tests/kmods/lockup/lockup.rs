// SPDX-License-Identifier: GPL-2.0

//! A module whose load spins for four seconds with preemption off (a spinlock held): with
//! `watchdog_thresh=1` on the kernel command line the soft-lockup detector reports it after
//! two. rustkm's tests load it while the guest boots, as a guest that locks up before its
//! agent starts. Never load it anywhere but a throwaway VM.

use kernel::{
    new_spinlock,
    prelude::*,
    time::{delay::udelay, Delta, Instant, Monotonic},
};

module! {
    type: Lockup,
    name: "lockup",
    authors: ["rustkm"],
    description: "Spins at load with preemption off (rustkm's own tests)",
    license: "GPL",
}

struct Lockup;

impl kernel::Module for Lockup {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let lock = KBox::pin_init(new_spinlock!(()), GFP_KERNEL)?;
        let start = Instant::<Monotonic>::now();
        {
            let _held = lock.lock();
            while start.elapsed() < Delta::from_millis(4000) {
                udelay(Delta::from_millis(1));
            }
        }
        pr_info!("lockup: spun for four seconds\n");
        Ok(Lockup)
    }
}
