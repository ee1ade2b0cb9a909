// SPDX-License-Identifier: GPL-2.0

//! A /proc file read as a sequence of records through the kernel's seq_file (LKMPG procfs4).
//!
//! seq_file does what a hand-written read gets wrong: it prints whole records into a buffer,
//! serves short reads and `lseek` from it, and resumes the walk at the record where the last
//! read stopped. The implementation only says which records an open file sees and prints one.
//! 7.2's `kernel::seq_file` prints but cannot iterate, and the bindings have no `struct
//! proc_ops`; the C half, `seqfile_glue.c`, builds `struct seq_operations` and `struct proc_ops`
//! against the target kernel's headers and calls the `extern "C"` functions below. A module
//! using this links both (see kmods/lkmpg/procfs4/Kbuild).

use core::ptr::NonNull;
use kernel::{bindings, ffi, prelude::*, seq_file::SeqFile, str::CStr};

/// The records of a /proc file. Calls come concurrently, from different open files.
pub(crate) trait Records: Send + Sync {
    /// What one open file reads, made when it is opened: its reads and seeks agree with each
    /// other however they are cut, whatever other opens do meanwhile.
    type View: Send + Sync;

    /// At each open.
    fn open(&self) -> Result<Self::View>;
    /// Whether `view` has a record at `index` (0, 1, 2, ...; the walk ends at the first gap).
    fn has(&self, view: &Self::View, index: u64) -> bool;
    /// Prints record `index` of `view`. seq_file calls it again for a record that did not fit
    /// in its buffer, so it must print the same each time.
    fn show(&self, view: &Self::View, index: u64, out: &SeqFile) -> Result;
}

extern "C" {
    fn rustkm_seqfile_create(
        name: *const ffi::c_char,
        mode: u16,
        data: *mut ffi::c_void,
    ) -> *mut ffi::c_void;
    fn rustkm_seqfile_remove(entry: *mut ffi::c_void);
}

type Erased = *const ffi::c_void;
type ErasedView = *mut ffi::c_void;

/// What the proc entry's `data` points to: the records with their type erased, and the
/// functions of their `Records` implementation.
struct Handler {
    records: Erased,
    open: unsafe fn(Erased) -> Result<ErasedView>,
    has: unsafe fn(Erased, ErasedView, u64) -> bool,
    show: unsafe fn(Erased, ErasedView, u64, &SeqFile) -> Result,
    release: unsafe fn(ErasedView),
}

/// # Safety
///
/// `records` points to a live `T`.
unsafe fn open_view<T: Records>(records: Erased) -> Result<ErasedView> {
    // SAFETY: per the contract.
    let records = unsafe { &*records.cast::<T>() };
    let view = KBox::new(records.open()?, GFP_KERNEL)?;
    Ok(KBox::into_raw(view).cast())
}

/// # Safety
///
/// `records` points to a live `T`; `view` came from `open_view::<T>` and is not released yet.
unsafe fn typed<'a, T: Records>(records: Erased, view: ErasedView) -> (&'a T, &'a T::View) {
    // SAFETY: per the contract.
    unsafe { (&*records.cast::<T>(), &*view.cast::<T::View>()) }
}

/// # Safety
///
/// As for [`typed`].
unsafe fn has_record<T: Records>(records: Erased, view: ErasedView, index: u64) -> bool {
    // SAFETY: per the contract.
    let (records, view) = unsafe { typed::<T>(records, view) };
    records.has(view, index)
}

/// # Safety
///
/// As for [`typed`].
unsafe fn show_record<T: Records>(
    records: Erased,
    view: ErasedView,
    index: u64,
    out: &SeqFile,
) -> Result {
    // SAFETY: per the contract.
    let (records, view) = unsafe { typed::<T>(records, view) };
    records.show(view, index, out)
}

/// # Safety
///
/// `view` came from `open_view::<T>` and is released once.
unsafe fn release_view<T: Records>(view: ErasedView) {
    // SAFETY: `view` is the `KBox::into_raw` of `open_view::<T>`, given back once.
    drop(unsafe { KBox::from_raw(view.cast::<T::View>()) });
}

/// A registered /proc file of records; removed when dropped.
pub(crate) struct Registration<T: Records> {
    entry: NonNull<ffi::c_void>,
    // Dropped after `entry` is removed (see `Drop`); the C side points at both.
    _handler: KBox<Handler>,
    _records: Pin<KBox<T>>,
}

