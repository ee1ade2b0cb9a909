// SPDX-License-Identifier: GPL-2.0

//! A misc device registration whose open files hold a reference on the module.
//!
//! 7.2's `MiscDeviceRegistration` leaves `file_operations.owner` unset, so `rmmod` succeeds
//! while a file is open on the device, and closing that file then runs the unloaded module's
//! code (an oops). This registers the same device, with the kernel crate's own file operations
//! for `T` (`MiscDeviceOptions::into_raw`), copied with `owner` set: the VFS then takes a module
//! reference at each open and drops it after the release, as for a C driver, and `rmmod` of a
//! module whose device is open fails with `EBUSY`.
//!
//! The `MiscDevice` callbacks see a `&MiscDeviceRegistration<T>`: the kernel crate casts the
//! `struct miscdevice` pointer to it (`MiscDeviceRegistration` is a transparent wrapper of the
//! C struct), which is what this registers.

use core::{marker::PhantomData, ptr::addr_of_mut};
use kernel::{
    bindings,
    error::to_result,
    miscdevice::{MiscDevice, MiscDeviceOptions},
    prelude::*,
    str::CStr,
    types::Opaque,
};

/// The file operations and the misc device that points to them, side by side.
#[repr(C)]
struct Raw {
    fops: bindings::file_operations,
    misc: bindings::miscdevice,
}

/// A registered misc device /dev/`name`, deregistered when dropped.
///
/// # Invariants
///
/// `raw.misc` is registered with `misc_register` and its `fops` points to `raw.fops`.
#[pin_data(PinnedDrop)]
pub(crate) struct Registration<T> {
    #[pin]
    raw: Opaque<Raw>,
    _t: PhantomData<T>,
}

// SAFETY: `misc_deregister` may be called from any thread.
unsafe impl<T> Send for Registration<T> {}
// SAFETY: a shared `Registration` gives access to nothing.
unsafe impl<T> Sync for Registration<T> {}

impl<T: MiscDevice> Registration<T> {
    /// Registers /dev/`name`, handled by `T`, whose open files keep `module` loaded.
    ///
    /// # Safety
    ///
    /// `module` is the module whose data this registration is part of (the `init` argument of
    /// the module it is a field of), so that it is not dropped while a file is open: open files
    /// point to the file operations inside it.
    pub(crate) unsafe fn register(
        name: &'static CStr,
        module: &'static ThisModule,
    ) -> impl PinInit<Self, Error> {
        let misc = MiscDeviceOptions { name }.into_raw::<T>();
        // SAFETY: `into_raw` points `fops` to the kernel crate's `'static` table for `T`.
        let mut fops = unsafe { *misc.fops };
        fops.owner = module.as_ptr();
        try_pin_init!(Self {
            raw <- Opaque::try_ffi_init(move |slot: *mut Raw| {
                // SAFETY: `slot` is valid for writes; it is pinned and stays so until `drop`,
                // which deregisters the device first (and, by the contract of `register`, no
                // file is open by then).
                unsafe {
                    let fops_slot = addr_of_mut!((*slot).fops);
                    let misc_slot = addr_of_mut!((*slot).misc);
                    fops_slot.write(fops);
                    misc_slot.write(bindings::miscdevice {
                        fops: fops_slot,
                        ..misc
                    });
                    to_result(bindings::misc_register(misc_slot))
                }
            }),
            _t: PhantomData,
        })
    }
}

#[pinned_drop]
impl<T> PinnedDrop for Registration<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: by the invariant, `misc` is registered; it is deregistered once, here.
        unsafe { bindings::misc_deregister(addr_of_mut!((*self.raw.get()).misc)) };
    }
}
