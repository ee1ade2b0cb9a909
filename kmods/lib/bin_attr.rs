// SPDX-License-Identifier: GPL-2.0

//! A binary sysfs file on a device (as at24's `eeprom`), whose reads and writes a Rust type
//! handles.
//!
//! 7.2's Rust has no sysfs attributes. `struct bin_attribute` embeds `struct attribute`, whose
//! layout depends on the kernel's configuration, so the C half, `bin_attr_glue.c`, allocates
//! and registers the attribute and calls the `extern "C"` functions below. A module using this
//! links both (see kmods/drivers/eeprom/Kbuild).

use core::ptr::NonNull;
use kernel::{device::Device, ffi, prelude::*, str::CStr, sync::aref::ARef};

/// What the file does. Calls come concurrently: do your own locking. sysfs has already cut
/// `offset` and the buffer's length to the file's size, and never passes an empty one.
pub(crate) trait BinaryFile: Send + Sync {
    /// Fills `out` with the bytes at `offset`; returns how many it filled.
    fn read(&self, offset: usize, out: &mut [u8]) -> Result<usize>;
    /// Stores `data` at `offset`; returns how many bytes it stored.
    fn write(&self, offset: usize, data: &[u8]) -> Result<usize>;
}

extern "C" {
    fn rustkm_bin_attr_create(
        dev: *mut ffi::c_void,
        name: *const ffi::c_char,
        mode: u16,
        size: usize,
        data: *mut ffi::c_void,
        error: *mut ffi::c_int,
    ) -> *mut ffi::c_void;
    fn rustkm_bin_attr_remove(dev: *mut ffi::c_void, attr: *mut ffi::c_void);
}

/// What the C attribute's `private` points to.
struct Thunk(*const dyn BinaryFile);

/// A registered binary file of `size` bytes, owning its handler; removed when dropped.
pub(crate) struct DeviceBinFile<T: BinaryFile> {
    attr: NonNull<ffi::c_void>,
    dev: ARef<Device>,
    // Dropped after `attr` is removed (see `Drop`); the C side points at both.
    _thunk: KBox<Thunk>,
    _handler: Pin<KBox<T>>,
}

// SAFETY: the raw pointers refer only to `_thunk`, `_handler` (Send + Sync) and the attribute,
// which any thread may remove.
unsafe impl<T: BinaryFile> Send for DeviceBinFile<T> {}
// SAFETY: a shared `DeviceBinFile` gives no access to anything.
unsafe impl<T: BinaryFile> Sync for DeviceBinFile<T> {}

impl<T: BinaryFile + 'static> DeviceBinFile<T> {
    /// Adds the file `name` (permissions `mode`, `size` bytes) to `dev`'s sysfs folder.
    pub(crate) fn create(
        dev: &Device,
        name: &'static CStr,
        mode: u16,
        size: usize,
        handler: Pin<KBox<T>>,
    ) -> Result<Self> {
        // sysfs refuses world-writable attributes.
        if mode & !0o775 != 0 {
            return Err(EINVAL);
        }
        let target: &dyn BinaryFile = &*handler;
        let mut thunk = KBox::new(Thunk(core::ptr::from_ref(target)), GFP_KERNEL)?;
        let data = core::ptr::from_mut(&mut *thunk).cast::<ffi::c_void>();
        // `Device` is a `#[repr(transparent)]` wrapper of `struct device`.
        let raw = core::ptr::from_ref(dev).cast_mut().cast::<ffi::c_void>();
        let mut error: ffi::c_int = 0;
        // SAFETY: `dev` is a live device (we keep a reference below), `name` is 'static,
        // `data` stays valid until `Drop` removes the file, `error` is a valid out-pointer.
        let attr = unsafe {
            rustkm_bin_attr_create(raw, name.as_char_ptr(), mode, size, data, &mut error)
        };
        let Some(attr) = NonNull::new(attr) else {
            return Err(Error::from_errno(error));
        };
        Ok(Self {
            attr,
            dev: dev.into(),
            _thunk: thunk,
            _handler: handler,
        })
    }
}

impl<T: BinaryFile> Drop for DeviceBinFile<T> {
    fn drop(&mut self) {
        let raw = core::ptr::from_ref(&*self.dev)
            .cast_mut()
            .cast::<ffi::c_void>();
        // SAFETY: `attr` was created on this device (still referenced) and is removed once,
        // here; removal waits for running reads and writes, so the handler is unused after.
        unsafe { rustkm_bin_attr_remove(raw, self.attr.as_ptr()) };
    }
}

/// # Safety
///
/// `data` is the `private` of an attribute made by [`DeviceBinFile::create`], not yet removed.
unsafe fn handler<'a>(data: *mut ffi::c_void) -> &'a dyn BinaryFile {
    // SAFETY: per the contract `data` points to the live `Thunk`, whose target lives in the
    // `DeviceBinFile`'s pinned box at least as long.
    unsafe { &*(*data.cast::<Thunk>()).0 }
}

fn to_ssize(result: Result<usize>) -> isize {
    match result {
        Ok(n) => isize::try_from(n).unwrap_or(isize::MAX),
        Err(e) => e.to_errno() as isize,
    }
}

/// # Safety
///
/// Called by `bin_attr_glue.c` only, with the attribute's `private` and `count` bytes at `buf`.
#[no_mangle]
unsafe extern "C" fn rustkm_bin_attr_read(
    data: *mut ffi::c_void,
    buf: *mut ffi::c_char,
    offset: i64,
    count: usize,
) -> isize {
    let Ok(offset) = usize::try_from(offset) else {
        return EINVAL.to_errno() as isize;
    };
    // SAFETY: sysfs passes a kernel buffer of at least `count` bytes, ours during the call.
    let out = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), count) };
    // SAFETY: sysfs calls `read` only while the attribute exists.
    to_ssize(unsafe { handler(data) }.read(offset, out))
}

/// # Safety
///
/// Called by `bin_attr_glue.c` only, with the attribute's `private` and `count` bytes at `buf`.
#[no_mangle]
unsafe extern "C" fn rustkm_bin_attr_write(
    data: *mut ffi::c_void,
    buf: *const ffi::c_char,
    offset: i64,
    count: usize,
) -> isize {
    let Ok(offset) = usize::try_from(offset) else {
        return EINVAL.to_errno() as isize;
    };
    // SAFETY: sysfs passes a kernel buffer holding `count` bytes.
    let input = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), count) };
    // SAFETY: sysfs calls `write` only while the attribute exists.
    to_ssize(unsafe { handler(data) }.write(offset, input))
}