// SAFETY: the raw pointers refer only to `_handler`, `_records` (Send + Sync) and the proc
// entry, which procfs lets any thread remove.
unsafe impl<T: Records> Send for Registration<T> {}
// SAFETY: a shared `Registration` gives access to nothing.
unsafe impl<T: Records> Sync for Registration<T> {}

impl<T: Records + 'static> Registration<T> {
    /// Creates /proc/`name` with permissions `mode`, showing `records`.
    pub(crate) fn register(name: &'static CStr, mode: u16, records: Pin<KBox<T>>) -> Result<Self> {
        let handler = KBox::new(
            Handler {
                records: core::ptr::from_ref::<T>(&records).cast(),
                open: open_view::<T>,
                has: has_record::<T>,
                show: show_record::<T>,
                release: release_view::<T>,
            },
            GFP_KERNEL,
        )?;
        let data = core::ptr::from_ref::<Handler>(&handler).cast_mut().cast();
        // SAFETY: `name` is 'static; `data` and the records it points to stay valid until
        // `Drop` removes the entry.
        let entry = unsafe { rustkm_seqfile_create(name.as_char_ptr(), mode, data) };
        let entry = NonNull::new(entry).ok_or(ENOMEM)?;
        Ok(Self {
            entry,
            _handler: handler,
            _records: records,
        })
    }
}

impl<T: Records> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: `entry` came from `rustkm_seqfile_create` and is removed once, here; this
        // waits for running callbacks and releases the views of files still open, so nothing
        // uses `_handler` or `_records` when they are dropped after.
        unsafe { rustkm_seqfile_remove(self.entry.as_ptr()) };
    }
}

/// # Safety
///
/// `data` is the `data` of a registered entry (procfs calls back only while it is).
unsafe fn handler<'a>(data: *mut ffi::c_void) -> &'a Handler {
    // SAFETY: per the contract, `data` points to the live `Handler` of a registration.
    unsafe { &*data.cast::<Handler>() }
}

/// # Safety
///
/// Called by `seqfile_glue.c` only, with the entry's `data`; `view` is valid for writes.
#[no_mangle]
unsafe extern "C" fn rustkm_seqfile_open(
    data: *mut ffi::c_void,
    view: *mut ErasedView,
) -> ffi::c_int {
    // SAFETY: procfs calls open only while the entry is registered.
    let handler = unsafe { handler(data) };
    // SAFETY: `records` points into the registration's pinned box, alive while registered.
    match unsafe { (handler.open)(handler.records) } {
        Ok(opened) => {
            // SAFETY: the glue passes a valid place for the view.
            unsafe { view.write(opened) };
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// # Safety
///
/// Called by `seqfile_glue.c` only, with the entry's `data` and the view of an open file.
#[no_mangle]
unsafe extern "C" fn rustkm_seqfile_has(
    data: *mut ffi::c_void,
    view: ErasedView,
    index: bindings::loff_t,
) -> bool {
    let Ok(index) = u64::try_from(index) else {
        return false;
    };
    // SAFETY: seq_file walks only files open on a registered entry, with their own view.
    let handler = unsafe { handler(data) };
    // SAFETY: as above; `records` is alive while the entry is registered.
    unsafe { (handler.has)(handler.records, view, index) }
}

/// # Safety
///
/// Called by `seqfile_glue.c` only, with the entry's `data`, the view of an open file and the
/// `seq_file` being filled.
#[no_mangle]
unsafe extern "C" fn rustkm_seqfile_show(
    data: *mut ffi::c_void,
    view: ErasedView,
    index: bindings::loff_t,
    m: *mut bindings::seq_file,
) -> ffi::c_int {
    let Ok(index) = u64::try_from(index) else {
        return EINVAL.to_errno();
    };
    // SAFETY: seq_file holds the file's lock while it calls show: only this thread uses `m`.
    let out = unsafe { SeqFile::from_raw(m) };
    // SAFETY: seq_file walks only files open on a registered entry, with their own view.
    let handler = unsafe { handler(data) };
    // SAFETY: as above; `records` is alive while the entry is registered.
    match unsafe { (handler.show)(handler.records, view, index, out) } {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// # Safety
///
/// Called by `seqfile_glue.c` only, once per open file, with its view.
#[no_mangle]
unsafe extern "C" fn rustkm_seqfile_release(data: *mut ffi::c_void, view: ErasedView) {
    // SAFETY: procfs releases files before the entry's removal completes.
    let handler = unsafe { handler(data) };
    // SAFETY: `view` came from `open` and this is its one release.
    unsafe { (handler.release)(view) }
}
