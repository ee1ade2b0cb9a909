// SPDX-License-Identifier: GPL-2.0

//! The memory behind the disk, and what a request asks of it.
//!
//! 7.2's Rust [`Request`] shows nothing of a request but its reference count: its operation,
//! position, size and data pages (a chain of bios) are reached through C inline functions and
//! the `rq_for_each_segment()` macro. The C half, `blkram_glue.c`, expands them against the
//! target's headers; this file wraps it:
//!
//! - [`Io::of`] reads what a request asks for (operation, byte offset, length);
//! - [`RamStore`] owns a zeroed vmalloc buffer and [`RamStore::transfer`] copies a read's or a
//!   write's data between the buffer and the request's pages, after checking that the whole
//!   range lies in the buffer (`EIO` if not).

use core::ptr::{self, NonNull};
use kernel::{
    bindings,
    block::{
        mq::{Operations, Request},
        SECTOR_SIZE,
    },
    error::to_result,
    ffi,
    prelude::*,
};

extern "C" {
    // `struct request *` as `void *`: bindgen's `request` holds a zero-sized C array, which
    // rustc does not consider FFI-safe.
    fn rustkm_blkram_rq_op(rq: *mut ffi::c_void) -> ffi::c_uint;
    fn rustkm_blkram_rq_pos(rq: *mut ffi::c_void) -> u64;
    fn rustkm_blkram_rq_bytes(rq: *mut ffi::c_void) -> ffi::c_uint;
    fn rustkm_blkram_rq_copy(
        rq: *mut ffi::c_void,
        mem: *mut u8,
        len: usize,
        write: bool,
    ) -> ffi::c_int;
}

// `enum rustkm_blkram_op` in blkram_glue.c.
const OP_READ: ffi::c_uint = 0;
const OP_WRITE: ffi::c_uint = 1;
const OP_FLUSH: ffi::c_uint = 2;

/// A request's operation, as far as a RAM disk cares.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// `REQ_OP_READ`: copy from the disk into the request's pages.
    Read,
    /// `REQ_OP_WRITE`: copy from the request's pages onto the disk.
    Write,
    /// `REQ_OP_FLUSH`: nothing to write back.
    Flush,
    /// Anything else (discard, zone operations, passthrough commands).
    Other,
}

/// What a request asks for.
pub(crate) struct Io {
    /// The operation.
    pub(crate) op: Op,
    /// Where it starts on the disk, in bytes (`None` if that does not fit in a `u64`).
    pub(crate) offset: Option<u64>,
    /// How many bytes it moves.
    pub(crate) len: usize,
}

/// The C `struct request` behind `rq`.
fn raw<T: Operations>(rq: &Request<T>) -> *mut ffi::c_void {
    // `Request<T>` is `#[repr(transparent)]` over `Opaque<bindings::request>` (7.2's
    // rust/kernel/block/mq/request.rs), so its address is the C request's; `Opaque` allows
    // the C side to access it through a shared reference.
    ptr::from_ref(rq)
        .cast::<bindings::request>()
        .cast_mut()
        .cast()
}

impl Io {
    /// What `rq` asks for.
    pub(crate) fn of<T: Operations>(rq: &Request<T>) -> Self {
        let rq = raw(rq);
        // SAFETY: a `Request` is a live request owned by the driver while it is referenced;
        // these only read its flags and position.
        let (op, pos, bytes) = unsafe {
            (
                rustkm_blkram_rq_op(rq),
                rustkm_blkram_rq_pos(rq),
                rustkm_blkram_rq_bytes(rq),
            )
        };
        let op = match op {
            OP_READ => Op::Read,
            OP_WRITE => Op::Write,
            OP_FLUSH => Op::Flush,
            _ => Op::Other,
        };
        Self {
            op,
            offset: pos.checked_mul(u64::from(SECTOR_SIZE)),
            // `c_uint` is `u32`, which always fits in a `usize` on the kernel's targets.
            len: bytes as usize,
        }
    }
}

/// A zeroed vmalloc buffer that requests' data is copied to and from.
///
/// # Invariants
///
/// `mem`, `len` and `capacity` are the parts of a `VVec<u8>` of `len` initialised bytes,
/// owned by this store (given back to `VVec` on drop). No Rust reference to the bytes exists:
/// they are accessed only by the C copy, through `mem`.
pub(crate) struct RamStore {
    mem: NonNull<u8>,
    len: usize,
    capacity: usize,
}

// SAFETY: the store owns its buffer and hands out no references to it, so it may be dropped on
// any thread.
unsafe impl Send for RamStore {}

// SAFETY: `&RamStore` only allows `transfer`, a copy by C code between the buffer and a
// request's pages. Requests run concurrently on different CPUs; overlapping ones race on the
// bytes as on any disk (the block layer does not order overlapping requests in flight), but
// never on anything but the plain bytes of the buffer.
unsafe impl Sync for RamStore {}

impl RamStore {
    /// A zeroed store of `len` bytes; `ENOMEM` (without a warning) if there is no such memory.
    pub(crate) fn new(len: usize) -> Result<Self> {
        let buf = VVec::from_elem(0u8, len, GFP_KERNEL | __GFP_NOWARN)?;
        let (mem, len, capacity) = buf.into_raw_parts();
        // A `Vec`'s pointer is never null (dangling when empty).
        let mem = NonNull::new(mem).ok_or(ENOMEM)?;
        // INVARIANT: the parts of a `VVec<u8>` of `len` zeroes.
        Ok(Self { mem, len, capacity })
    }

    /// Copies the data of `rq`, described by `io`: from the store into the request's pages for
    /// a read, the other way for a write. `EIO` if the range is not all in the store (nothing
    /// copied), `EINVAL` for an operation other than a read or a write.
    pub(crate) fn transfer<T: Operations>(&self, rq: &Request<T>, io: &Io) -> Result {
        let write = match io.op {
            Op::Read => false,
            Op::Write => true,
            Op::Flush | Op::Other => return Err(EINVAL),
        };
        let start = io
            .offset
            .and_then(|offset| usize::try_from(offset).ok())
            .ok_or(EIO)?;
        if start > self.len || io.len > self.len - start {
            return Err(EIO);
        }
        // SAFETY: `start <= self.len`, so the result is in the buffer or one past its end.
        let mem = unsafe { self.mem.as_ptr().add(start) };
        // SAFETY: `mem` is valid for `io.len` bytes (checked above), and stays allocated while
        // `self` lives, so during the call; no Rust reference to them exists (type invariant).
        // `rq` is a live request owned by the driver; the C copy stops at `io.len` bytes.
        to_result(unsafe { rustkm_blkram_rq_copy(raw(rq), mem, io.len, write) })
    }
}

impl Drop for RamStore {
    fn drop(&mut self) {
        // SAFETY: by the type invariant these are the parts of a `VVec<u8>`, given back once.
        drop(unsafe { VVec::from_raw_parts(self.mem.as_ptr(), self.len, self.capacity) });
    }
}
