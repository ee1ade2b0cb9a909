// SPDX-License-Identifier: GPL-2.0

//! A safe abstraction for a module's own device class with character devices: a class under
//! /sys/class/NAME with write-only attributes (like `export`), and nodes /dev/NAMEn that are
//! devices of that class, whose opens a Rust type handles.
//!
//! 7.2's Rust has neither classes nor character device regions (only misc devices, whose
//! names are fixed and whose class is `misc`). The C half, `chrclass_glue.c`, keeps the
//! `struct class`, `struct cdev` and `struct file_operations` and calls the functions below.
//! One registration per module (the C half's state is static).

use core::{
    ptr::NonNull,
    sync::atomic::{AtomicBool, Ordering},
};
use kernel::{
    bindings,
    device::Device,
    error::from_err_ptr,
    ffi,
    prelude::*,
    str::CStr,
    sync::Arc,
    uaccess::{UserPtr, UserSlice, UserSliceReader, UserSliceWriter},
};

/// The most attributes a class may have.
pub(crate) const MAX_ATTRS: usize = 4;

/// What the class does. Calls come concurrently.
pub(crate) trait ChrClass: Sync + 'static {
    /// What an open file refers to.
    type File: ChrFile;
    /// The names of the class's write-only attributes (at most [`MAX_ATTRS`]).
    const ATTRS: &'static [&'static CStr];
    /// An open of /dev node `minor`.
    fn open(&self, minor: u32) -> Result<Arc<Self::File>>;
    /// A write of `input` to attribute `ATTRS[attr]`; `class` makes nodes.
    fn store(&self, class: &Class, attr: usize, input: &[u8]) -> Result;
}

/// What an open file does.
pub(crate) trait ChrFile: Send + Sync {
    /// Copies what there is to read at `*pos` into `out`, moves `*pos`; 0 at the end.
    fn read(&self, out: &mut UserSliceWriter, pos: &mut i64) -> Result<usize>;
    /// Takes a write of `input`; returns how much of it was used.
    fn write(&self, input: &mut UserSliceReader) -> Result<usize>;
}

/// Proof that the class is registered, given to [`ChrClass::store`].
pub(crate) struct Class(());

extern "C" {
    fn rustkm_chrclass_register(
        name: *const ffi::c_char,
        minors: ffi::c_uint,
        attrs: *const *const ffi::c_char,
        nattrs: ffi::c_uint,
        data: *mut ffi::c_void,
    ) -> ffi::c_int;
    fn rustkm_chrclass_unregister();
    fn rustkm_chrclass_node_create(
        minor: ffi::c_uint,
        name: *const ffi::c_char,
    ) -> *mut ffi::c_void;
    fn rustkm_chrclass_node_destroy(dev: *mut ffi::c_void);
}

/// Whether this module's class is registered.
static REGISTERED: AtomicBool = AtomicBool::new(false);

/// The C side's `data`: the handler and its monomorphized entry points.
struct Dispatch {
    handler: *const ffi::c_void,
    open: unsafe fn(*const ffi::c_void, u32) -> Result<*mut ffi::c_void>,
    release: unsafe fn(*mut ffi::c_void),
    read: unsafe fn(*mut ffi::c_void, &mut UserSliceWriter, &mut i64) -> Result<usize>,
    write: unsafe fn(*mut ffi::c_void, &mut UserSliceReader) -> Result<usize>,
    store: unsafe fn(*const ffi::c_void, usize, &[u8]) -> Result,
}

// SAFETY: `handler` is a `&'static T` with `T: Sync`; the rest are plain functions.
unsafe impl Send for Dispatch {}
// SAFETY: as for `Send`; it is never written after construction.
unsafe impl Sync for Dispatch {}

/// # Safety
///
/// `handler` is a `&'static T`.
unsafe fn open<T: ChrClass>(handler: *const ffi::c_void, minor: u32) -> Result<*mut ffi::c_void> {
    // SAFETY: per the contract.
    let handler = unsafe { &*handler.cast::<T>() };
    Ok(Arc::into_raw(handler.open(minor)?).cast_mut().cast())
}

/// # Safety
///
/// `file` came from `open::<T>` and is released once.
unsafe fn release<T: ChrClass>(file: *mut ffi::c_void) {
    // SAFETY: per the contract, this gives back the reference `open` took.
    drop(unsafe { Arc::<T::File>::from_raw(file.cast()) });
}

