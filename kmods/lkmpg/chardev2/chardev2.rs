// SPDX-License-Identifier: GPL-2.0

//! LKMPG chardev2 in Rust: /dev/char_dev holds a message (at most 80 bytes) that user space
//! sets and reads with `write`/`read` or with three ioctls, numbered as in the original's
//! chardev.h (type 100, the original's major number):
//!
//! - `IOCTL_SET_MSG` (`_IOW(100, 0, char *)`): the argument points to a C string, the new
//!   message (cut to 80 bytes);
//! - `IOCTL_GET_MSG` (`_IOR(100, 1, char *)`): the message and its NUL are copied to the
//!   argument (at most 81 bytes);
//! - `IOCTL_GET_NTH_BYTE` (`_IOWR(100, 2, int)`): returns byte N of the message; N equal to its
//!   length gives its terminating 0.
//!
//! As in the original, any number of files may be open, but only one ioctl runs at a time: an
//! ioctl while another one is in progress (on any file) gets `EBUSY`.
//!
//! Where the original has undefined or odd behaviour, this port gives an error instead: a bad
//! user pointer gets `EFAULT` (the original ignores `get_user`'s failures), `IOCTL_GET_NTH_BYTE`
//! past the end of the message gets `EINVAL` (the original reads past its buffer), an unknown
//! ioctl gets `ENOTTY` (the original returns 0), and a `write` replaces the whole message (the
//! original overwrites its start and keeps the old tail). The original registers major 100 and a
//! device class by hand; this is a misc device with the same /dev/char_dev, registered through
//! `kmods/lib/miscdev.rs` so that an open file keeps the module loaded, as in C.

use core::sync::atomic::{AtomicBool, Ordering};
use kernel::{
    fs::{File, Kiocb},
    global_lock,
    ioctl::{_IOR, _IOW, _IOWR},
    iov::{IovIterDest, IovIterSource},
    miscdevice::{MiscDevice, MiscDeviceRegistration},
    prelude::*,
    uaccess::{UserPtr, UserSlice},
};

#[path = "../../lib/miscdev.rs"]
mod miscdev;

module! {
    type: Chardev2Module,
    name: "chardev2",
    authors: ["rustkm"],
    description: "LKMPG chardev2 in Rust: a message set and read through read/write and ioctls",
    license: "GPL",
}

/// The ioctl type: the original's major number.
const MAJOR_NUM: u32 = 100;
/// Sets the message from a C string in user space.
const IOCTL_SET_MSG: u32 = _IOW::<*mut u8>(MAJOR_NUM, 0);
/// Copies the message and its NUL to user space.
const IOCTL_GET_MSG: u32 = _IOR::<*mut u8>(MAJOR_NUM, 1);
/// Returns the message's byte N (the argument).
const IOCTL_GET_NTH_BYTE: u32 = _IOWR::<i32>(MAJOR_NUM, 2);

/// The longest message.
const BUF_LEN: usize = 80;

/// A message: its bytes up to the first NUL; `bytes[BUF_LEN]` is always 0.
type Message = [u8; BUF_LEN + 1];

global_lock! {
    // SAFETY: initialised in `init` before the device that uses it is registered.
    unsafe(uninit) static MESSAGE: Mutex<Message> = [0; BUF_LEN + 1];
}

/// Whether an ioctl is running (the original's `already_open`).
static IOCTL_RUNNING: AtomicBool = AtomicBool::new(false);

/// The message's length (up to its first NUL).
fn text_len(message: &Message) -> usize {
    message.iter().position(|&b| b == 0).unwrap_or(BUF_LEN)
}

/// Replaces the message with `text` (at most `BUF_LEN` bytes are kept).
fn set_message(text: &[u8]) {
    let count = text.len().min(BUF_LEN);
    let mut message = MESSAGE.lock();
    message.fill(0);
    message[..count].copy_from_slice(&text[..count]);
}

/// A copy of the message, taken under the lock (user copies happen without it).
fn message() -> Message {
    *MESSAGE.lock()
}

/// Holds [`IOCTL_RUNNING`] for one ioctl.
struct IoctlTurn;

impl IoctlTurn {
    fn take() -> Result<Self> {
        IOCTL_RUNNING
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .map(|_| IoctlTurn)
            .map_err(|_| EBUSY)
    }
}

impl Drop for IoctlTurn {
    fn drop(&mut self) {
        // We're now ready for our next caller.
        IOCTL_RUNNING.store(false, Ordering::Release);
    }
}

#[pin_data]
struct Chardev2Module {
    #[pin]
    _miscdev: miscdev::Registration<CharDev>,
}

impl kernel::InPlaceModule for Chardev2Module {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        // SAFETY: called once, before the device (the only user of the lock) exists.
        unsafe { MESSAGE.init() };
        pr_info!("Device created on /dev/char_dev\n");
        try_pin_init!(Self {
            // SAFETY: the registration is part of this module's data.
            _miscdev <- unsafe { miscdev::Registration::register(c"char_dev", module) },
        })
    }
}

/// An open /dev/char_dev; the message is shared by all of them.
struct CharDev;

#[vtable]
impl MiscDevice for CharDev {
    type Ptr = ();

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result {
        pr_info!("device_open\n");
        Ok(())
    }

    fn release(_device: (), _file: &File) {
        pr_info!("device_release\n");
    }

    fn read_iter(mut kiocb: Kiocb<'_, ()>, iov: &mut IovIterDest<'_>) -> Result<usize> {
        let message = message();
        let text = &message[..text_len(&message)];
        let pos = kiocb.ki_pos_mut();
        let rest = usize::try_from(*pos)
            .ok()
            .and_then(|start| text.get(start..))
            .unwrap_or(&[]);
        if rest.is_empty() {
            // At the end of the message: as the original, the next read starts again.
            *pos = 0;
            return Ok(0);
        }
        let count = iov.copy_to_iter(rest);
        if count == 0 && !iov.is_empty() {
            return Err(EFAULT);
        }
        *pos += count as i64;
        Ok(count)
    }

    fn write_iter(_kiocb: Kiocb<'_, ()>, iov: &mut IovIterSource<'_>) -> Result<usize> {
        let wanted = iov.len();
        let mut text = [0u8; BUF_LEN];
        let count = iov.copy_from_iter(&mut text);
        if count == 0 && wanted != 0 {
            return Err(EFAULT);
        }
        if count != 0 {
            set_message(&text[..count]);
        }
        pr_info!("device_write: {} of {} bytes\n", count, wanted);
        Ok(count)
    }

    fn ioctl(_device: (), _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        let _turn = IoctlTurn::take()?;
        match cmd {
            IOCTL_SET_MSG => {
                let mut text = [0u8; BUF_LEN + 1];
                let reader = UserSlice::new(UserPtr::from_addr(arg), text.len()).reader();
                let text = reader.strcpy_into_buf(&mut text)?;
                set_message(text.to_bytes());
                Ok(0)
            }
            IOCTL_GET_MSG => {
                let message = message();
                let with_nul = &message[..=text_len(&message)];
                let mut writer = UserSlice::new(UserPtr::from_addr(arg), with_nul.len()).writer();
                writer.write_slice(with_nul)?;
                Ok(0)
            }
            IOCTL_GET_NTH_BYTE => {
                let message = message();
                // Byte `len` is the terminating 0, which ends the user program's loop.
                match message[..=text_len(&message)].get(arg) {
                    Some(&byte) => Ok(isize::from(byte)),
                    None => Err(EINVAL),
                }
            }
            _ => Err(ENOTTY),
        }
    }
}
