// SPDX-License-Identifier: GPL-2.0

//! fuzz_planted: a misc device with a bug planted on purpose, for `rustkm fuzz`'s own tests.
//!
//! `/dev/fuzz_planted` counts writes by size class (64 bytes a class) in a table of 64
//! classes. The planted bug: a write of exactly 4096 bytes is let through the size check and
//! indexes one class past the table's end, a Rust panic (BUG) in the kernel. Every other
//! size works. Never load it outside a throwaway VM.

use core::sync::atomic::{AtomicU64, Ordering};
use kernel::{
    fs::{File, Kiocb},
    iov::{IovIterDest, IovIterSource},
    miscdevice::{MiscDevice, MiscDeviceRegistration},
    prelude::*,
};

#[path = "../../../kmods/lib/miscdev.rs"]
mod miscdev;

module! {
    type: FuzzPlantedModule,
    name: "fuzz_planted",
    authors: ["rustkm"],
    description: "A misc device with a planted bug for rustkm fuzz",
    license: "GPL",
}

const CLASSES: usize = 64;
const CLASS_BYTES: usize = 64;

static WRITES: [AtomicU64; CLASSES] = [const { AtomicU64::new(0) }; CLASSES];

#[pin_data]
struct FuzzPlantedModule {
    #[pin]
    _miscdev: miscdev::Registration<FuzzPlanted>,
}

impl kernel::InPlaceModule for FuzzPlantedModule {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            // SAFETY: `module` is this module's `init` argument and the registration is a field
            // of the module, so open files keep it loaded.
            _miscdev <- unsafe { miscdev::Registration::register(c"fuzz_planted", module) },
        })
    }
}

struct FuzzPlanted;

#[vtable]
impl MiscDevice for FuzzPlanted {
    type Ptr = KBox<Self>;

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<KBox<Self>> {
        Ok(KBox::new(FuzzPlanted, GFP_KERNEL)?)
    }

    fn read_iter(mut kiocb: Kiocb<'_, Self::Ptr>, iov: &mut IovIterDest<'_>) -> Result<usize> {
        let total: u64 = WRITES.iter().map(|w| w.load(Ordering::Relaxed)).sum();
        let mut text = [0u8; 24];
        let mut n = 0;
        let mut value = total;
        loop {
            text[text.len() - 1 - n] = b'0' + (value % 10) as u8;
            n += 1;
            value /= 10;
            if value == 0 || n == text.len() - 1 {
                break;
            }
        }
        iov.simple_read_from_buffer(kiocb.ki_pos_mut(), &text[text.len() - n..])
    }

    fn write_iter(_kiocb: Kiocb<'_, Self::Ptr>, iov: &mut IovIterSource<'_>) -> Result<usize> {
        let len = iov.len();
        // The planted bug: the check should be `len >= CLASSES * CLASS_BYTES`.
        if len > CLASSES * CLASS_BYTES {
            return Err(EFBIG);
        }
        WRITES[len / CLASS_BYTES].fetch_add(1, Ordering::Relaxed);
        iov.advance(len);
        Ok(len)
    }
}
