// SPDX-License-Identifier: GPL-2.0

//! A safe handle on the current task's controlling tty, to print to it.
//!
//! The kernel's Rust has no tty abstraction. The C half, `tty_glue.c`, gets the tty
//! (`get_current_tty`), writes to its driver under the tty's locks (as the kernel's unexported
//! `tty_write_message` does) and drops the reference; Rust never looks inside a
//! `struct tty_struct`. A module using this links both (see kmods/lkmpg/print_string/Kbuild).
//!
//! ```ignore
//! if let Some(tty) = Tty::current() {
//!     tty.write_all(b"Hello\r\n")?;
//! }
//! ```

use core::ptr::NonNull;
use kernel::{ffi, prelude::*};

extern "C" {
    fn rustkm_tty_get_current() -> *mut ffi::c_void;
    fn rustkm_tty_put(tty: *mut ffi::c_void);
    fn rustkm_tty_write(tty: *mut ffi::c_void, buf: *const u8, count: usize) -> isize;
}

/// A counted reference to a tty (a `struct tty_struct`), dropped with the value.
///
/// # Invariants
///
/// `0` is a `struct tty_struct` on which this value holds one reference.
pub(crate) struct Tty(NonNull<ffi::c_void>);

impl Tty {
    /// The controlling tty of the current task, or `None` (a daemon, a task without a session
    /// tty).
    pub(crate) fn current() -> Option<Self> {
        // SAFETY: no preconditions; a non-null result carries a reference we now own.
        NonNull::new(unsafe { rustkm_tty_get_current() }).map(Tty)
    }

    /// Writes `text` to the tty's driver, bypassing the line discipline (so "\n" is not turned
    /// into "\r\n"); returns how many bytes the driver took, which is fewer when its buffer is
    /// full. `EIO` when the tty is no longer open or hung up. Sleeps.
    pub(crate) fn write(&self, text: &[u8]) -> Result<usize> {
        // SAFETY: by the invariant the tty is alive; `text` is valid for `text.len()` bytes.
        let written = unsafe { rustkm_tty_write(self.0.as_ptr(), text.as_ptr(), text.len()) };
        if written < 0 {
            // Errors from the driver are small negative errno values.
            return Err(i32::try_from(written).map_or(EIO, Error::from_errno));
        }
        Ok(written.unsigned_abs())
    }

    /// Writes all of `text`, or fails with `EAGAIN` if the driver stops taking bytes (its
    /// buffer is full: nobody reads the other side).
    pub(crate) fn write_all(&self, mut text: &[u8]) -> Result {
        while !text.is_empty() {
            match self.write(text)? {
                0 => return Err(EAGAIN),
                n => text = text.get(n..).unwrap_or_default(),
            }
        }
        Ok(())
    }
}

impl Drop for Tty {
    fn drop(&mut self) {
        // SAFETY: by the invariant we hold one reference, given back once, here.
        unsafe { rustkm_tty_put(self.0.as_ptr()) };
    }
}
