// SPDX-License-Identifier: GPL-2.0

//! LKMPG example_tasklet in Rust: init schedules a tasklet and busy-waits 200 ms; the tasklet
//! logs "Example tasklet starts", busy-waits (5 s, as the original's `mdelay(5000)`, or
//! `delay_ms`) and logs "Example tasklet ends". rmmod kills the tasklet (waits for it).
//!
//! The tasklet is `kmods/lib/tasklet.rs` (7.2's Rust has none). It runs in softirq context,
//! so it busy-waits (`udelay`) and never sleeps. Beyond the original: reading
//! /proc/sys/lkmpg/example_tasklet shows how many runs have ended, writing 1 schedules the
//! tasklet again.

use core::sync::atomic::{AtomicU64, Ordering};
use kernel::{
    global_lock,
    prelude::*,
    time::{delay::udelay, Delta},
};

#[path = "../../lib/params.rs"]
mod params;
// Only its number printing is used here.
#[allow(dead_code)]
#[path = "../../lib/race.rs"]
mod race;
#[path = "../../lib/sysctl.rs"]
mod sysctl;
#[path = "../../lib/tasklet.rs"]
mod tasklet;

use sysctl::{entry, Registration, SysctlFile, SysctlTable};
use tasklet::{Tasklet, TaskletHandler};

module! {
    type: ExampleTasklet,
    name: "example_tasklet",
    authors: ["rustkm"],
    description: "Tasklet example",
    license: "GPL",
}

params::module_param!(
    delay_ms: u32 = 5000,
    perm: 0o444,
    desc: "How long the tasklet busy-waits (ms)"
);

/// The longest busy wait allowed: well below the soft-lockup and RCU-stall detectors.
const MAX_DELAY_MS: u32 = 10_000;

/// How many tasklet runs have ended.
static RUNS: AtomicU64 = AtomicU64::new(0);

/// Busy-waits `ms` milliseconds, as C's `mdelay` (fine in atomic context).
fn mdelay(ms: u32) {
    for _ in 0..ms {
        udelay(Delta::from_millis(1));
    }
}

struct Example;

impl TaskletHandler for Example {
    fn run(&self) {
        pr_info!("Example tasklet starts\n");
        mdelay(delay_ms.get());
        pr_info!("Example tasklet ends\n");
        RUNS.fetch_add(1, Ordering::Relaxed);
    }
}

global_lock! {
    // SAFETY: initialised in `init` before anything locks it.
    unsafe(uninit) static MYTASK: Mutex<Option<Tasklet<Example>>> = None;
}

/// /proc/sys/lkmpg/example_tasklet: shows the ended runs; "1" schedules the tasklet.
struct Control;

impl SysctlFile for Control {
    fn show(&self, out: &mut [u8]) -> usize {
        race::show_u64(RUNS.load(Ordering::Relaxed), out)
    }

    fn store(&self, input: &[u8]) -> Result {
        if input.strip_suffix(b"\n").unwrap_or(input) != b"1" {
            return Err(EINVAL);
        }
        MYTASK.lock().as_ref().ok_or(ENODEV)?.schedule();
        Ok(())
    }
}

static CONTROL: Control = Control;
static TABLE: SysctlTable<1> = SysctlTable::new([entry(c"example_tasklet", 0o644, &CONTROL)]);

struct ExampleTasklet {
    sysctl: Option<Registration>,
}

impl kernel::Module for ExampleTasklet {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        if delay_ms.get() > MAX_DELAY_MS {
            pr_err!("delay_ms must be at most {}\n", MAX_DELAY_MS);
            return Err(EINVAL);
        }
        pr_info!("tasklet example init\n");
        let mytask = Tasklet::new(Example)?;
        mytask.schedule();
        mdelay(200);
        pr_info!("Example tasklet init continues...\n");
        // SAFETY: called once, before anything locks the mutex.
        unsafe { MYTASK.init() };
        *MYTASK.lock() = Some(mytask);
        match Registration::register(c"lkmpg", &TABLE) {
            Ok(sysctl) => Ok(ExampleTasklet {
                sysctl: Some(sysctl),
            }),
            Err(e) => {
                // The static is never dropped: kill the tasklet before the code goes away.
                let mytask = MYTASK.lock().take();
                drop(mytask);
                Err(e)
            }
        }
    }
}

impl Drop for ExampleTasklet {
    fn drop(&mut self) {
        pr_info!("tasklet example exit\n");
        drop(self.sysctl.take());
        let mytask = MYTASK.lock().take();
        // Waits while the tasklet is scheduled or running.
        drop(mytask);
        pr_info!(
            "tasklet killed after {} runs\n",
            RUNS.load(Ordering::Relaxed)
        );
    }
}
