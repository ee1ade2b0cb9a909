// SPDX-License-Identifier: GPL-2.0

//! A safe kernel thread, as C's `kthread_create()` + `wake_up_process()` + `kthread_stop()`.
//!
//! Linux 7.2's Rust has no kthread abstraction. A [`KThread`] runs a closure on a new kernel
//! thread. It is created stopped (as `kthread_create`): [`KThread::wake`] starts it. Dropping
//! it waits until the thread has exited (`kthread_stop`); a thread never woken exits without
//! running its closure. So no thread runs module code after the module has dropped its
//! threads. The closure must return by itself: nothing interrupts it.
//!
//! ```ignore
//! let thread = KThread::create(c"KThread Crank", move || pr_info!("Turn the crank\n"))?;
//! thread.wake();
//! drop(thread); // waits for it
//! ```

use core::{cell::UnsafeCell, ptr::NonNull};
use kernel::{bindings, error::from_err_ptr, ffi, prelude::*, str::CStr};

/// The closure a thread runs, taken by the thread when it starts.
struct Body<F>(UnsafeCell<Option<F>>);

/// A kernel thread running a closure; dropping it waits for the thread to exit.
///
/// # Invariants
///
/// `task` is a kthread made by `kthread_create_on_node` on which this value holds a task
/// reference; its `data` is `body`, a `KBox<Body<F>>` turned into a raw pointer, which
/// `free_body::<F>` frees, and which the thread alone uses until it has exited.
pub(crate) struct KThread {
    task: NonNull<bindings::task_struct>,
    body: NonNull<ffi::c_void>,
    free_body: unsafe fn(NonNull<ffi::c_void>),
}

// SAFETY: the task may be woken and stopped from any thread; the closure is `Send` (see
// `create`) and only the new thread touches it before that thread exits.
unsafe impl Send for KThread {}
// SAFETY: a shared `KThread` only wakes the task, which is thread-safe.
unsafe impl Sync for KThread {}

/// The thread function of a thread running an `F`.
///
/// # Safety
///
/// `data` is the `body` of a live `KThread` made for an `F`, which no one else touches until
/// this thread has exited.
unsafe extern "C" fn run<F: FnOnce() + Send + 'static>(data: *mut ffi::c_void) -> ffi::c_int {
    // SAFETY: per the contract `data` is a valid `Body<F>` that only this thread uses now.
    let f = unsafe { (*(*data.cast::<Body<F>>()).0.get()).take() };
    if let Some(f) = f {
        f();
    }
    0
}

/// Frees a `Body<F>`.
///
/// # Safety
///
/// `body` came from `KBox::<Body<F>>::into_raw`, is no longer used, and is freed once.
unsafe fn free_body<F>(body: NonNull<ffi::c_void>) {
    // SAFETY: per the contract.
    drop(unsafe { KBox::from_raw(body.as_ptr().cast::<Body<F>>()) });
}

impl KThread {
    /// Creates a kernel thread named `name` (at most 15 bytes show in `ps`) that will run `f`
    /// once woken.
    pub(crate) fn create<F: FnOnce() + Send + 'static>(name: &CStr, f: F) -> Result<Self> {
        let body = KBox::new(Body(UnsafeCell::new(Some(f))), GFP_KERNEL)?;
        // SAFETY: `KBox::into_raw` never returns null.
        let body = unsafe { NonNull::new_unchecked(KBox::into_raw(body)) }.cast::<ffi::c_void>();
        // SAFETY: `run::<F>` gets `body`, a `Body<F>` that lives until `drop` has stopped the
        // thread; the format takes one string argument, `name`, which the kernel copies.
        let task = from_err_ptr(unsafe {
            bindings::kthread_create_on_node(
                Some(run::<F>),
                body.as_ptr(),
                bindings::NUMA_NO_NODE,
                c"%s".as_char_ptr(),
                name.as_char_ptr(),
            )
        });
        let task = match task.ok().and_then(NonNull::new) {
            Some(task) => task,
            None => {
                // SAFETY: no thread was made, so `body` is unused; freed once, here.
                unsafe { free_body::<F>(body) };
                return Err(task.err().unwrap_or(ENOMEM));
            }
        };
        // SAFETY: the new thread has not been woken, so it cannot have exited: `task` is
        // valid. The reference keeps it so until `drop`, even after the thread exits.
        unsafe { bindings::get_task_struct(task.as_ptr()) };
        // INVARIANT: `task` is the new kthread, referenced; its data is `body`.
        Ok(Self {
            task,
            body,
            free_body: free_body::<F>,
        })
    }

    /// Starts the thread (once; later calls do nothing).
    pub(crate) fn wake(&self) {
        // SAFETY: by the invariant we hold a reference on the task.
        unsafe { bindings::wake_up_process(self.task.as_ptr()) };
    }
}

impl Drop for KThread {
    fn drop(&mut self) {
        // SAFETY: by the invariant `task` is a referenced kthread; this waits for it to exit
        // (at once if never woken: then it never runs `run`) and drops our reference.
        unsafe { bindings::kthread_stop_put(self.task.as_ptr()) };
        // SAFETY: the thread has exited, so `body` is unused; freed once, here.
        unsafe { (self.free_body)(self.body) };
    }
}
