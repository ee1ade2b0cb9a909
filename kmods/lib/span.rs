// SPDX-License-Identifier: GPL-2.0

//! The offset and size arithmetic of a read from contents held in memory, apart from the copy
//! to user space, so that KUnit can test it (kmods/lib_kunit).

use core::ops::Range;
use kernel::prelude::*;

/// The bytes of `len` bytes of contents that a read of at most `room` bytes at `pos` returns:
/// an empty range at or past the end, `EINVAL` for a negative position.
pub(crate) fn read_range(len: usize, pos: i64, room: usize) -> Result<Range<usize>> {
    let start = usize::try_from(pos).map_err(|_| EINVAL)?;
    if start >= len {
        return Ok(len..len);
    }
    Ok(start..start.saturating_add(room).min(len))
}