/// # Safety
///
/// `file` came from `open::<T>` and is not released yet.
unsafe fn file<'a, T: ChrClass>(file: *mut ffi::c_void) -> &'a T::File {
    // SAFETY: per the contract, `open` holds a reference until `release`.
    unsafe { &*file.cast::<T::File>() }
}

/// # Safety
///
/// As for [`file`].
unsafe fn read<T: ChrClass>(
    f: *mut ffi::c_void,
    out: &mut UserSliceWriter,
    pos: &mut i64,
) -> Result<usize> {
    // SAFETY: per the contract.
    unsafe { file::<T>(f) }.read(out, pos)
}

/// # Safety
///
/// As for [`file`].
unsafe fn write<T: ChrClass>(f: *mut ffi::c_void, input: &mut UserSliceReader) -> Result<usize> {
    // SAFETY: per the contract.
    unsafe { file::<T>(f) }.write(input)
}

/// # Safety
///
/// `handler` is a `&'static T` whose class is registered.
unsafe fn store<T: ChrClass>(handler: *const ffi::c_void, attr: usize, input: &[u8]) -> Result {
    // SAFETY: per the contract.
    let handler = unsafe { &*handler.cast::<T>() };
    handler.store(&Class(()), attr, input)
}

/// The registered class and its character device minors; unregistered when dropped.
pub(crate) struct Registration {
    // The C side points at it until `Drop` has unregistered.
    _dispatch: KBox<Dispatch>,
}

impl Registration {
    /// Registers class `name` (/sys/class/`name`) with `T::ATTRS`, and `minors` character
    /// devices whose opens go to `handler`. EBUSY if this module has one already.
    pub(crate) fn register<T: ChrClass>(
        name: &'static CStr,
        minors: u32,
        handler: &'static T,
    ) -> Result<Self> {
        const { assert!(T::ATTRS.len() <= MAX_ATTRS) };
        let mut attrs = [core::ptr::null::<ffi::c_char>(); MAX_ATTRS];
        for (slot, attr) in attrs.iter_mut().zip(T::ATTRS) {
            *slot = attr.as_char_ptr();
        }
        if REGISTERED.swap(true, Ordering::AcqRel) {
            return Err(EBUSY);
        }
        let dispatch = KBox::new(
            Dispatch {
                handler: core::ptr::from_ref(handler).cast(),
                open: open::<T>,
                release: release::<T>,
                read: read::<T>,
                write: write::<T>,
                store: store::<T>,
            },
            GFP_KERNEL,
        )
        .inspect_err(|_| REGISTERED.store(false, Ordering::Release))?;
        let data = core::ptr::from_ref(&*dispatch).cast_mut().cast();
        // SAFETY: `name` and the attribute names are 'static (the C side keeps pointers to
        // them, and copies `attrs` itself); `data` lives until `Drop` has unregistered.
        let err = unsafe {
            rustkm_chrclass_register(
                name.as_char_ptr(),
                minors,
                attrs.as_ptr(),
                T::ATTRS.len() as ffi::c_uint,
                data,
            )
        };
        if err < 0 {
            REGISTERED.store(false, Ordering::Release);
            return Err(Error::from_errno(err));
        }
        Ok(Self {
            _dispatch: dispatch,
        })
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // SAFETY: registered in `register`, unregistered once, here: no store runs after it,
        // and no file is open (open files hold the module).
        unsafe { rustkm_chrclass_unregister() };
        REGISTERED.store(false, Ordering::Release);
    }
}

/// A node /dev/NAME, a device of the class; removed when dropped. The module must drop its
/// nodes before the [`Registration`].
pub(crate) struct Node {
    dev: NonNull<ffi::c_void>,
}

// SAFETY: a device may be unregistered from any thread.
unsafe impl Send for Node {}
// SAFETY: a shared `Node` only gives a `&Device`, which is thread safe.
unsafe impl Sync for Node {}

impl Node {
    /// Makes /dev/`name` for `minor` (below the registration's `minors`).
    pub(crate) fn create(_class: &Class, minor: u32, name: &CStr) -> Result<Self> {
        // SAFETY: the class is registered (`_class`); `name` is copied.
        let dev = from_err_ptr(unsafe { rustkm_chrclass_node_create(minor, name.as_char_ptr()) })?;
        NonNull::new(dev).map(|dev| Self { dev }).ok_or(ENOMEM)
    }

