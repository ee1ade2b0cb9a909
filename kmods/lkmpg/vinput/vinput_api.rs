// SPDX-License-Identifier: GPL-2.0

//! The interface between vinput and the modules of virtual device types (vkbd): the Rust
//! counterpart of the original's vinput.h, compiled into both modules.
//!
//! Modules cannot share a Rust crate, so what crosses between them is a C ABI: `#[repr(C)]`
//! types defined here, once, and the two functions vinput exports (`vinput_register`,
//! `vinput_unregister`, see vinput_exports.c). A type module describes itself with a
//! [`VinputType`] and registers a `static` [`VinputDevice`] built by [`VinputDevice::new`].
//! The input device crosses as a raw `struct input_dev` pointer, rebuilt on the other side as
//! a view of kmods/lib/input.rs.

use crate::input::{Events, Setup};
use core::sync::atomic::{AtomicI64, Ordering};
use kernel::{ffi, prelude::*, str::CStr};

/// The longest write a vinput device takes, and the most a type's `read` may produce.
pub(crate) const VINPUT_MAX_LEN: usize = 128;

/// One virtual device, as its type sees it (vinput owns it).
#[repr(C)]
pub(crate) struct Vinput {
    id: ffi::c_long,
    last_entry: AtomicI64,
}

// Each module uses its own half of this interface.
#[allow(dead_code)]
impl Vinput {
    /// Virtual device number `id` (/dev/vinput`id`).
    pub(crate) const fn new(id: ffi::c_long) -> Self {
        Self {
            id,
            last_entry: AtomicI64::new(0),
        }
    }

    /// Its number.
    pub(crate) fn id(&self) -> ffi::c_long {
        self.id
    }

    /// The last value its type stored (vkbd: the last key event).
    pub(crate) fn last_entry(&self) -> i64 {
        self.last_entry.load(Ordering::Relaxed)
    }

    /// Stores a value for the type.
    pub(crate) fn set_last_entry(&self, value: i64) {
        self.last_entry.store(value, Ordering::Relaxed);
    }
}

