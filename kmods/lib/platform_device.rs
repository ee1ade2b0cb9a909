// SPDX-License-Identifier: GPL-2.0

//! A safe synthetic platform device: `platform_device_alloc` + `platform_device_add`, removed
//! with `platform_device_unregister` on drop.
//!
//! 7.2's `kernel::platform` drives platform devices (`platform::Driver`) but cannot create
//! one; a module that demonstrates a driver without hardware needs a device to bind to. The
//! platform core gives every allocated device a 32-bit DMA mask (`platform_dma_mask`), so the
//! driver may set its DMA mask as on real hardware.
//!
//! ```ignore
//! let device = PlatformDevice::register(c"my_demo")?; // binds to a driver named "my_demo"
//! ```

use core::ptr::NonNull;
use kernel::{bindings, error::to_result, prelude::*, str::CStr};

/// A registered platform device; unregistered (and unbound from its driver) when dropped.
///
/// # Invariants
///
/// `pdev` came from `platform_device_alloc` and was added with `platform_device_add`.
pub(crate) struct PlatformDevice {
    pdev: NonNull<bindings::platform_device>,
}

// SAFETY: the pointer is only passed to `platform_device_unregister`, callable from any thread.
unsafe impl Send for PlatformDevice {}
// SAFETY: a shared `PlatformDevice` offers no access to the device.
unsafe impl Sync for PlatformDevice {}

impl PlatformDevice {
    /// Adds a platform device named `name` (with no instance number), which a platform driver
    /// of the same name binds to. May sleep.
    pub(crate) fn register(name: &'static CStr) -> Result<Self> {
        // SAFETY: `name` is a NUL-terminated string (copied by the platform core).
        let pdev = unsafe {
            bindings::platform_device_alloc(name.as_char_ptr(), bindings::PLATFORM_DEVID_NONE)
        };
        let pdev = NonNull::new(pdev).ok_or(ENOMEM)?;
        // SAFETY: `pdev` is a freshly allocated, not yet added platform device.
        if let Err(e) = to_result(unsafe { bindings::platform_device_add(pdev.as_ptr()) }) {
            // SAFETY: the device was not added; this drops the allocation's reference.
            unsafe { bindings::platform_device_put(pdev.as_ptr()) };
            return Err(e);
        }
        Ok(Self { pdev })
    }
}

impl Drop for PlatformDevice {
    fn drop(&mut self) {
        // SAFETY: the device was added (type invariant) and is unregistered once, here; this
        // unbinds its driver and drops the reference `platform_device_alloc` returned.
        unsafe { bindings::platform_device_unregister(self.pdev.as_ptr()) };
    }
}
