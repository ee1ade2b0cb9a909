// SPDX-License-Identifier: GPL-2.0

//! LKMPG procfs3 in Rust: /proc/buffer2k keeps the last write, up to 2 KiB (a longer write is
//! cut to 2048 bytes, as in the original), and reads give it back.
//!
//! Beyond the original: reads follow the file position, so small reads (`dd bs=1`) see the same
//! bytes as one large read (the original returned the whole buffer at offset 0 only, and a
//! short read shrank the buffer); `stat` shows the stored size (the original fixed it at 80).

use kernel::{
    new_mutex,
    prelude::*,
    sync::Mutex,
    uaccess::{UserSliceReader, UserSliceWriter},
};

#[path = "../../lib/procfs.rs"]
mod procfs;

use procfs::{OpenFlags, ProcFile, Registration};

module! {
    type: Procfs3,
    name: "procfs3",
    authors: ["rustkm"],
    description: "LKMPG procfs3 in Rust",
    license: "GPL",
}

const PROCFS_MAX_SIZE: usize = 2048;

/// The stored bytes and how many of them there are.
struct Contents {
    bytes: [u8; PROCFS_MAX_SIZE],
    len: usize,
}

#[pin_data]
struct Buffer2k {
    #[pin]
    contents: Mutex<Contents>,
}

impl ProcFile for Buffer2k {
    fn open(&self, _flags: OpenFlags) -> Result {
        Ok(())
    }

    fn read(&self, out: &mut UserSliceWriter, pos: i64) -> Result<usize> {
        let contents = self.contents.lock();
        procfs::read_at(&contents.bytes[..contents.len], out, pos)
    }

    fn write(&self, input: &mut UserSliceReader, pos: &mut i64, _append: bool) -> Result<usize> {
        let count = input.len().min(PROCFS_MAX_SIZE);
        // Copied in before anything changes: a bad user pointer leaves the old contents.
        let mut incoming = KVec::from_elem(0u8, count, GFP_KERNEL)?;
        input.read_slice(&mut incoming)?;
        let mut contents = self.contents.lock();
        contents.bytes[..count].copy_from_slice(&incoming);
        contents.len = count;
        pr_debug!("procfs_write: write {} bytes\n", count);
        *pos += count as i64;
        Ok(count)
    }

    fn size(&self) -> i64 {
        self.contents.lock().len as i64
    }

    fn max_size(&self) -> i64 {
        PROCFS_MAX_SIZE as i64
    }
}

struct Procfs3 {
    _file: Registration<Buffer2k>,
}

impl kernel::Module for Procfs3 {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let buffer = KBox::pin_init(
            pin_init!(Buffer2k {
                contents <- new_mutex!(Contents {
                    bytes: [0; PROCFS_MAX_SIZE],
                    len: 0,
                }),
            }),
            GFP_KERNEL,
        )?;
        let file = Registration::register(c"buffer2k", 0o644, buffer)?;
        pr_info!("/proc/buffer2k created\n");
        Ok(Procfs3 { _file: file })
    }
}

impl Drop for Procfs3 {
    fn drop(&mut self) {
        pr_info!("/proc/buffer2k removed\n");
    }
}
