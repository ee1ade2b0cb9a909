// SPDX-License-Identifier: GPL-2.0

//! LKMPG ioctl in Rust: /dev/ioctltest, whose open files each hold a byte (0xff at open) that
//! ioctls set and get through a `struct ioctl_arg { unsigned int val; }`, and that every byte
//! of a read returns. A second value, an `int`, is shared by all files. The ioctls, numbered as
//! in the original (type 0x66):
//!
//! - `IOCTL_VALSET` (`_IOW(0x66, 0, struct ioctl_arg)`): sets the file's byte (to `val`'s low
//!   byte, as the original's `unsigned char` keeps it);
//! - `IOCTL_VALGET` (`_IOR(0x66, 1, struct ioctl_arg)`): gets it;
//! - `IOCTL_VALGET_NUM` (`_IOR(0x66, 2, int)`): copies the shared int to the argument;
//! - `IOCTL_VALSET_NUM` (`_IO(0x66, 3)`): sets the shared int to the argument itself.
//!
//! Others get `ENOTTY`, bad pointers `EFAULT`. The original allocates a char device region with
//! no device node (user space has to mknod one); this is a misc device, /dev/ioctltest
//! (through `kmods/lib/miscdev.rs`: an open file keeps the module loaded, as in C). Its
//! per-file `rwlock_t` guarding one byte is an atomic byte here (the kernel's Rust has no
//! rwlock).

use core::sync::atomic::{AtomicI32, AtomicU8, Ordering};
use kernel::{
    fs::{File, Kiocb},
    ioctl::{_IO, _IOR, _IOW},
    iov::IovIterDest,
    miscdevice::{MiscDevice, MiscDeviceRegistration},
    prelude::*,
    transmute::{AsBytes, FromBytes},
    uaccess::{UserPtr, UserSlice},
};

#[path = "../../lib/miscdev.rs"]
mod miscdev;

module! {
    type: IoctlModule,
    name: "ioctl",
    authors: ["rustkm"],
    description: "This is test_ioctl module",
    license: "GPL",
}

/// The original's `struct ioctl_arg`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct IoctlArg {
    val: u32,
}

// SAFETY: `IoctlArg` is `repr(C)` with a single `u32`: any 4 bytes are a valid value.
unsafe impl FromBytes for IoctlArg {}
// SAFETY: `IoctlArg` is `repr(C)` with a single `u32`: no padding, no uninitialised bytes.
unsafe impl AsBytes for IoctlArg {}

/// The ioctl type (Documentation/userspace-api/ioctl/ioctl-number.rst).
const IOC_MAGIC: u32 = 0x66;
const IOCTL_VALSET: u32 = _IOW::<IoctlArg>(IOC_MAGIC, 0);
const IOCTL_VALGET: u32 = _IOR::<IoctlArg>(IOC_MAGIC, 1);
const IOCTL_VALGET_NUM: u32 = _IOR::<i32>(IOC_MAGIC, 2);
const IOCTL_VALSET_NUM: u32 = _IO(IOC_MAGIC, 3);

const DRIVER_NAME: &str = "ioctltest";

/// The value shared by all files (the original's `ioctl_num`).
static IOCTL_NUM: AtomicI32 = AtomicI32::new(0);

#[pin_data(PinnedDrop)]
struct IoctlModule {
    #[pin]
    _miscdev: miscdev::Registration<TestIoctl>,
}

impl kernel::InPlaceModule for IoctlModule {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            // SAFETY: the registration is part of this module's data.
            _miscdev <- unsafe { miscdev::Registration::register(c"ioctltest", module) },
        })
        .pin_chain(|_| {
            pr_alert!(
                "{} driver installed on /dev/{}.\n",
                DRIVER_NAME,
                DRIVER_NAME
            );
            Ok(())
        })
    }
}

#[pinned_drop]
impl PinnedDrop for IoctlModule {
    fn drop(self: Pin<&mut Self>) {
        pr_alert!("{} driver removed.\n", DRIVER_NAME);
    }
}

/// One open file's data (the original's `struct test_ioctl_data`).
struct TestIoctl {
    val: AtomicU8,
}

/// How many bytes a read copies per step.
const CHUNK: usize = 256;

#[vtable]
impl MiscDevice for TestIoctl {
    type Ptr = KBox<Self>;

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<KBox<Self>> {
        pr_alert!("test_ioctl_open call.\n");
        Ok(KBox::new(
            TestIoctl {
                val: AtomicU8::new(0xff),
            },
            GFP_KERNEL,
        )?)
    }

    fn release(device: KBox<Self>, _file: &File) {
        pr_alert!("test_ioctl_close call.\n");
        drop(device);
    }

    /// Fills the whole buffer with the file's byte.
    fn read_iter(kiocb: Kiocb<'_, Self::Ptr>, iov: &mut IovIterDest<'_>) -> Result<usize> {
        let chunk = [kiocb.file().val.load(Ordering::Relaxed); CHUNK];
        let mut total = 0;
        while !iov.is_empty() {
            // Large reads (up to the kernel's ~2 GiB per call) stay interruptible.
            if total != 0 && kernel::current!().signal_pending() {
                break;
            }
            let wanted = iov.len().min(CHUNK);
            let copied = iov.copy_to_iter(&chunk[..wanted]);
            total += copied;
            if copied < wanted {
                break;
            }
        }
        if total == 0 && !iov.is_empty() {
            return Err(EFAULT);
        }
        Ok(total)
    }

    fn ioctl(me: &TestIoctl, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        let user = UserPtr::from_addr(arg);
        match cmd {
            IOCTL_VALSET => {
                let data: IoctlArg = UserSlice::new(user, core::mem::size_of::<IoctlArg>())
                    .reader()
                    .read()?;
                pr_alert!("IOCTL set val:{:x} .\n", data.val);
                // The original keeps it in an `unsigned char`: the low byte.
                me.val.store(data.val as u8, Ordering::Relaxed);
            }
            IOCTL_VALGET => {
                let data = IoctlArg {
                    val: me.val.load(Ordering::Relaxed).into(),
                };
                UserSlice::new(user, core::mem::size_of::<IoctlArg>())
                    .writer()
                    .write(&data)?;
            }
            IOCTL_VALGET_NUM => {
                let num = IOCTL_NUM.load(Ordering::Relaxed);
                UserSlice::new(user, core::mem::size_of::<i32>())
                    .writer()
                    .write(&num)?;
            }
            // The argument is the value itself, cut to an int as in the original.
            IOCTL_VALSET_NUM => IOCTL_NUM.store(arg as i32, Ordering::Relaxed),
            _ => return Err(ENOTTY),
        }
        Ok(0)
    }
}

#[kunit_tests(lkmpg_ioctl)]
mod tests {
    use super::*;

    /// The numbers C's _IOW/_IOR/_IO give (asm-generic/ioctl.h), which user space uses.
    #[test]
    fn ioctl_numbers_match_the_c_macros() {
        assert_eq!(core::mem::size_of::<IoctlArg>(), 4);
        assert_eq!(IOCTL_VALSET, 0x4004_6600);
        assert_eq!(IOCTL_VALGET, 0x8004_6601);
        assert_eq!(IOCTL_VALGET_NUM, 0x8004_6602);
        assert_eq!(IOCTL_VALSET_NUM, 0x6603);
    }
}
