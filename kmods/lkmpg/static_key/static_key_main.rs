// SPDX-License-Identifier: GPL-2.0

//! LKMPG static_key in Rust: /dev/key_state flips a static key.
//!
//! `echo enable > /dev/key_state` patches the module's unlikely branch in, `echo disable`
//! patches it out; anything else (or more than 10 bytes) gets `EINVAL`. Each open runs the
//! branch: the log shows "fastpath 1", "do unlikely thing" only while the key is enabled, and
//! "fastpath 2"; reading gives "enabled" or "disabled", the key's state at open. One opener at
//! a time (`EBUSY`), as in the original. The original registers a major number and a device class
//! by hand; the misc device (through `kmods/lib/miscdev.rs`, so an open file keeps the module
//! loaded) gives the same /dev/key_state to user space.

use core::sync::atomic::{AtomicBool, Ordering};
use kernel::{
    fs::{File, Kiocb},
    iov::{IovIterDest, IovIterSource},
    miscdevice::{MiscDevice, MiscDeviceRegistration},
    prelude::*,
    str::BStr,
};

#[path = "../../lib/miscdev.rs"]
mod miscdev;
#[path = "../../lib/static_key.rs"]
mod static_key;

use static_key::KEY;

module! {
    type: StaticKeyModule,
    name: "static_key",
    authors: ["rustkm"],
    description: "LKMPG static_key in Rust",
    license: "GPL",
}

/// The longest command accepted, as in the original.
const BUF_LEN: usize = 10;

/// Whether a file is open on the device right now.
static ALREADY_OPEN: AtomicBool = AtomicBool::new(false);

#[pin_data]
struct StaticKeyModule {
    #[pin]
    _miscdev: miscdev::Registration<KeyState>,
}

impl kernel::InPlaceModule for StaticKeyModule {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        pr_info!("Device created on /dev/key_state\n");
        try_pin_init!(Self {
            // SAFETY: the registration is part of this module's data.
            _miscdev <- unsafe { miscdev::Registration::register(c"key_state", module) },
        })
    }
}

/// The one open file, with the message its open produced.
struct KeyState {
    message: &'static [u8],
}

#[vtable]
impl MiscDevice for KeyState {
    type Ptr = KBox<Self>;

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<KBox<Self>> {
        if ALREADY_OPEN
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return Err(EBUSY);
        }
        // As in the original: the message gives the key's state, the log the path taken.
        let message: &'static [u8] = if KEY.is_enabled() {
            b"enabled\n"
        } else {
            b"disabled\n"
        };
        pr_info!("fastpath 1\n");
        if KEY.unlikely() {
            pr_alert!("do unlikely thing\n");
        }
        pr_info!("fastpath 2\n");
        KBox::new(KeyState { message }, GFP_KERNEL)
            .map_err(Error::from)
            .inspect_err(|_| ALREADY_OPEN.store(false, Ordering::Release))
    }

    fn read_iter(mut kiocb: Kiocb<'_, Self::Ptr>, iov: &mut IovIterDest<'_>) -> Result<usize> {
        let message = kiocb.file().message;
        iov.simple_read_from_buffer(kiocb.ki_pos_mut(), message)
    }

    fn write_iter(_kiocb: Kiocb<'_, Self::Ptr>, iov: &mut IovIterSource<'_>) -> Result<usize> {
        let length = iov.len();
        if length > BUF_LEN {
            pr_err!("command exceeded {} char\n", BUF_LEN);
            return Err(EINVAL);
        }
        let mut command = [0u8; BUF_LEN];
        let command = command.get_mut(..length).ok_or(EINVAL)?;
        if iov.copy_from_iter(command) != length {
            return Err(EFAULT);
        }
        if command.starts_with(b"enable") {
            KEY.enable();
        } else if command.starts_with(b"disable") {
            KEY.disable();
        } else {
            pr_err!("Invalid command: {}\n", BStr::from_bytes(command));
            return Err(EINVAL);
        }
        Ok(length)
    }
}

impl Drop for KeyState {
    fn drop(&mut self) {
        // The file is closed: the next caller may open.
        ALREADY_OPEN.store(false, Ordering::Release);
    }
}
