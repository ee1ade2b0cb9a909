// SPDX-License-Identifier: GPL-2.0

//! A safe procfs abstraction: a file in /proc whose contents a Rust type handles.
//!
//! Mainline Rust has no procfs support and the bindings have no `proc_create` or `struct
//! proc_ops`. Their layout differs between kernels, so it is not declared here: the C half,
//! `procfs_glue.c`, builds `struct proc_ops` against the target kernel's headers and calls the
//! `extern "C"` functions below. A module using this links both (see kmods/procfile/Kbuild).

#[path = "span.rs"]
mod span;

use core::ptr::NonNull;
use core::sync::atomic::{AtomicPtr, Ordering};
use kernel::{
    bindings, ffi,
    prelude::*,
    str::CStr,
    uaccess::{UserPtr, UserSlice, UserSliceReader, UserSliceWriter},
};

/// How the file was opened.
#[derive(Clone, Copy)]
pub(crate) struct OpenFlags(u32);

// Each module includes this file; not every one looks at every flag.
#[allow(dead_code)]
impl OpenFlags {
    /// `O_TRUNC`: the open empties the file.
    pub(crate) fn truncate(self) -> bool {
        self.0 & bindings::O_TRUNC != 0 && self.0 & bindings::O_ACCMODE != bindings::O_RDONLY
    }

    /// `O_APPEND`: every write goes to the end.
    pub(crate) fn append(self) -> bool {
        self.0 & bindings::O_APPEND != 0
    }

    /// `O_NONBLOCK`: the opener would rather get `EAGAIN` than wait.
    pub(crate) fn nonblock(self) -> bool {
        self.0 & bindings::O_NONBLOCK != 0
    }
}

/// What a /proc file does. Implementations do their own locking: calls come concurrently.
pub(crate) trait ProcFile: Send + Sync {
    /// At each open. It may sleep (e.g. wait until another opener closes).
    fn open(&self, flags: OpenFlags) -> Result;
    /// At the last close of a file whose `open` succeeded, or at removal for a file still open
    /// then (procfs makes later calls on it fail with `EIO`).
    fn release(&self) {}
    /// Copies the contents at `pos` into `out`; returns how many bytes (0 at the end).
    fn read(&self, out: &mut UserSliceWriter, pos: i64) -> Result<usize>;
    /// Writes `input` at `*pos` (at the end when `append`) and moves `*pos` past it.
    fn write(&self, input: &mut UserSliceReader, pos: &mut i64, append: bool) -> Result<usize>;
    /// The current size, for `lseek` and `stat`.
    fn size(&self) -> i64;
    /// The largest offset `lseek` may reach.
    fn max_size(&self) -> i64;
}

/// A read at `pos` of `contents` held in memory: copies what lies from `pos` on into `out`,
/// as much as fits; 0 at or past the end.
pub(crate) fn read_at(contents: &[u8], out: &mut UserSliceWriter, pos: i64) -> Result<usize> {
    let range = span::read_range(contents.len(), pos, out.len())?;
    let bytes = contents.get(range).ok_or(EINVAL)?;
    out.write_slice(bytes)?;
    Ok(bytes.len())
}

extern "C" {
    fn rustkm_procfs_create(
        name: *const ffi::c_char,
        mode: u16,
        data: *mut ffi::c_void,
    ) -> *mut ffi::c_void;
    fn rustkm_procfs_remove(entry: *mut ffi::c_void);
    fn rustkm_procfs_set_size(entry: *mut ffi::c_void, file: *mut ffi::c_void, size: i64);
}

/// What the proc entry's `data` points to.
struct Handler {
    file: *const dyn ProcFile,
    /// The entry, once `rustkm_procfs_create` has returned. The file is visible in /proc
    /// before that, and an open can come first (`rustkm fuzz` found it: proc_set_size on a
    /// null entry oopsed), so it is atomic and may still be null in a callback.
    entry: AtomicPtr<ffi::c_void>,
}

impl Handler {
    /// # Safety
    ///
    /// `data` is the `data` of an entry made by [`Registration::register`] that is still
    /// registered (procfs guarantees that for the duration of a callback).
    unsafe fn from_data<'a>(data: *mut ffi::c_void) -> (&'a dyn ProcFile, *mut ffi::c_void) {
        // SAFETY: per the contract, `data` points to the live `Handler` of a registration,
        // whose `file` outlives it.
        let handler = unsafe { &*data.cast::<Handler>() };
        let entry = handler.entry.load(Ordering::Acquire);
        // SAFETY: `file` points into the registration's pinned box (see `Registration`).
        (unsafe { &*handler.file }, entry)
    }
}

/// A registered /proc file, owning what handles it; removed when dropped.
pub(crate) struct Registration<T: ProcFile> {
    entry: NonNull<ffi::c_void>,
    // Dropped after `entry` is removed (see `Drop`); the C side points at both.
    handler: KBox<Handler>,
    _file: Pin<KBox<T>>,
}

// SAFETY: the raw pointers only refer to `handler`, `_file` (Send + Sync) and the proc entry,
// which procfs lets any thread remove.
unsafe impl<T: ProcFile> Send for Registration<T> {}
// SAFETY: a shared `Registration` gives no access to anything.
unsafe impl<T: ProcFile> Sync for Registration<T> {}

