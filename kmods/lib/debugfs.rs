// SPDX-License-Identifier: GPL-2.0

//! A debugfs folder of files whose reads and writes a Rust type handles, as C's
//! `debugfs_create_dir()` + `debugfs_create_file()` with a module's own `file_operations`.
//!
//! Linux 7.2 has `kernel::debugfs`, but its `file_operations` have no `.owner`: nothing keeps
//! the module loaded while one of its debugfs files is open, and closing such a file after
//! rmmod oopses (`full_proxy_release` reads the freed operations). Here the operations are
//! built by the C half, `debugfs_glue.c`, with `.owner = THIS_MODULE`, so an open file holds
//! the module as with C modules. A module using this links both (see
//! kmods/lkmpg/hello_debugfs/Kbuild).

use core::ptr::NonNull;
use kernel::{
    ffi,
    fs::file,
    prelude::*,
    str::CStr,
    uaccess::{UserPtr, UserSlice, UserSliceReader, UserSliceWriter},
};

/// What a debugfs file does. Calls come concurrently: do your own locking.
pub(crate) trait DebugfsFile: Send + Sync {
    /// Copies the contents at `*pos` into `out`, moves `*pos`; returns the count (0 at the end).
    fn read(&self, out: &mut UserSliceWriter, pos: &mut file::Offset) -> Result<usize>;
    /// Takes a write at `*pos`, moves `*pos`; returns the count taken. By default, refused.
    fn write(&self, _input: &mut UserSliceReader, _pos: &mut file::Offset) -> Result<usize> {
        Err(EINVAL)
    }
}

extern "C" {
    fn rustkm_debugfs_create_dir(
        name: *const ffi::c_char,
        error: *mut ffi::c_int,
    ) -> *mut ffi::c_void;
    fn rustkm_debugfs_create_file(
        name: *const ffi::c_char,
        mode: u16,
        parent: *mut ffi::c_void,
        data: *mut ffi::c_void,
        error: *mut ffi::c_int,
    ) -> *mut ffi::c_void;
    fn rustkm_debugfs_remove(dentry: *mut ffi::c_void);
}

/// What a file's `data` points to: a thin pointer to the handler.
struct Thunk(*const dyn DebugfsFile);

/// A file's handler and its thunk, kept by the `Dir`.
struct Entry<T: DebugfsFile> {
    thunk: Thunk,
    _handler: Pin<KBox<T>>,
}

/// Something a `Dir` keeps alive until its files are gone.
trait Kept: Send + Sync {}

// SAFETY: `thunk` points into `_handler`, which is Send + Sync.
unsafe impl<T: DebugfsFile> Send for Entry<T> {}
// SAFETY: as for Send; a shared `Entry` only gives shared access to the handler.
unsafe impl<T: DebugfsFile> Sync for Entry<T> {}
impl<T: DebugfsFile> Kept for Entry<T> {}

/// A folder at the top of debugfs with its files; all removed when dropped.
pub(crate) struct Dir {
    dentry: NonNull<ffi::c_void>,
    // Dropped after the folder is removed (see `Drop`); the files' `data` point at them.
    entries: KVec<KBox<dyn Kept>>,
}

// SAFETY: `dentry` may be removed from any thread; the handlers are Send + Sync.
unsafe impl Send for Dir {}
// SAFETY: a shared `Dir` gives no access to anything.
unsafe impl Sync for Dir {}

fn created(dentry: *mut ffi::c_void, error: ffi::c_int) -> Result<NonNull<ffi::c_void>> {
    NonNull::new(dentry).ok_or_else(|| Error::from_errno(error))
}

impl Dir {
    /// Creates /sys/kernel/debug/`name`.
    pub(crate) fn new(name: &'static CStr) -> Result<Self> {
        let mut error = 0;
        // SAFETY: `name` is a valid C string (copied), `error` a valid out-pointer.
        let dentry = unsafe { rustkm_debugfs_create_dir(name.as_char_ptr(), &mut error) };
        Ok(Self {
            dentry: created(dentry, error)?,
            entries: KVec::new(),
        })
    }

    /// Adds the file `name` with permissions `mode`, handled by `handler` until `self` drops.
    pub(crate) fn add_file(
        &mut self,
        name: &'static CStr,
        mode: u16,
        handler: Pin<KBox<impl DebugfsFile + 'static>>,
    ) -> Result {
        let target: &dyn DebugfsFile = &*handler;
        let entry = KBox::new(
            Entry {
                thunk: Thunk(core::ptr::from_ref(target)),
                _handler: handler,
            },
            GFP_KERNEL,
        )?;
        let data = core::ptr::from_ref(&entry.thunk)
            .cast_mut()
            .cast::<ffi::c_void>();
        // Kept before the file exists: the box (and `data`) stay put while the vector grows.
        self.entries.push(entry as KBox<dyn Kept>, GFP_KERNEL)?;
        let mut error = 0;
        // SAFETY: `name` is a valid C string (copied), the folder exists until `Drop`, `data`
        // stays valid until then (its box is in `entries`), `error` a valid out-pointer.
        let dentry = unsafe {
            rustkm_debugfs_create_file(
                name.as_char_ptr(),
                mode,
                self.dentry.as_ptr(),
                data,
                &mut error,
            )
        };
        if let Err(e) = created(dentry, error) {
            // No file refers to it.
            self.entries.pop();
            return Err(e);
        }
        Ok(())
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        // SAFETY: the folder was created in `new` and is removed once, here, with its files;
        // this waits for running reads and writes, so `entries` are unused when dropped after.
        unsafe { rustkm_debugfs_remove(self.dentry.as_ptr()) };
    }
}

/// # Safety
///
/// `data` is the `data` of a file made by [`Dir::add_file`], whose `Dir` is not dropped yet.
unsafe fn handler<'a>(data: *mut ffi::c_void) -> &'a dyn DebugfsFile {
    // SAFETY: `data` points to the `Thunk` of a live `Entry`, whose handler it points to.
    unsafe { &*(*data.cast::<Thunk>()).0 }
}

fn to_ssize(result: Result<usize>) -> isize {
    match result {
        Ok(count) => isize::try_from(count).unwrap_or(isize::MAX),
        Err(e) => e.to_errno() as isize,
    }
}

/// # Safety
///
/// Called by `debugfs_glue.c` only: `data` is a live `Thunk`, `buf` a user pointer of `count`
/// bytes, `pos` the file position.
#[no_mangle]
unsafe extern "C" fn rustkm_debugfs_read(
    data: *mut ffi::c_void,
    buf: *mut ffi::c_char,
    count: usize,
    pos: *mut file::Offset,
) -> isize {
    // SAFETY: debugfs calls us only while the file exists, so its `Entry` is alive.
    let handler = unsafe { handler(data) };
    let mut out = UserSlice::new(UserPtr::from_ptr(buf.cast()), count).writer();
    // SAFETY: `pos` is valid during the call.
    to_ssize(handler.read(&mut out, unsafe { &mut *pos }))
}

/// # Safety
///
/// As [`rustkm_debugfs_read`], for a write.
#[no_mangle]
unsafe extern "C" fn rustkm_debugfs_write(
    data: *mut ffi::c_void,
    buf: *const ffi::c_char,
    count: usize,
    pos: *mut file::Offset,
) -> isize {
    // SAFETY: debugfs calls us only while the file exists, so its `Entry` is alive.
    let handler = unsafe { handler(data) };
    let mut input = UserSlice::new(UserPtr::from_ptr(buf.cast_mut().cast()), count).reader();
    // SAFETY: `pos` is valid during the call.
    to_ssize(handler.write(&mut input, unsafe { &mut *pos }))
}
