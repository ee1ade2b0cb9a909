// SPDX-License-Identifier: GPL-2.0

//! A workqueue of the module's own, as C's `alloc_workqueue()` + `destroy_workqueue()`.
//!
//! Linux 7.2's `kernel::workqueue` enqueues work on a [`Queue`] but only hands out the
//! system's queues; it cannot allocate one. [`OwnedQueue`] allocates one and dereferences to a
//! [`Queue`], so work is queued with 7.2's own safe API (`Work`, `WorkItem`, `enqueue`).
//! Dropping it destroys the queue, which first drains it: every work item queued on it has run
//! (and returned) when the drop returns, so none runs module code after the module is gone.

use core::{ops::Deref, ptr::NonNull};
use kernel::{bindings, prelude::*, str::CStr, workqueue::Queue};

/// A workqueue allocated by this module; destroyed (after draining) when dropped.
///
/// # Invariants
///
/// `0` is a workqueue from `alloc_workqueue`, not destroyed yet.
pub(crate) struct OwnedQueue(NonNull<bindings::workqueue_struct>);

// SAFETY: workqueues may be used and destroyed from any thread.
unsafe impl Send for OwnedQueue {}
// SAFETY: queueing work is thread-safe; a shared `OwnedQueue` only gives a `&Queue`.
unsafe impl Sync for OwnedQueue {}

impl OwnedQueue {
    /// Allocates a workqueue named `name`, unbound (`WQ_UNBOUND`) or per-CPU, running at most
    /// `max_active` of its work items at a time (1..=`WQ_MAX_ACTIVE`).
    pub(crate) fn new(name: &CStr, unbound: bool, max_active: i32) -> Result<Self> {
        if max_active < 1 || max_active > bindings::wq_consts_WQ_MAX_ACTIVE as i32 {
            return Err(EINVAL);
        }
        let flags = if unbound {
            bindings::wq_flags_WQ_UNBOUND
        } else {
            0
        };
        // SAFETY: the format takes one string argument, `name`, a valid C string (the queue
        // copies the formatted name).
        let wq = unsafe {
            bindings::alloc_workqueue_noprof(
                c"%s".as_char_ptr(),
                flags,
                max_active,
                name.as_char_ptr(),
            )
        };
        // INVARIANT: a non-null result is a new workqueue.
        NonNull::new(wq).map(Self).ok_or(ENOMEM)
    }
}

impl Deref for OwnedQueue {
    type Target = Queue;

    fn deref(&self) -> &Queue {
        // SAFETY: by the invariant the queue is valid until `drop`, which cannot run while
        // the returned reference (borrowing `self`) lives.
        unsafe { Queue::from_raw(self.0.as_ptr()) }
    }
}

impl Drop for OwnedQueue {
    fn drop(&mut self) {
        // SAFETY: by the invariant the queue is alive; it is destroyed once, here. No `&Queue`
        // from `deref` outlives `self`, so nothing queues on it concurrently; the kernel
        // drains the work already queued (waiting for it) before freeing the queue.
        unsafe { bindings::destroy_workqueue(self.0.as_ptr()) };
    }
}
