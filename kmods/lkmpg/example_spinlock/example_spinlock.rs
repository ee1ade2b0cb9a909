// SPDX-License-Identifier: GPL-2.0

//! LKMPG example_spinlock in Rust: a static and a dynamically allocated spinlock, locked and
//! unlocked at load as in the original, and a demonstration that the static one prevents lost
//! updates (`echo N > /proc/sys/lkmpg/example_spinlock`; `use_lock=0` lets writers race).
//!
//! The original uses spin_lock_irqsave; nothing here runs in interrupt context, so the plain
//! spinlock of the kernel's Rust (`SpinLock`) is the faithful choice.

use kernel::{global_lock, new_spinlock, prelude::*};

#[path = "../../lib/compat.rs"]
mod compat;
#[path = "../../lib/race.rs"]
mod race;
#[path = "../../lib/sysctl.rs"]
mod sysctl;

use race::{Hammer, Increment, RacyCount};
use sysctl::{entry, Registration, SysctlTable};

module! {
    type: ExampleSpinlock,
    name: "example_spinlock",
    authors: ["rustkm"],
    description: "Spinlock example",
    license: "GPL",
    params: {
        use_lock: i32 {
            default: 1,
            description: "1: increments take the spinlock; 0: they race",
        },
    },
}

global_lock! {
    // SAFETY: initialised in `init` before anything uses it.
    unsafe(uninit) static SL_STATIC: SpinLock<()> = ();
}

struct UnderSpinlock;

impl Increment for UnderSpinlock {
    fn increment(&self, count: &RacyCount, protect: bool) {
        if protect {
            let _guard = SL_STATIC.lock();
            count.increment_in_window();
        } else {
            count.increment_in_window();
        }
    }

    fn protect(&self) -> bool {
        compat::param(&module_parameters::use_lock) != 0
    }
}

static HAMMER: Hammer<UnderSpinlock> = Hammer::new(UnderSpinlock);
static TABLE: SysctlTable<1> = SysctlTable::new([entry(c"example_spinlock", 0o644, &HAMMER)]);

struct ExampleSpinlock {
    _sysctl: Registration,
}

impl kernel::Module for ExampleSpinlock {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        // SAFETY: called once, before anything locks it.
        unsafe { SL_STATIC.init() };
        pr_info!("example spinlock started\n");
        {
            let _guard = SL_STATIC.lock();
            pr_info!("Locked static spinlock\n");
        }
        pr_info!("Unlocked static spinlock\n");
        let dynamic = KBox::pin_init(new_spinlock!(()), GFP_KERNEL)?;
        {
            let _guard = dynamic.lock();
            pr_info!("Locked dynamic spinlock\n");
        }
        pr_info!("Unlocked dynamic spinlock\n");
        Ok(ExampleSpinlock {
            _sysctl: Registration::register(c"lkmpg", &TABLE)?,
        })
    }
}

impl Drop for ExampleSpinlock {
    fn drop(&mut self) {
        pr_info!("example spinlock exit\n");
    }
}
