// SPDX-License-Identifier: GPL-2.0

//! LKMPG chardev in Rust: /dev/chardev says how many times it has been opened.
//!
//! Only one opener at a time: a second concurrent open gets `EBUSY`. Writes are refused with
//! `EINVAL`. The original registers a major number and a device class by hand; the kernel's
//! Rust offers the misc device for this (a dynamic minor under major 10), which gives the same
//! /dev/chardev to user space.
//!
//! ```sh
//! $ cat /dev/chardev
//! I already told you 0 times Hello world!
//! ```

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use kernel::{
    fs::{File, Kiocb},
    iov::{IovIterDest, IovIterSource},
    miscdevice::{MiscDevice, MiscDeviceRegistration},
    prelude::*,
    str::CString,
};

#[path = "../../lib/miscdev.rs"]
mod miscdev;

module! {
    type: ChardevModule,
    name: "chardev",
    authors: ["rustkm"],
    description: "LKMPG chardev in Rust",
    license: "GPL",
}

/// Whether a file is open on the device right now.
static ALREADY_OPEN: AtomicBool = AtomicBool::new(false);
/// How many opens succeeded since the module was loaded.
static COUNTER: AtomicU32 = AtomicU32::new(0);

#[pin_data]
struct ChardevModule {
    #[pin]
    _miscdev: miscdev::Registration<Chardev>,
}

impl kernel::InPlaceModule for ChardevModule {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        pr_info!("Device created on /dev/chardev\n");
        try_pin_init!(Self {
            // SAFETY: the registration is part of this module's data.
            _miscdev <- unsafe { miscdev::Registration::register(c"chardev", module) },
        })
    }
}

/// The one open file, with the message it was given.
struct Chardev {
    message: CString,
}

impl Chardev {
    fn new() -> Result<KBox<Self>> {
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        let message =
            CString::try_from_fmt(fmt!("I already told you {} times Hello world!\n", count))?;
        Ok(KBox::new(Chardev { message }, GFP_KERNEL)?)
    }
}

#[vtable]
impl MiscDevice for Chardev {
    type Ptr = KBox<Self>;

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<KBox<Self>> {
        if ALREADY_OPEN
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return Err(EBUSY);
        }
        Chardev::new().inspect_err(|_| ALREADY_OPEN.store(false, Ordering::Release))
    }

    fn read_iter(mut kiocb: Kiocb<'_, Self::Ptr>, iov: &mut IovIterDest<'_>) -> Result<usize> {
        let message = kiocb.file().message.to_bytes();
        iov.simple_read_from_buffer(kiocb.ki_pos_mut(), message)
    }

    fn write_iter(_kiocb: Kiocb<'_, Self::Ptr>, _iov: &mut IovIterSource<'_>) -> Result<usize> {
        pr_alert!("Sorry, this operation is not supported.\n");
        Err(EINVAL)
    }
}

impl Drop for Chardev {
    fn drop(&mut self) {
        // The file is closed: the next caller may open.
        ALREADY_OPEN.store(false, Ordering::Release);
    }
}
