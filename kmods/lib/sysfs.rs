// SPDX-License-Identifier: GPL-2.0

//! A safe sysfs abstraction: a kobject under /sys/kernel with attribute files whose `show` and
//! `store` a Rust type handles.
//!
//! Linux 7.2's Rust has no kobject or sysfs attribute support. `struct kobj_attribute` embeds
//! `struct attribute`, whose lockdep fields depend on the kernel's configuration, so its layout
//! is not declared here: the C half, `sysfs_glue.c`, allocates and registers the attributes
//! against the target kernel's headers and calls the `extern "C"` functions below. A module
//! using this links both (see kmods/lkmpg/hello_sysfs/Kbuild).

use core::{fmt, ptr::NonNull};
use kernel::{bindings, ffi, prelude::*, str::CStr};

/// What an attribute file does. Calls come concurrently (one per open file at a time): do
/// your own locking.
pub(crate) trait Attribute: Send + Sync {
    /// Formats the value into `out` (at most a page), for a read of the file.
    fn show(&self, out: &mut ShowBuffer<'_>) -> Result;
    /// Takes a write: `input` is what user space wrote (sysfs keeps at most a page of it, and
    /// never calls this for an empty write). On success the whole write counts as consumed.
    fn store(&self, input: &[u8]) -> Result;
}

/// The page a `show` formats into; `write!` to it. Output that does not fit is an error.
pub(crate) struct ShowBuffer<'a> {
    page: &'a mut [u8],
    len: usize,
}

impl fmt::Write for ShowBuffer<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // One byte stays free for the NUL sysfs_emit() would leave.
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        if end >= self.page.len() {
            return Err(fmt::Error);
        }
        let target = self.page.get_mut(self.len..end).ok_or(fmt::Error)?;
        target.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

extern "C" {
    fn rustkm_sysfs_kobject_create(name: *const ffi::c_char) -> *mut ffi::c_void;
    fn rustkm_sysfs_kobject_get(kobj: *mut ffi::c_void);
    fn rustkm_sysfs_kobject_put(kobj: *mut ffi::c_void);
    fn rustkm_sysfs_attr_create(
        kobj: *mut ffi::c_void,
        name: *const ffi::c_char,
        mode: u16,
        data: *mut ffi::c_void,
        error: *mut ffi::c_int,
    ) -> *mut ffi::c_void;
    fn rustkm_sysfs_attr_remove(kobj: *mut ffi::c_void, attr: *mut ffi::c_void);
}

/// A reference to a kobject (a folder in sysfs); the reference is dropped with it, and the
/// folder goes when its last reference does.
pub(crate) struct KObject(NonNull<ffi::c_void>);

// SAFETY: kobject references may be taken and dropped from any thread.
unsafe impl Send for KObject {}
// SAFETY: a shared `KObject` only hands out new references, which is thread-safe.
unsafe impl Sync for KObject {}

impl KObject {
    /// Creates /sys/kernel/`name` (as `kobject_create_and_add(name, kernel_kobj)`).
    pub(crate) fn new_in_kernel(name: &'static CStr) -> Result<Self> {
        // SAFETY: `name` is a valid C string; the kobject copies it.
        let kobj = unsafe { rustkm_sysfs_kobject_create(name.as_char_ptr()) };
        NonNull::new(kobj).map(Self).ok_or(ENOMEM)
    }

    fn new_reference(&self) -> Self {
        // SAFETY: `self` holds a reference, so the kobject is alive.
        unsafe { rustkm_sysfs_kobject_get(self.0.as_ptr()) };
        Self(self.0)
    }

