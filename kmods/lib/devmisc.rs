// SPDX-License-Identifier: GPL-2.0

//! Misc devices that come and go with the devices a driver binds, each carrying a context
//! (the bound device's state) that `MiscDevice::open` finds.
//!
//! 7.2's `MiscDeviceRegistration` has two gaps for a driver: its file operations have no
//! `owner` (so `rmmod` succeeds while a file is open, and the file's next call runs unloaded
//! code), and `open` gets no data of the registration, only the `struct miscdevice`. kmods/lib's
//! `miscdev.rs` fills the first with operations stored in the registration, which is fine for
//! a registration that lives as long as the module, but not for one dropped at unbind while
//! files stay open: their `f_op` would point into freed memory.
//!
//! Here the operations are a `static` of the module ([`FileOps`], built at compile time from
//! the kernel crate's table for `T`, `owner` = `THIS_MODULE`): open files keep the module and
//! with it the table. A [`Registration`] is the `struct miscdevice` followed by a context `C`
//! (say, an `Arc` of the device's state); `open` gets it back with [`context`] and keeps its
//! own reference, so a file outlives the registration and the device binding safely.

use core::marker::{PhantomData, PhantomPinned};
use kernel::{
    bindings,
    device::Device,
    error::to_result,
    miscdevice::{MiscDevice, MiscDeviceOptions, MiscDeviceRegistration},
    prelude::*,
    str::CStr,
    types::Opaque,
    ThisModule,
};

/// The file operations of the misc devices handled by `T` whose registrations carry a `C`.
#[repr(transparent)]
pub(crate) struct FileOps<T, C> {
    fops: bindings::file_operations,
    _types: PhantomData<fn() -> (T, C)>,
}

// SAFETY: the table is never written after its constant initialisation; the kernel only reads
// it, from any thread.
unsafe impl<T, C> Sync for FileOps<T, C> {}

impl<T: MiscDevice, C> FileOps<T, C> {
    /// The kernel crate's operations for `T` with `owner` set: use as the initialiser of a
    /// `static` (`static FOPS: FileOps<Dev, Ctx> = FileOps::new(&THIS_MODULE);`).
    pub(crate) const fn new(owner: &ThisModule) -> Self {
        let raw = MiscDeviceOptions { name: c"" }.into_raw::<T>();
        // SAFETY: `into_raw` points `fops` to the kernel crate's constant table for `T`.
        let mut fops = unsafe { *raw.fops };
        fops.owner = owner.as_ptr();
        Self {
            fops,
            _types: PhantomData,
        }
    }
}

/// A registered misc device /dev/`name` carrying `context`, deregistered when dropped. Files
/// that are open then stay valid (they hold the module), but see no registration anymore.
///
/// # Invariants
///
/// `misc` is registered with `misc_register` and its `fops` is a `'static` [`FileOps<T, C>`].
#[repr(C)]
#[pin_data(PinnedDrop)]
pub(crate) struct Registration<C> {
    #[pin]
    misc: Opaque<bindings::miscdevice>,
    context: C,
    #[pin]
    _pin: PhantomPinned,
}

// SAFETY: `misc_deregister` may be called from any thread; `C` is shared as `&C` only.
unsafe impl<C: Send + Sync> Send for Registration<C> {}
// SAFETY: a shared `Registration` gives out `&C` only.
unsafe impl<C: Send + Sync> Sync for Registration<C> {}

impl<C: Send + Sync> Registration<C> {
    /// Registers /dev/`name`, handled by `T` through `fops`, below `parent` in sysfs.
    pub(crate) fn register<'a, T: MiscDevice>(
        name: &'static CStr,
        fops: &'static FileOps<T, C>,
        parent: &'a Device,
        context: C,
    ) -> impl PinInit<Self, Error> + 'a
    where
        C: 'a,
    {
        try_pin_init!(Self {
            context,
            misc <- Opaque::try_ffi_init(move |slot: *mut bindings::miscdevice| {
                let mut misc = MiscDeviceOptions { name }.into_raw::<T>();
                misc.fops = &fops.fops;
                // `device::Device` is a `#[repr(transparent)]` wrapper of `struct device`.
                misc.parent = core::ptr::from_ref(parent).cast_mut().cast();
                // SAFETY: `slot` is valid for writes and pinned until `drop`, which
                // deregisters first; `context` is initialised before (fields in this order),
                // so an `open` that comes at once finds it.
                unsafe {
                    slot.write(misc);
                    to_result(bindings::misc_register(slot))
                }
            }),
            _pin: PhantomPinned,
        })
    }
}

/// The context of the registration whose device is being opened.
///
/// # Safety
///
/// `misc` is what `T::open` was given, for a device registered by a [`Registration<C>`] with
/// a [`FileOps<T, C>`] (the only way `T`'s operations with a context reach a misc device), and
/// the reference is used during that `open` only: `misc_open()` holds the misc lock across
/// `open`, and deregistration takes it, so the registration outlives the call.
pub(crate) unsafe fn context<'a, T: MiscDevice, C>(misc: &'a MiscDeviceRegistration<T>) -> &'a C {
    // SAFETY: per the contract `misc` is the `misc` field of a live `Registration<C>`, which
    // is `#[repr(C)]` with `misc` first: the same address.
    unsafe { &(*misc.as_raw().cast::<Registration<C>>()).context }
}

#[pinned_drop]
impl<C> PinnedDrop for Registration<C> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: by the invariant `misc` is registered; it is deregistered once, here.
        unsafe { bindings::misc_deregister(self.misc.get()) };
    }
}
