// SPDX-License-Identifier: GPL-2.0

//! LKMPG completions in Rust: two kernel threads, "KThread Crank" and "KThread Flywheel"; the
//! flywheel waits for the crank's completion, so "Turn the crank" always comes before
//! "Flywheel spins up", whichever thread the scheduler runs first (the flywheel is woken
//! first, as in the original). Unloading waits for both completions.
//!
//! The threads are `kmods/lib/kthread.rs` (7.2's Rust has none), the completions 7.2's
//! `kernel::sync::Completion`. Beyond the original: with `manual_crank=1` the crank thread
//! waits for `echo 1 > /proc/sys/lkmpg/completions` before turning (so user space can see
//! both threads waiting); reading that file shows how far the machine got (0: nothing yet,
//! 1: crank turned, 2: flywheel spun up). Unloading turns the crank if nobody did.

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use kernel::{
    global_lock,
    prelude::*,
    sync::{Arc, Completion},
    time::{delay::fsleep, Delta},
};

#[path = "../../lib/kthread.rs"]
mod kthread;
#[path = "../../lib/params.rs"]
mod params;
#[path = "../../lib/sysctl.rs"]
mod sysctl;

use kthread::KThread;
use sysctl::{entry, Registration, SysctlFile, SysctlTable};

module! {
    type: Completions,
    name: "completions",
    authors: ["rustkm"],
    description: "Completions example",
    license: "GPL",
}

params::module_param!(
    manual_crank: bool = false,
    perm: 0o444,
    desc: "Turn the crank only when /proc/sys/lkmpg/completions is written"
);

/// How far the machine got: 0, 1 once the crank turned, 2 once the flywheel spun up.
static STAGE: AtomicU32 = AtomicU32::new(0);

#[pin_data]
struct Machine {
    /// Lets the crank turn (at once, unless `manual_crank`). The crank polls it, sleeping
    /// briefly in between, so a long wait for user space is not a hung task.
    go: AtomicBool,
    #[pin]
    crank_comp: Completion,
    #[pin]
    flywheel_comp: Completion,
}

global_lock! {
    // SAFETY: initialised in `init` before anything locks it.
    unsafe(uninit) static MACHINE: Mutex<Option<Arc<Machine>>> = None;
}

/// /proc/sys/lkmpg/completions: shows the stage; "1" turns the crank.
struct Control;

impl SysctlFile for Control {
    fn show(&self, out: &mut [u8]) -> usize {
        let text = [b'0' + STAGE.load(Ordering::Acquire).min(9) as u8, b'\n'];
        let len = text.len().min(out.len());
        out[..len].copy_from_slice(&text[..len]);
        len
    }

    fn store(&self, input: &[u8]) -> Result {
        if input.strip_suffix(b"\n").unwrap_or(input) != b"1" {
            return Err(EINVAL);
        }
        let guard = MACHINE.lock();
        guard
            .as_ref()
            .ok_or(ENODEV)?
            .go
            .store(true, Ordering::Release);
        Ok(())
    }
}

static CONTROL: Control = Control;
static TABLE: SysctlTable<1> = SysctlTable::new([entry(c"completions", 0o644, &CONTROL)]);

struct Completions {
    machine: Arc<Machine>,
    sysctl: Option<Registration>,
    // Dropped after `drop` has waited for both completions.
    _threads: [KThread; 2],
}

impl kernel::Module for Completions {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("completions example\n");
        let machine = Arc::pin_init(
            pin_init!(Machine {
                go: AtomicBool::new(!manual_crank.get()),
                crank_comp <- Completion::new(),
                flywheel_comp <- Completion::new(),
            }),
            GFP_KERNEL,
        )?;
        // SAFETY: called once, before anything locks the mutex.
        unsafe { MACHINE.init() };
        *MACHINE.lock() = Some(machine.clone());

        let started = start(&machine);
        if started.is_err() {
            // The static is never dropped: give back its reference.
            let _ = MACHINE.lock().take();
        }
        let (sysctl, threads) = started?;
        Ok(Completions {
            machine,
            sysctl: Some(sysctl),
            _threads: threads,
        })
    }
}

/// Creates both threads and the sysctl file, then wakes the flywheel and the crank.
fn start(machine: &Arc<Machine>) -> Result<(Registration, [KThread; 2])> {
    let m = machine.clone();
    // Not woken yet: dropped on an error below, it never runs.
    let crank = KThread::create(c"KThread Crank", move || {
        while !m.go.load(Ordering::Acquire) {
            fsleep(Delta::from_millis(10));
        }
        pr_info!("Turn the crank\n");
        STAGE.store(1, Ordering::Release);
        m.crank_comp.complete_all();
    })?;
    let m = machine.clone();
    let flywheel = KThread::create(c"KThread Flywheel", move || {
        m.crank_comp.wait_for_completion();
        pr_info!("Flywheel spins up\n");
        STAGE.store(2, Ordering::Release);
        m.flywheel_comp.complete_all();
    })?;
    let sysctl = Registration::register(c"lkmpg", &TABLE)?;
    flywheel.wake();
    crank.wake();
    Ok((sysctl, [crank, flywheel]))
}

impl Drop for Completions {
    fn drop(&mut self) {
        drop(self.sysctl.take());
        let _ = MACHINE.lock().take();
        // Nobody turned the crank by hand: turn it now, or the threads would wait forever.
        self.machine.go.store(true, Ordering::Release);
        self.machine.crank_comp.wait_for_completion();
        self.machine.flywheel_comp.wait_for_completion();
        pr_info!("completions exit\n");
    }
}
