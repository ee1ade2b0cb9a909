// SPDX-License-Identifier: GPL-2.0

//! LKMPG kbleds in Rust: blinks the keyboard LEDs of the foreground virtual console, all on
//! then back to the keyboard's own state, every fifth of a second, through the VT's KDSETLED
//! ioctl; at unload the LEDs get the keyboard's state back.
//!
//! The guest has a VT (a dummy console, no display) and no keyboard: the LED state is the
//! VT's, which user space reads with KDGETLED on /dev/tty1. Differences from the original:
//! the blink runs as delayed work (process context) rather than a timer callback, since
//! KDSETLED checks the caller's capabilities, which interrupt context has none of; and a
//! console nobody has open (its tty does not exist yet) skips a blink instead of oopsing.
//! 7.2's Rust has no tty or VT bindings: `kbleds_glue.c` finds the tty and calls its ioctl.

use kernel::{
    bindings, ffi, new_delayed_work,
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc, Completion,
    },
    time::msecs_to_jiffies,
    workqueue::{self, impl_has_delayed_work, DelayedWork, Work, WorkItem},
};

module! {
    type: KbLeds,
    name: "kbleds",
    authors: ["rustkm"],
    description: "Example module illustrating the use of Keyboard LEDs.",
    license: "GPL",
}

const BLINK_DELAY_MS: u32 = 200;
const ALL_LEDS_ON: u64 = 0x07;
const RESTORE_LEDS: u64 = 0xff;

extern "C" {
    fn rustkm_kbleds_fg_tty(console: *mut ffi::c_int) -> *mut ffi::c_void;
    fn rustkm_kbleds_set(tty: *mut ffi::c_void, leds: ffi::c_ulong) -> ffi::c_int;
    fn rustkm_kbleds_put(tty: *mut ffi::c_void);
}

/// Sets the foreground console's LEDs; `Err(ENODEV)` when the console has no tty yet.
fn set_leds(leds: u64) -> Result<ffi::c_int> {
    let mut console: ffi::c_int = 0;
    // SAFETY: `console` is a valid out-pointer; the tty comes back with a reference or NULL.
    let tty = unsafe { rustkm_kbleds_fg_tty(&mut console) };
    if tty.is_null() {
        return Err(ENODEV);
    }
    // SAFETY: `tty` is a live tty (we hold a reference), released once, right after.
    let status = unsafe {
        let status = rustkm_kbleds_set(tty, leds as ffi::c_ulong);
        rustkm_kbleds_put(tty);
        status
    };
    if status < 0 {
        return Err(Error::from_errno(status));
    }
    Ok(console)
}

/// The blinking: one delayed work item that queues itself again until told to stop.
#[pin_data]
struct Blinker {
    #[pin]
    work: DelayedWork<Blinker>,
    leds: Atomic<u64>,
    stop: Atomic<bool>,
    missed: Atomic<bool>,
    #[pin]
    stopped: Completion,
}

impl_has_delayed_work! {
    impl HasDelayedWork<Self> for Blinker { self.work }
}

impl WorkItem for Blinker {
    type Pointer = Arc<Blinker>;

    fn run(this: Arc<Blinker>) {
        if this.stop.load(Relaxed) {
            this.stopped.complete_all();
            return;
        }
        let next = if this.leds.load(Relaxed) == ALL_LEDS_ON {
            RESTORE_LEDS
        } else {
            ALL_LEDS_ON
        };
        this.leds.store(next, Relaxed);
        if let Err(e) = set_leds(next) {
            // Said once: the console may get a tty later (someone opens it).
            if !this.missed.xchg(true, Relaxed) {
                pr_info!("kbleds: no LEDs to set yet ({:?})\n", e);
            }
        }
        let delay = msecs_to_jiffies(BLINK_DELAY_MS);
        if let Err(this) = workqueue::system().enqueue_delayed(this, delay) {
            // Cannot happen (it is running, so not queued); stop cleanly if it does.
            this.stopped.complete_all();
        }
    }
}

struct KbLeds {
    blinker: Arc<Blinker>,
}

impl kernel::Module for KbLeds {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("kbleds: loading\n");
        let mut console: ffi::c_int = 0;
        // SAFETY: as in `set_leds`; only the console number is wanted here.
        let tty = unsafe { rustkm_kbleds_fg_tty(&mut console) };
        if !tty.is_null() {
            // SAFETY: `tty` came with a reference, released once, here.
            unsafe { rustkm_kbleds_put(tty) };
        }
        pr_info!("kbleds: fgconsole is {:x}\n", console);
        let blinker = Arc::pin_init(
            pin_init!(Blinker {
                work <- new_delayed_work!("Blinker::work"),
                leds: Atomic::new(RESTORE_LEDS),
                stop: Atomic::new(false),
                missed: Atomic::new(false),
                stopped <- Completion::new(),
            }),
            GFP_KERNEL,
        )?;
        let delay = msecs_to_jiffies(BLINK_DELAY_MS);
        if workqueue::system()
            .enqueue_delayed(blinker.clone(), delay)
            .is_err()
        {
            return Err(EBUSY);
        }
        Ok(KbLeds { blinker })
    }
}

impl Drop for KbLeds {
    fn drop(&mut self) {
        pr_info!("kbleds: unloading...\n");
        // The one work item in flight sees the flag within a blink and stops queueing.
        self.blinker.stop.store(true, Relaxed);
        self.blinker.stopped.wait_for_completion();
        // The completion wakes us while its work function is still returning through this
        // module's code: wait until it has left, or the module's text is freed under it.
        // The item is not queued again, so this only waits for the running one (7.2's
        // `kernel::workqueue` has no flush).
        // SAFETY: `work` is an initialised work item inside the live `Arc` held by `self`.
        unsafe {
            bindings::flush_work(Work::raw_get(DelayedWork::raw_as_work(&self.blinker.work)))
        };
        let _ = set_leds(RESTORE_LEDS);
    }
}
