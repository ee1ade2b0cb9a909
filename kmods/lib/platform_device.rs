// SPDX-License-Identifier: GPL-2.0

//! A platform device that a module creates itself, optionally carrying typed platform data, and
//! the driver side's access to that data.
//!
//! 7.2's Rust has platform *drivers* (`kernel::platform`) but no way to create a platform
//! device, nor to read a device's `platform_data`. This wraps `platform_device_register_full`
//! (which copies the data into the device) and `platform_device_unregister`. Examples with no
//! real hardware (devicemodel, dma) use it to give their driver a device to bind to.

use core::ptr::NonNull;
use kernel::{bindings, device, error::from_err_ptr, ffi, platform, prelude::*, str::CStr};

/// A registered platform device named `name` (no instance number); unregistered when dropped.
pub(crate) struct DeviceRegistration {
    pdev: NonNull<bindings::platform_device>,
}

// SAFETY: the pointer is only passed back to `platform_device_unregister`, which may be called
// from any thread.
unsafe impl Send for DeviceRegistration {}
// SAFETY: a shared `DeviceRegistration` gives no access to the device.
unsafe impl Sync for DeviceRegistration {}

impl DeviceRegistration {
    /// Registers the platform device `name` with a copy of `data` as its platform data; a
    /// driver of the same name is bound to it at once if registered.
    ///
    /// `T: Copy` because the kernel copies it bytewise; `'static` because the copy lives as long
    /// as the device, which may outlive this registration by a few references.
    #[allow(dead_code)] // Not every user has platform data.
    pub(crate) fn register<T: Copy + Sync + 'static>(
        name: &'static CStr,
        data: &T,
    ) -> Result<Self> {
        Self::register_raw(
            name,
            core::ptr::from_ref(data).cast::<ffi::c_void>(),
            core::mem::size_of::<T>(),
        )
    }

    /// Registers the platform device `name` without platform data.
    #[allow(dead_code)] // Not every user goes without platform data.
    pub(crate) fn register_bare(name: &'static CStr) -> Result<Self> {
        Self::register_raw(name, core::ptr::null(), 0)
    }

    fn register_raw(
        name: &'static CStr,
        data: *const ffi::c_void,
        size_data: usize,
    ) -> Result<Self> {
        let info = bindings::platform_device_info {
            name: name.as_char_ptr(),
            id: bindings::PLATFORM_DEVID_NONE,
            data,
            size_data,
            // SAFETY: all-zero is a valid `platform_device_info` (no parent, resources or
            // properties).
            ..unsafe { core::mem::zeroed() }
        };
        // SAFETY: `info` is valid for the call; the kernel copies `name`'s pointer ('static)
        // and `size_data` bytes of `data` (valid for them, or null with size 0).
        let pdev = from_err_ptr(unsafe { bindings::platform_device_register_full(&info) })?;
        NonNull::new(pdev).map(|pdev| Self { pdev }).ok_or(ENOMEM)
    }
}

impl Drop for DeviceRegistration {
    fn drop(&mut self) {
        // SAFETY: `pdev` came from a successful registration and is unregistered once, here;
        // this unbinds its driver first.
        unsafe { bindings::platform_device_unregister(self.pdev.as_ptr()) };
    }
}

/// The platform data of `pdev`, if it has any.
#[allow(dead_code)] // Not every user has platform data.
///
/// # Safety
///
/// `pdev` was registered by [`DeviceRegistration::register`] with a `T` (or has none).
pub(crate) unsafe fn platform_data<T, Ctx: device::DeviceContext>(
    pdev: &platform::Device<Ctx>,
) -> Option<&T> {
    // `platform::Device` is a transparent wrapper of `struct platform_device`.
    let raw = core::ptr::from_ref(pdev).cast::<bindings::platform_device>();
    // SAFETY: `raw` points to the live device `pdev` refers to.
    let data = unsafe { (*raw).dev.platform_data };
    // SAFETY: per the contract, a non-null `platform_data` is the device's own copy of a `T`,
    // freed only when the device is released, after the borrow of `pdev` ends.
    unsafe { data.cast::<T>().as_ref() }
}