impl<T: ProcFile + 'static> Registration<T> {
    /// Creates /proc/`name` with permissions `mode`, handled by `file`.
    pub(crate) fn register(name: &'static CStr, mode: u16, file: Pin<KBox<T>>) -> Result<Self> {
        let target: &dyn ProcFile = &*file;
        let mut handler = KBox::new(
            Handler {
                file: core::ptr::from_ref(target),
                entry: AtomicPtr::new(core::ptr::null_mut()),
            },
            GFP_KERNEL,
        )?;
        let data = core::ptr::from_mut(&mut *handler).cast::<ffi::c_void>();
        // SAFETY: `name` is 'static; `data` stays valid until `Drop` removes the entry.
        let entry = unsafe { rustkm_procfs_create(name.as_char_ptr(), mode, data) };
        let entry = NonNull::new(entry).ok_or(ENOMEM)?;
        handler.entry.store(entry.as_ptr(), Ordering::Release);
        let registration = Self {
            entry,
            handler,
            _file: file,
        };
        registration.publish_size(core::ptr::null_mut());
        Ok(registration)
    }

    /// What handles the file, e.g. to tell it the module is going away.
    #[allow(dead_code)] // Not every module needs it.
    pub(crate) fn handler(&self) -> &T {
        &self._file
    }

    /// `file` is opaque here: Rust never looks inside a `struct file`.
    fn publish_size(&self, file: *mut ffi::c_void) {
        // SAFETY: `self.handler.file` points into `self._file`, alive while `self` is.
        let size = unsafe { &*self.handler.file }.size();
        // SAFETY: `entry` is registered; `file` is null or the file of a running callback.
        unsafe { rustkm_procfs_set_size(self.entry.as_ptr(), file, size) };
    }
}

impl<T: ProcFile> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: `entry` came from `rustkm_procfs_create` and is removed once, here; this
        // waits for running callbacks, so `handler` and `_file` are unused when dropped after.
        unsafe { rustkm_procfs_remove(self.entry.as_ptr()) };
    }
}

fn to_ssize(result: Result<usize>) -> isize {
    match result {
        Ok(count) => isize::try_from(count).unwrap_or(isize::MAX),
        Err(e) => e.to_errno() as isize,
    }
}

/// # Safety
///
/// Called by `procfs_glue.c` only, with the entry's `data` and the opening `file`.
#[no_mangle]
unsafe extern "C" fn rustkm_procfs_open(
    data: *mut ffi::c_void,
    file: *mut ffi::c_void,
    flags: u32,
) -> ffi::c_int {
    // SAFETY: procfs calls us only while the entry is registered.
    let (handler, entry) = unsafe { Handler::from_data(data) };
    match handler.open(OpenFlags(flags)) {
        Ok(()) => {
            // SAFETY: `entry` is registered or null (not yet published; the glue skips it) and
            // `file` is being opened on it.
            unsafe { rustkm_procfs_set_size(entry, file, handler.size()) };
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// # Safety
///
/// Called by `procfs_glue.c` only: `buf` is a user pointer of `count` bytes, `pos` is valid.
#[no_mangle]
unsafe extern "C" fn rustkm_procfs_read(
    data: *mut ffi::c_void,
    buf: *mut ffi::c_char,
    count: usize,
    pos: *mut bindings::loff_t,
) -> isize {
    // SAFETY: procfs calls us only while the entry is registered.
    let (handler, _) = unsafe { Handler::from_data(data) };
    let mut out = UserSlice::new(UserPtr::from_ptr(buf.cast()), count).writer();
    // SAFETY: `pos` is the file position procfs passes, valid during the call.
    let pos = unsafe { &mut *pos };
    to_ssize(handler.read(&mut out, *pos).inspect(|&n| *pos += n as i64))
}

/// # Safety
///
/// Called by `procfs_glue.c` only: `buf` is a user pointer of `count` bytes, `pos` is valid,
/// `file` is the file being written.
#[no_mangle]
unsafe extern "C" fn rustkm_procfs_write(
    data: *mut ffi::c_void,
    file: *mut ffi::c_void,
    buf: *const ffi::c_char,
    count: usize,
    pos: *mut bindings::loff_t,
    flags: u32,
) -> isize {
    // SAFETY: procfs calls us only while the entry is registered.
    let (handler, entry) = unsafe { Handler::from_data(data) };
    let mut input = UserSlice::new(UserPtr::from_ptr(buf.cast_mut().cast()), count).reader();
    // SAFETY: `pos` is the file position procfs passes, valid during the call.
    let pos = unsafe { &mut *pos };
    let result = handler.write(&mut input, pos, OpenFlags(flags).append());
    // SAFETY: `entry` is registered or null (not yet published; the glue skips it) and
    // `file` is open on it.
    unsafe { rustkm_procfs_set_size(entry, file, handler.size()) };
    to_ssize(result)
}

/// # Safety
///
/// Called by `procfs_glue.c` only, with the entry's `data`.
#[no_mangle]
unsafe extern "C" fn rustkm_procfs_release(data: *mut ffi::c_void) {
    // SAFETY: procfs calls release before the entry's removal completes.
    unsafe { Handler::from_data(data) }.0.release()
}

/// # Safety
///
/// Called by `procfs_glue.c` only, with the entry's `data`.
#[no_mangle]
unsafe extern "C" fn rustkm_procfs_size(data: *mut ffi::c_void) -> i64 {
    // SAFETY: procfs calls us only while the entry is registered.
    unsafe { Handler::from_data(data) }.0.size()
}

/// # Safety
///
/// Called by `procfs_glue.c` only, with the entry's `data`.
#[no_mangle]
unsafe extern "C" fn rustkm_procfs_max_size(data: *mut ffi::c_void) -> i64 {
    // SAFETY: procfs calls us only while the entry is registered.
    unsafe { Handler::from_data(data) }.0.max_size()
}
