// SPDX-License-Identifier: GPL-2.0

//! A safe sysctl abstraction: files under /proc/sys whose reads and writes a Rust type handles.
//!
//! The kernel's Rust has none. This wraps `register_sysctl_sz` and `unregister_sysctl_table`;
//! `struct ctl_table` comes from the generated bindings, so its layout is the target kernel's.
//!
//! ```ignore
//! static ATOM: Atom = Atom::new();
//! static TABLE: SysctlTable<1> = SysctlTable::new([entry(c"atom", 0o644, &ATOM)]);
//! let registration = Registration::register(c"example", &TABLE)?;
//! ```

use core::ptr::NonNull;
use kernel::{bindings, ffi, prelude::*, str::CStr};

/// What a sysctl file does when it is read or written.
pub(crate) trait SysctlFile: Sync + 'static {
    /// Writes the file's whole text into `out` and returns its length.
    fn show(&self, out: &mut [u8]) -> usize;
    /// Handles one write of `input` (the bytes user space wrote, at offset 0).
    fn store(&self, input: &[u8]) -> Result;
}

/// The longest text a [`SysctlFile::show`] may produce.
pub(crate) const SHOW_MAX: usize = 64;

/// A table of sysctl entries that can live in a `static`.
pub(crate) struct SysctlTable<const N: usize>([bindings::ctl_table; N]);

// SAFETY: the table is never written after construction; its raw pointers refer to `'static`
// names and `'static` handlers that are `Sync`, so sharing it between threads is sound.
unsafe impl<const N: usize> Sync for SysctlTable<N> {}

impl<const N: usize> SysctlTable<N> {
    /// A table of the given entries (see [`entry`]).
    pub(crate) const fn new(entries: [bindings::ctl_table; N]) -> Self {
        Self(entries)
    }
}

/// A sysctl entry named `name` with permissions `mode`, handled by `file`.
pub(crate) const fn entry<T: SysctlFile>(
    name: &'static CStr,
    mode: u16,
    file: &'static T,
) -> bindings::ctl_table {
    // SAFETY: `ctl_table` is a C struct for which all-zero bytes are a valid value (null
    // pointers, a `None` handler).
    let mut table: bindings::ctl_table = unsafe { core::mem::zeroed() };
    // `as_char_ptr` is not a `const fn`; this is the same cast to the kernel's unsigned char.
    #[allow(clippy::disallowed_methods)]
    let procname = name.as_ptr().cast::<ffi::c_char>();
    table.procname = procname;
    table.data = core::ptr::from_ref(file).cast_mut().cast::<ffi::c_void>();
    table.mode = mode;
    table.proc_handler = Some(proc_handler::<T>);
    table
}

/// Copies the part of `text` at and after `*pos` into `out`; returns how many bytes it copied.
pub(crate) fn read_at(text: &[u8], pos: &mut i64, out: &mut [u8]) -> usize {
    let start = match usize::try_from(*pos) {
        Ok(start) if start < text.len() => start,
        _ => return 0,
    };
    let count = out.len().min(text.len() - start);
    out[..count].copy_from_slice(&text[start..start + count]);
    *pos += count as i64;
    count
}

/// The `proc_handler` of every entry made by [`entry`] for a `T`.
///
/// # Safety
///
/// Called by the sysctl core only: `ctl` is an entry made by [`entry::<T>`], `buffer` points
/// to `*lenp` bytes of kernel memory (readable for a write, writable for a read), and `lenp`
/// and `ppos` are valid for reads and writes.
unsafe extern "C" fn proc_handler<T: SysctlFile>(
    ctl: *const bindings::ctl_table,
    write: ffi::c_int,
    buffer: *mut ffi::c_void,
    lenp: *mut usize,
    ppos: *mut bindings::loff_t,
) -> ffi::c_int {
    // SAFETY: per this function's contract, `ctl` is a valid entry whose `data` is the
    // `&'static T` that `entry::<T>` stored.
    let file = unsafe { &*(*ctl).data.cast::<T>() };
    // SAFETY: `lenp` and `ppos` are valid per this function's contract.
    let (len, pos) = unsafe { (&mut *lenp, &mut *ppos) };
    if buffer.is_null() {
        *len = 0;
        return 0;
    }
    if write != 0 {
        if *pos != 0 {
            // A write that continues an earlier one: the value must come in one write.
            return EINVAL.to_errno();
        }
        // SAFETY: the sysctl core copied the user's `*len` bytes into `buffer`.
        let input = unsafe { core::slice::from_raw_parts(buffer.cast::<u8>(), *len) };
        match file.store(input) {
            Ok(()) => {
                *pos += *len as i64;
                0
            }
            Err(e) => e.to_errno(),
        }
    } else {
        let mut text = [0u8; SHOW_MAX];
        let shown = file.show(&mut text).min(SHOW_MAX);
        // SAFETY: the sysctl core allocated `*len` writable bytes at `buffer`.
        let out = unsafe { core::slice::from_raw_parts_mut(buffer.cast::<u8>(), *len) };
        *len = read_at(&text[..shown], pos, out);
        0
    }
}

/// A registered sysctl directory; unregistered when dropped.
pub(crate) struct Registration {
    header: NonNull<bindings::ctl_table_header>,
}

// SAFETY: the header is only passed back to `unregister_sysctl_table`, which may be called
// from any thread.
unsafe impl Send for Registration {}
// SAFETY: a shared `Registration` offers no access to the header at all.
unsafe impl Sync for Registration {}

impl Registration {
    /// Registers `table` under /proc/sys/`path` (e.g. c"example").
    pub(crate) fn register<const N: usize>(
        path: &'static CStr,
        table: &'static SysctlTable<N>,
    ) -> Result<Self> {
        // SAFETY: `path` and `table` are `'static`, so they outlive the registration, as the
        // sysctl core requires; `N` is the table's exact length.
        let header =
            unsafe { bindings::register_sysctl_sz(path.as_char_ptr(), table.0.as_ptr(), N) };
        NonNull::new(header)
            .map(|header| Self { header })
            .ok_or(ENOMEM)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // SAFETY: `header` came from a successful `register_sysctl_sz` and is unregistered
        // exactly once, here.
        unsafe { bindings::unregister_sysctl_table(self.header.as_ptr()) };
    }
}
