// SPDX-License-Identifier: GPL-2.0

//! A safe reader-writer spinlock: the kernel's `rwlock_t` around data of type `T`.
//!
//! 7.2's Rust has `Mutex` and `SpinLock` but no `rwlock_t`. Any number of readers may hold the
//! lock at once ([`RwLock::read`] gives shared access), a writer holds it alone
//! ([`RwLock::write`] gives exclusive access). Like `spin_lock`, both spin and disable
//! preemption: guards must not be held across anything that sleeps.
//!
//! `rwlock_init` and `read_lock`/`write_lock` are C macros whose expansion depends on the
//! configuration (lock debugging, PREEMPT_RT), so the C half, `rwlock_glue.c`, expands them
//! against the target's headers; a module links both (see kmods/lkmpg/example_rwlock/Kbuild).
//! Each lock gets a lockdep class, as `rwlock_init` gives one per call site.
//!
//! ```ignore
//! let lock = KBox::pin_init(new_rwlock!(0u32, c"my_rwlock"), GFP_KERNEL)?;
//! let value = *lock.read();
//! *lock.write() += 1;
//! ```

use core::{
    cell::UnsafeCell,
    marker::{PhantomData, PhantomPinned},
    ops::{Deref, DerefMut},
};
use kernel::{bindings, ffi, prelude::*, str::CStr, sync::LockClassKey, types::Opaque};

extern "C" {
    fn rustkm_rwlock_init(
        lock: *mut bindings::rwlock_t,
        name: *const ffi::c_char,
        // A `struct lock_class_key *`; that struct has no fields without lockdep.
        key: *mut ffi::c_void,
    );
    fn rustkm_read_lock(lock: *mut bindings::rwlock_t);
    fn rustkm_read_unlock(lock: *mut bindings::rwlock_t);
    fn rustkm_write_lock(lock: *mut bindings::rwlock_t);
    fn rustkm_write_unlock(lock: *mut bindings::rwlock_t);
}

/// A reader-writer spinlock protecting a `T`.
///
/// # Invariants
///
/// `lock` was initialised by `rustkm_rwlock_init` before any guard was made, and `data` is
/// only accessed through a guard: shared by [`ReadGuard`]s, exclusively by a [`WriteGuard`].
#[pin_data]
pub(crate) struct RwLock<T> {
    #[pin]
    lock: Opaque<bindings::rwlock_t>,
    /// `rwlock_t` must not move once initialised (lock debugging records its address).
    #[pin]
    _pin: PhantomPinned,
    data: UnsafeCell<T>,
}

// SAFETY: the lock may be handed to another thread with its data when the data may be.
unsafe impl<T: Send> Send for RwLock<T> {}
// SAFETY: readers on several threads share `&T` at once (so `T: Sync`), and a writer on any
// thread gets `&mut T` (so `T: Send`); the `rwlock_t` serialises them.
unsafe impl<T: Send + Sync> Sync for RwLock<T> {}

/// A new [`RwLock`] named `$name` (a C string literal) with its own lockdep class.
// Each module includes this file; one whose lock is a `static` does not use the macro.
#[allow(unused_macros)]
macro_rules! new_rwlock {
    ($data:expr, $name:expr) => {
        $crate::rwlock::RwLock::new($data, $name, ::kernel::static_lock_class!())
    };
}
// Each module includes this file; one whose lock is a `static` does not use the macro.
#[allow(unused_imports)]
pub(crate) use new_rwlock;

impl<T> RwLock<T> {
    /// A lock around `data`, named `name` in lockdep reports, of lockdep class `key`.
    // Each module includes this file; one whose lock is a `static` uses `new_static`.
    #[allow(dead_code)]
    pub(crate) fn new(
        data: T,
        name: &'static CStr,
        key: Pin<&'static LockClassKey>,
    ) -> impl PinInit<Self> {
        pin_init!(Self {
            data: UnsafeCell::new(data),
            _pin: PhantomPinned,
            // SAFETY: `slot` is valid for writes and is not moved afterwards (it is pinned);
            // `name` and `key` are `'static`, so they outlive the lock, as lockdep requires.
            lock <- Opaque::ffi_init(|slot| unsafe {
                rustkm_rwlock_init(slot, name.as_char_ptr(), key.as_ptr().cast())
            }),
        })
    }

    /// A lock for a `static`, unusable until [`RwLock::init_static`] has run.
    ///
    /// # Safety
    ///
    /// The caller calls [`RwLock::init_static`] on it before it is locked.
    // Each module includes this file; one with a pinned lock uses `new`.
    #[allow(dead_code)]
    pub(crate) const unsafe fn new_static(data: T) -> Self {
        Self {
            lock: Opaque::uninit(),
            _pin: PhantomPinned,
            data: UnsafeCell::new(data),
        }
    }

    /// Initialises a lock made by [`RwLock::new_static`].
    ///
    /// # Safety
    ///
    /// Called once, before anything locks it, with no other thread using the lock.
    #[allow(dead_code)]
    pub(crate) unsafe fn init_static(
        &'static self,
        name: &'static CStr,
        key: Pin<&'static LockClassKey>,
    ) {
        // SAFETY: a `static` never moves; per this function's contract nothing uses the lock
        // yet; `name` and `key` are `'static`.
        unsafe { rustkm_rwlock_init(self.lock.get(), name.as_char_ptr(), key.as_ptr().cast()) };
    }

    /// Takes the lock shared; other readers may hold it too, writers wait.
    pub(crate) fn read(&self) -> ReadGuard<'_, T> {
        // SAFETY: the lock is initialised (type invariant); the guard unlocks it exactly once.
        unsafe { rustkm_read_lock(self.lock.get()) };
        ReadGuard {
            lock: self,
            _not_send: PhantomData,
        }
    }

    /// Takes the lock exclusively: no reader or other writer holds it meanwhile.
    pub(crate) fn write(&self) -> WriteGuard<'_, T> {
        // SAFETY: the lock is initialised (type invariant); the guard unlocks it exactly once.
        unsafe { rustkm_write_lock(self.lock.get()) };
        WriteGuard {
            lock: self,
            _not_send: PhantomData,
        }
    }
}

/// Shared access to an [`RwLock`]'s data; unlocks when dropped.
///
/// Not `Send`: the lock is released on the CPU that took it (preemption is off meanwhile).
pub(crate) struct ReadGuard<'a, T> {
    lock: &'a RwLock<T>,
    _not_send: PhantomData<*mut ()>,
}

impl<T> Deref for ReadGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the read lock is held, so no writer has `&mut T` while this reference lives.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> Drop for ReadGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: this guard took the read lock in `RwLock::read` and releases it once.
        unsafe { rustkm_read_unlock(self.lock.lock.get()) };
    }
}

/// Exclusive access to an [`RwLock`]'s data; unlocks when dropped.
pub(crate) struct WriteGuard<'a, T> {
    lock: &'a RwLock<T>,
    _not_send: PhantomData<*mut ()>,
}

impl<T> Deref for WriteGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the write lock is held: no other guard exists.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for WriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the write lock is held: no other guard exists, and `&mut self` makes this
        // the only reference through this guard.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T> Drop for WriteGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: this guard took the write lock in `RwLock::write` and releases it once.
        unsafe { rustkm_write_unlock(self.lock.lock.get()) };
    }
}
