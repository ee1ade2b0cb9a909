// SPDX-License-Identifier: GPL-2.0

//! /proc/rustkm_file: a /proc file that behaves like a regular file, up to 64 KiB.
//!
//! Read, write, lseek (SEEK_SET, CUR, END, DATA, HOLE); a write past the end extends the file
//! and the gap reads as zeros; `>` (O_TRUNC) empties it, `>>` (O_APPEND) appends; stat's size
//! follows the contents, which last until rmmod. A write that would pass 64 KiB writes nothing
//! and fails with `EFBIG`. Readers and writers may run concurrently.
//!
//! ```sh
//! $ echo hello > /proc/rustkm_file
//! $ echo world >> /proc/rustkm_file
//! $ cat /proc/rustkm_file
//! hello
//! world
//! ```

use kernel::{
    new_mutex,
    prelude::*,
    sync::Mutex,
    uaccess::{UserSliceReader, UserSliceWriter},
};

#[path = "../lib/procfs.rs"]
mod procfs;

use procfs::{OpenFlags, ProcFile, Registration};

module! {
    type: ProcFileModule,
    name: "procfile",
    authors: ["rustkm"],
    description: "/proc/rustkm_file, a /proc file that behaves like a regular file",
    license: "GPL",
}

/// The most the file holds.
const CAPACITY: usize = 64 * 1024;

#[pin_data]
struct RegularFile {
    #[pin]
    contents: Mutex<KVVec<u8>>,
}

impl RegularFile {
    fn new() -> Result<impl PinInit<Self, Error>> {
        let contents = KVVec::with_capacity(CAPACITY, GFP_KERNEL)?;
        Ok(try_pin_init!(Self {
            contents <- new_mutex!(contents),
        }))
    }
}

/// `pos` as an index, if it is one.
fn index(pos: i64) -> Result<usize> {
    usize::try_from(pos).map_err(|_| EINVAL)
}

/// Where a write of `count` bytes at `pos` (at the end, `len`, when `append`) lands in the
/// contents: `EINVAL` for a negative position, `EFBIG` past the capacity.
fn write_range(len: usize, pos: i64, count: usize, append: bool) -> Result<(usize, usize)> {
    let start = if append { len } else { index(pos)? };
    let end = start.checked_add(count).ok_or(EFBIG)?;
    if end > CAPACITY {
        return Err(EFBIG);
    }
    Ok((start, end))
}

impl ProcFile for RegularFile {
    fn open(&self, flags: OpenFlags) -> Result {
        if flags.truncate() {
            self.contents.lock().clear();
        }
        Ok(())
    }

    fn read(&self, out: &mut UserSliceWriter, pos: i64) -> Result<usize> {
        procfs::read_at(&self.contents.lock(), out, pos)
    }

    fn write(&self, input: &mut UserSliceReader, pos: &mut i64, append: bool) -> Result<usize> {
        let count = input.len();
        if count == 0 {
            return Ok(0);
        }
        if count > CAPACITY {
            return Err(EFBIG);
        }
        // Copy from user space first: a bad pointer must not leave a half-written file.
        let mut data = KVVec::from_elem(0u8, count, GFP_KERNEL)?;
        input.read_slice(&mut data)?;
        let mut contents = self.contents.lock();
        let (start, end) = write_range(contents.len(), *pos, count, append)?;
        if end > contents.len() {
            // A write past the end leaves a gap of zeros, as in a regular file.
            contents.resize(end, 0, GFP_KERNEL)?;
        }
        contents[start..end].copy_from_slice(&data);
        *pos = i64::try_from(end).map_err(|_| EFBIG)?;
        Ok(count)
    }

    fn size(&self) -> i64 {
        i64::try_from(self.contents.lock().len()).unwrap_or(i64::MAX)
    }

    fn max_size(&self) -> i64 {
        CAPACITY as i64
    }
}

struct ProcFileModule {
    _file: Registration<RegularFile>,
}

impl kernel::Module for ProcFileModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let file = KBox::pin_init(RegularFile::new()?, GFP_KERNEL)?;
        let registration = Registration::register(c"rustkm_file", 0o666, file)?;
        pr_info!("/proc/rustkm_file ready ({} bytes at most)\n", CAPACITY);
        Ok(ProcFileModule {
            _file: registration,
        })
    }
}

impl Drop for ProcFileModule {
    fn drop(&mut self) {
        pr_info!("unloaded\n");
    }
}

#[kunit_tests(procfile)]
mod tests {
    use super::*;

    #[test]
    fn a_write_lands_at_its_position() {
        assert_eq!(write_range(0, 0, 5, false), Ok((0, 5)));
        assert_eq!(write_range(10, 3, 4, false), Ok((3, 7)));
    }

    #[test]
    fn a_write_past_the_end_leaves_a_gap() {
        assert_eq!(write_range(2, 100, 1, false), Ok((100, 101)));
    }

    #[test]
    fn an_append_goes_to_the_end_whatever_the_position() {
        assert_eq!(write_range(10, 0, 4, true), Ok((10, 14)));
        assert_eq!(write_range(10, -1, 4, true), Ok((10, 14)));
    }

    #[test]
    fn the_capacity_is_reachable_but_not_passable() {
        assert_eq!(write_range(0, 0, CAPACITY, false), Ok((0, CAPACITY)));
        assert_eq!(write_range(0, 1, CAPACITY, false), Err(EFBIG));
        assert_eq!(write_range(CAPACITY, 0, 1, true), Err(EFBIG));
        assert_eq!(write_range(0, i64::MAX, 1, false), Err(EFBIG));
    }

    #[test]
    fn a_negative_position_is_invalid() {
        assert_eq!(write_range(0, -1, 1, false), Err(EINVAL));
        assert_eq!(index(-5), Err(EINVAL));
    }
}