/// A virtual device type, implemented in its own module.
pub(crate) trait VinputType: 'static {
    /// Its name, which `echo NAME > /sys/class/vinput/export` selects (at most 15 bytes).
    const NAME: &'static CStr;
    /// Sets up a new input device (which events it reports) before vinput registers it.
    fn init(setup: &mut Setup<'_>) -> Result;
    /// A write of `text` (at most [`VINPUT_MAX_LEN`] bytes) to /dev/vinputN.
    fn send(vinput: &Vinput, events: Events<'_>, text: &[u8]) -> Result<usize>;
    /// What a read of /dev/vinputN gives: written into `out`, returns its length.
    fn read(vinput: &Vinput, out: &mut [u8; VINPUT_MAX_LEN]) -> usize;
}

/// The C ABI of a type's operations (the original's `struct vinput_ops`).
#[repr(C)]
struct VinputOps {
    init: unsafe extern "C" fn(input: *mut ffi::c_void) -> ffi::c_int,
    send: unsafe extern "C" fn(
        vinput: *const Vinput,
        input: *mut ffi::c_void,
        buf: *const u8,
        len: usize,
    ) -> isize,
    read: unsafe extern "C" fn(vinput: *const Vinput, buf: *mut u8) -> isize,
}

/// A registered type (the original's `struct vinput_device`).
///
/// # Invariants
///
/// Made only by [`VinputDevice::new`]: `name` is a 'static NUL-terminated string and the ops
/// are the adapters of one [`VinputType`].
#[repr(C)]
pub(crate) struct VinputDevice {
    name: *const ffi::c_char,
    ops: VinputOps,
}

// SAFETY: immutable; its pointers refer to 'static data and functions.
unsafe impl Sync for VinputDevice {}

// Each module uses its own half of this interface.
#[allow(dead_code)]
impl VinputDevice {
    /// The description of `T`, to be kept in a `static` of its module.
    pub(crate) const fn new<T: VinputType>() -> Self {
        // `as_char_ptr` is not a `const fn`; this is the same cast.
        #[allow(clippy::disallowed_methods)]
        let name = T::NAME.as_ptr().cast::<ffi::c_char>();
        Self {
            name,
            ops: VinputOps {
                init: init_adapter::<T>,
                send: send_adapter::<T>,
                read: read_adapter::<T>,
            },
        }
    }

    /// Its name.
    pub(crate) fn name(&self) -> &CStr {
        // SAFETY: by the type invariant, `name` is a 'static NUL-terminated string.
        unsafe { CStr::from_char_ptr(self.name) }
    }

    /// Sets up a new input device for this type.
    pub(crate) fn init(&self, setup: &mut Setup<'_>) -> Result {
        // SAFETY: `init` is an adapter (type invariant); `setup` is a live view.
        let err = unsafe { (self.ops.init)(setup.as_raw()) };
        if err < 0 {
            return Err(Error::from_errno(err));
        }
        Ok(())
    }

    /// Hands a write to the type.
    pub(crate) fn send(&self, vinput: &Vinput, events: Events<'_>, text: &[u8]) -> Result<usize> {
        // SAFETY: `send` is an adapter (type invariant); the pointers are valid for the call.
        let ret = unsafe { (self.ops.send)(vinput, events.as_raw(), text.as_ptr(), text.len()) };
        if ret < 0 {
            return Err(Error::from_errno(ret as ffi::c_int));
        }
        Ok(ret as usize)
    }

    /// What the type says to a read.
    pub(crate) fn read(&self, vinput: &Vinput, out: &mut [u8; VINPUT_MAX_LEN]) -> usize {
        // SAFETY: `read` is an adapter (type invariant); `out` has VINPUT_MAX_LEN bytes.
        let len = unsafe { (self.ops.read)(vinput, out.as_mut_ptr()) };
        usize::try_from(len).map_or(0, |len| len.min(VINPUT_MAX_LEN))
    }
}

/// # Safety
///
/// `input` is the raw pointer of a live [`Setup`].
unsafe extern "C" fn init_adapter<T: VinputType>(input: *mut ffi::c_void) -> ffi::c_int {
    // SAFETY: per the contract.
    let Some(mut setup) = (unsafe { Setup::from_raw(input) }) else {
        return EINVAL.to_errno();
    };
    match T::init(&mut setup) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// # Safety
///
/// `vinput` is valid, `input` is the raw pointer of live [`Events`], `buf` points to `len`
/// readable bytes; all for the duration of the call.
unsafe extern "C" fn send_adapter<T: VinputType>(
    vinput: *const Vinput,
    input: *mut ffi::c_void,
    buf: *const u8,
    len: usize,
) -> isize {
    // SAFETY: per the contract.
    let (vinput, events) = unsafe { (&*vinput, Events::from_raw(input)) };
    let Some(events) = events else {
        return EINVAL.to_errno() as isize;
    };
    // SAFETY: per the contract.
    let text = unsafe { core::slice::from_raw_parts(buf, len) };
    match T::send(vinput, events, text) {
        Ok(count) => isize::try_from(count).unwrap_or(isize::MAX),
        Err(e) => e.to_errno() as isize,
    }
}

/// # Safety
///
/// `vinput` is valid and `buf` points to [`VINPUT_MAX_LEN`] writable bytes, for the call.
unsafe extern "C" fn read_adapter<T: VinputType>(vinput: *const Vinput, buf: *mut u8) -> isize {
    // SAFETY: per the contract.
    let (vinput, out) = unsafe { (&*vinput, &mut *buf.cast::<[u8; VINPUT_MAX_LEN]>()) };
    T::read(vinput, out).min(VINPUT_MAX_LEN) as isize
}

extern "C" {
    fn vinput_register(dev: *const VinputDevice) -> ffi::c_int;
    fn vinput_unregister(dev: *const VinputDevice);
}

/// A type registered with vinput (from its own module); unregistered when dropped, which
/// removes its virtual devices.
#[allow(dead_code)] // vinput itself registers no type.
pub(crate) struct Registration {
    dev: &'static VinputDevice,
}

#[allow(dead_code)] // vinput itself registers no type.
impl Registration {
    /// Registers `dev` with vinput.
    pub(crate) fn register(dev: &'static VinputDevice) -> Result<Self> {
        // SAFETY: `dev` is 'static and stays registered until `Drop`.
        let err = unsafe { vinput_register(dev) };
        if err < 0 {
            return Err(Error::from_errno(err));
        }
        Ok(Self { dev })
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // SAFETY: `dev` was registered by `register`; once this returns vinput no longer
        // uses it, so the module holding it may go.
        unsafe { vinput_unregister(self.dev) };
    }
}
