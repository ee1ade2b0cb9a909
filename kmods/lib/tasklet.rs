// SPDX-License-Identifier: GPL-2.0

//! A safe tasklet: a deferred function that runs in softirq context, as C's `tasklet_setup()`,
//! `tasklet_schedule()` and `tasklet_kill()`.
//!
//! Linux 7.2's Rust has no tasklets. The C half, `tasklet_glue.c`, allocates and sets up the
//! `struct tasklet_struct` and calls back into Rust; a module using this links both (see
//! kmods/lkmpg/example_tasklet/Kbuild). Dropping a [`Tasklet`] kills it: it waits until the
//! tasklet is neither scheduled nor running, so its handler never runs after the drop.
//!
//! The handler runs in atomic (softirq) context: it must not sleep (no mutexes, no
//! `GFP_KERNEL` allocations, no `fsleep`); busy waiting and atomics are fine.

use core::ptr::NonNull;
use kernel::{ffi, prelude::*};

/// What a tasklet runs. Called in softirq context, never concurrently with itself.
pub(crate) trait TaskletHandler: Send + Sync + 'static {
    /// The tasklet's work. Must not sleep.
    fn run(&self);
}

extern "C" {
    fn rustkm_tasklet_new(
        run: unsafe extern "C" fn(*mut ffi::c_void),
        data: *mut ffi::c_void,
    ) -> *mut ffi::c_void;
    fn rustkm_tasklet_schedule(tasklet: *mut ffi::c_void);
    fn rustkm_tasklet_kill_free(tasklet: *mut ffi::c_void);
}

/// The C callback of a tasklet whose handler is a `T`.
///
/// # Safety
///
/// `data` is the handler of a live [`Tasklet<T>`].
unsafe extern "C" fn run<T: TaskletHandler>(data: *mut ffi::c_void) {
    // SAFETY: per the contract `data` points to the `T` its `Tasklet` owns, which lives until
    // the tasklet is killed, after its last run.
    unsafe { &*data.cast::<T>() }.run();
}

/// A tasklet running a `T`; killed (waited for) when dropped.
///
/// # Invariants
///
/// `raw` is a tasklet from `rustkm_tasklet_new` whose data is `handler`'s `T`, not yet killed.
pub(crate) struct Tasklet<T: TaskletHandler> {
    raw: NonNull<ffi::c_void>,
    handler: KBox<T>,
}

// SAFETY: a tasklet may be scheduled and killed from any thread; `T` is `Send + Sync`.
unsafe impl<T: TaskletHandler> Send for Tasklet<T> {}
// SAFETY: a shared `Tasklet` only schedules (which the kernel makes safe from any context) and
// gives a `&T` (`T: Sync`).
unsafe impl<T: TaskletHandler> Sync for Tasklet<T> {}

impl<T: TaskletHandler> Tasklet<T> {
    /// A new tasklet with `handler`, not scheduled.
    pub(crate) fn new(handler: T) -> Result<Self> {
        let handler = KBox::new(handler, GFP_KERNEL)?;
        let data = core::ptr::from_ref(&*handler)
            .cast_mut()
            .cast::<ffi::c_void>();
        // SAFETY: `run::<T>` gets `data`, the boxed `T`, which stays at its address until
        // `drop` has killed the tasklet.
        let raw = unsafe { rustkm_tasklet_new(run::<T>, data) };
        let raw = NonNull::new(raw).ok_or(ENOMEM)?;
        // INVARIANT: `raw` is a new tasklet with `handler` as its data.
        Ok(Self { raw, handler })
    }

    /// Schedules the tasklet to run soon, on this CPU; nothing happens if it is scheduled and
    /// has not started yet. Callable from any context.
    pub(crate) fn schedule(&self) {
        // SAFETY: by the invariant the tasklet is alive (not killed).
        unsafe { rustkm_tasklet_schedule(self.raw.as_ptr()) };
    }

    /// The handler.
    #[allow(dead_code)] // Not every user looks at its handler.
    pub(crate) fn handler(&self) -> &T {
        &self.handler
    }
}

impl<T: TaskletHandler> Drop for Tasklet<T> {
    fn drop(&mut self) {
        // SAFETY: by the invariant the tasklet is alive; killed and freed once, here. Nothing
        // schedules it concurrently (that needs a `&self`). Afterwards it never runs again,
        // so `handler` may be dropped.
        unsafe { rustkm_tasklet_kill_free(self.raw.as_ptr()) };
    }
}