    /// Adds the attribute file `name` with permissions `mode`, handled by `handler`. It stays
    /// until the returned [`AttributeFile`] is dropped (which also keeps the kobject alive).
    pub(crate) fn create_file<T: Attribute + 'static>(
        &self,
        name: &'static CStr,
        mode: u16,
        handler: Pin<KBox<T>>,
    ) -> Result<AttributeFile<T>> {
        // sysfs refuses world-writable attributes (a build error for the C macros).
        if u32::from(mode) & bindings::S_IWOTH != 0 || mode & !0o777 != 0 {
            return Err(EINVAL);
        }
        let target: &dyn Attribute = &*handler;
        let mut thunk = KBox::new(Thunk(core::ptr::from_ref(target)), GFP_KERNEL)?;
        let data = core::ptr::from_mut(&mut *thunk).cast::<ffi::c_void>();
        let mut error: ffi::c_int = 0;
        // SAFETY: the kobject is alive (`self`), `name` is 'static, `data` stays valid until
        // `AttributeFile::drop` removes the file, `error` is a valid out-pointer.
        let attr = unsafe {
            rustkm_sysfs_attr_create(self.0.as_ptr(), name.as_char_ptr(), mode, data, &mut error)
        };
        let Some(attr) = NonNull::new(attr) else {
            return Err(Error::from_errno(error));
        };
        Ok(AttributeFile {
            attr,
            kobj: self.new_reference(),
            _thunk: thunk,
            _handler: handler,
        })
    }
}

impl Drop for KObject {
    fn drop(&mut self) {
        // SAFETY: `self` owns one reference, dropped once, here.
        unsafe { rustkm_sysfs_kobject_put(self.0.as_ptr()) };
    }
}

/// What the C attribute's `data` points to.
struct Thunk(*const dyn Attribute);

/// A registered attribute file, owning its handler; removed when dropped.
pub(crate) struct AttributeFile<T: Attribute> {
    attr: NonNull<ffi::c_void>,
    kobj: KObject,
    // Dropped after `attr` is removed (see `Drop`); the C side points at both.
    _thunk: KBox<Thunk>,
    _handler: Pin<KBox<T>>,
}

// SAFETY: the raw pointers refer only to `_thunk`, `_handler` (Send + Sync) and the attribute,
// which any thread may remove.
unsafe impl<T: Attribute> Send for AttributeFile<T> {}
// SAFETY: a shared `AttributeFile` gives no access to anything.
unsafe impl<T: Attribute> Sync for AttributeFile<T> {}

impl<T: Attribute> Drop for AttributeFile<T> {
    fn drop(&mut self) {
        // SAFETY: `attr` was created on `kobj` (still referenced) and is removed once, here;
        // removal waits for running show/store calls, so the handler is unused afterwards.
        unsafe { rustkm_sysfs_attr_remove(self.kobj.0.as_ptr(), self.attr.as_ptr()) };
    }
}

/// # Safety
///
/// `data` is the `data` of an attribute made by [`KObject::create_file`] and not yet removed.
unsafe fn handler<'a>(data: *mut ffi::c_void) -> &'a dyn Attribute {
    // SAFETY: per the contract `data` points to the live `Thunk`, whose target lives in the
    // `AttributeFile`'s pinned box at least as long.
    unsafe { &*(*data.cast::<Thunk>()).0 }
}

/// # Safety
///
/// Called by `sysfs_glue.c` only, with an attribute's `data` and sysfs' page-sized buffer.
#[no_mangle]
unsafe extern "C" fn rustkm_sysfs_show(data: *mut ffi::c_void, buf: *mut ffi::c_char) -> isize {
    // SAFETY: sysfs hands `show` a zeroed buffer of PAGE_SIZE bytes, ours during the call.
    let page = unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), bindings::PAGE_SIZE) };
    let mut out = ShowBuffer { page, len: 0 };
    // SAFETY: sysfs calls `show` only while the attribute exists.
    match unsafe { handler(data) }.show(&mut out) {
        Ok(()) => isize::try_from(out.len).unwrap_or(isize::MAX),
        Err(e) => e.to_errno() as isize,
    }
}

/// # Safety
///
/// Called by `sysfs_glue.c` only, with an attribute's `data` and `count` bytes at `buf`.
#[no_mangle]
unsafe extern "C" fn rustkm_sysfs_store(
    data: *mut ffi::c_void,
    buf: *const ffi::c_char,
    count: usize,
) -> isize {
    // SAFETY: sysfs passes a kernel buffer holding `count` bytes (plus a NUL).
    let input = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), count) };
    // SAFETY: sysfs calls `store` only while the attribute exists.
    match unsafe { handler(data) }.store(input) {
        Ok(()) => isize::try_from(count).unwrap_or(isize::MAX),
        Err(e) => e.to_errno() as isize,
    }
}
