// SPDX-License-Identifier: GPL-2.0

//! A periodic high-resolution timer in Rust (LKMPG's timer topic; the guide has no C file for
//! it): 7.2's `kernel::time::hrtimer` fires every `period_ms` milliseconds and counts ticks;
//! /proc/sys/lkmpg/hrtimer_ticks shows the count. rmmod cancels the timer (waiting for a
//! running callback) before the module goes away.
//!
//! The callback runs in hard interrupt context: it only counts (an atomic) and forwards the
//! timer by one period from now.

use core::sync::atomic::{AtomicU64, Ordering};
use kernel::{
    impl_has_hr_timer,
    prelude::*,
    sync::{Arc, ArcBorrow},
    time::{
        hrtimer::{
            ArcHrTimerHandle, HrTimer, HrTimerCallback, HrTimerCallbackContext, HrTimerPointer,
            HrTimerRestart, RelativeMode,
        },
        Delta, Monotonic,
    },
};

#[path = "../../lib/params.rs"]
mod params;
// Only its number printing is used here.
#[allow(dead_code)]
#[path = "../../lib/race.rs"]
mod race;
#[path = "../../lib/sysctl.rs"]
mod sysctl;

use sysctl::{entry, Registration, SysctlFile, SysctlTable};

module! {
    type: HrTimerExample,
    name: "hrtimer",
    authors: ["rustkm"],
    description: "A periodic hrtimer that counts ticks",
    license: "GPL",
}

params::module_param!(
    period_ms: u32 = 100,
    perm: 0o444,
    desc: "Timer period in ms (1 to 10000)"
);

/// The longest period allowed.
const MAX_PERIOD_MS: u32 = 10_000;

/// How many times the timer fired.
static TICKS: AtomicU64 = AtomicU64::new(0);

#[pin_data]
struct Ticker {
    #[pin]
    timer: HrTimer<Self>,
    period: Delta,
}

impl_has_hr_timer! {
    impl HasHrTimer<Self> for Ticker {
        mode: RelativeMode<Monotonic>, field: self.timer
    }
}

impl HrTimerCallback for Ticker {
    type Pointer<'a> = Arc<Self>;

    fn run(this: ArcBorrow<'_, Self>, mut ctx: HrTimerCallbackContext<'_, Self>) -> HrTimerRestart {
        TICKS.fetch_add(1, Ordering::Relaxed);
        ctx.forward_now(this.period);
        HrTimerRestart::Restart
    }
}

/// /proc/sys/lkmpg/hrtimer_ticks: the tick count, read-only.
struct Ticks;

impl SysctlFile for Ticks {
    fn show(&self, out: &mut [u8]) -> usize {
        race::show_u64(TICKS.load(Ordering::Relaxed), out)
    }

    fn store(&self, _input: &[u8]) -> Result {
        Err(EPERM)
    }
}

static TICKS_FILE: Ticks = Ticks;
static TABLE: SysctlTable<1> = SysctlTable::new([entry(c"hrtimer_ticks", 0o444, &TICKS_FILE)]);

struct HrTimerExample {
    sysctl: Option<Registration>,
    timer: Option<ArcHrTimerHandle<Ticker>>,
}

impl kernel::Module for HrTimerExample {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let period = period_ms.get();
        if !(1..=MAX_PERIOD_MS).contains(&period) {
            pr_err!("period_ms must be 1 to {}, not {}\n", MAX_PERIOD_MS, period);
            return Err(EINVAL);
        }
        let ticker = Arc::pin_init(
            pin_init!(Ticker {
                timer <- HrTimer::new(),
                period: Delta::from_millis(i64::from(period)),
            }),
            GFP_KERNEL,
        )?;
        let sysctl = Registration::register(c"lkmpg", &TABLE)?;
        let delay = ticker.period;
        let timer = ticker.start(delay);
        pr_info!("ticking every {} ms\n", period);
        Ok(HrTimerExample {
            sysctl: Some(sysctl),
            timer: Some(timer),
        })
    }
}

impl Drop for HrTimerExample {
    fn drop(&mut self) {
        drop(self.sysctl.take());
        // Cancels the timer, waiting for a callback that is running.
        drop(self.timer.take());
        pr_info!("stopped after {} ticks\n", TICKS.load(Ordering::Relaxed));
    }
}