    /// The node's device, to be a parent of others.
    pub(crate) fn device(&self) -> &Device {
        // SAFETY: `dev` is a registered device until `self` is dropped.
        unsafe { Device::from_raw(self.dev.as_ptr().cast()) }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // SAFETY: `dev` came from `rustkm_chrclass_node_create` and is destroyed once, here.
        unsafe { rustkm_chrclass_node_destroy(self.dev.as_ptr()) };
    }
}

/// # Safety
///
/// `data` is a registration's `Dispatch`, alive until unregistered.
unsafe fn dispatch<'a>(data: *mut ffi::c_void) -> &'a Dispatch {
    // SAFETY: per the contract.
    unsafe { &*data.cast::<Dispatch>() }
}

fn to_ssize(result: Result<usize>) -> isize {
    match result {
        Ok(count) => isize::try_from(count).unwrap_or(isize::MAX),
        Err(e) => e.to_errno() as isize,
    }
}

/// # Safety
///
/// Called by `chrclass_glue.c` only, with the registration's `data`; `file_data` is the
/// open file's private data, written on success.
#[no_mangle]
unsafe extern "C" fn rustkm_chrclass_open(
    data: *mut ffi::c_void,
    minor: ffi::c_uint,
    file_data: *mut *mut ffi::c_void,
) -> ffi::c_int {
    // SAFETY: per the contract, the class is registered while its files open.
    let dispatch = unsafe { dispatch(data) };
    // SAFETY: `handler` is the `&'static T` that `open` was made for.
    match unsafe { (dispatch.open)(dispatch.handler, minor) } {
        Ok(file) => {
            // SAFETY: `file_data` is the opening file's `private_data`.
            unsafe { *file_data = file };
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// # Safety
///
/// Called by `chrclass_glue.c` only, once per successful open, with its `file_data`.
#[no_mangle]
unsafe extern "C" fn rustkm_chrclass_release(data: *mut ffi::c_void, file_data: *mut ffi::c_void) {
    // SAFETY: per the contract; open files hold the module, so `data` is alive.
    let dispatch = unsafe { dispatch(data) };
    // SAFETY: `file_data` came from `open` and is released once.
    unsafe { (dispatch.release)(file_data) };
}

/// # Safety
///
/// Called by `chrclass_glue.c` only, on an open file: `buf` is a user pointer of `count`
/// bytes, `pos` is valid.
#[no_mangle]
unsafe extern "C" fn rustkm_chrclass_read(
    data: *mut ffi::c_void,
    file_data: *mut ffi::c_void,
    buf: *mut ffi::c_char,
    count: usize,
    pos: *mut bindings::loff_t,
) -> isize {
    // SAFETY: per the contract.
    let dispatch = unsafe { dispatch(data) };
    let mut out = UserSlice::new(UserPtr::from_ptr(buf.cast()), count).writer();
    // SAFETY: `pos` is the file position, valid during the call.
    let pos = unsafe { &mut *pos };
    // SAFETY: `file_data` is an open file's, not released yet.
    to_ssize(unsafe { (dispatch.read)(file_data, &mut out, pos) })
}

/// # Safety
///
/// Called by `chrclass_glue.c` only, on an open file: `buf` is a user pointer of `count`
/// bytes.
#[no_mangle]
unsafe extern "C" fn rustkm_chrclass_write(
    data: *mut ffi::c_void,
    file_data: *mut ffi::c_void,
    buf: *const ffi::c_char,
    count: usize,
) -> isize {
    // SAFETY: per the contract.
    let dispatch = unsafe { dispatch(data) };
    let mut input = UserSlice::new(UserPtr::from_ptr(buf.cast_mut().cast()), count).reader();
    // SAFETY: `file_data` is an open file's, not released yet.
    to_ssize(unsafe { (dispatch.write)(file_data, &mut input) })
}

/// # Safety
///
/// Called by `chrclass_glue.c` only, while the class is registered: `buf` points to `count`
/// bytes of kernel memory (sysfs' copy of the write).
#[no_mangle]
unsafe extern "C" fn rustkm_chrclass_store(
    data: *mut ffi::c_void,
    attr: ffi::c_uint,
    buf: *const ffi::c_char,
    count: usize,
) -> isize {
    // SAFETY: per the contract.
    let dispatch = unsafe { dispatch(data) };
    // SAFETY: sysfs passes `count` readable bytes at `buf`.
    let input = unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), count) };
    // SAFETY: the class is registered, so `handler` is alive.
    match unsafe { (dispatch.store)(dispatch.handler, attr as usize, input) } {
        Ok(()) => isize::try_from(count).unwrap_or(isize::MAX),
        Err(e) => e.to_errno() as isize,
    }
}
