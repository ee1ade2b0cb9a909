// SPDX-License-Identifier: GPL-2.0

//! LKMPG procfs2 in Rust: /proc/buffer1k takes writes into a 1 KiB buffer (longer writes are
//! cut to 1023 bytes, as in the original) and logs them; reads give "HelloWorld!\n", as the
//! original's do. The log shows at most the first 200 bytes: an over-long record is dropped
//! whole by printk's Rust path, not cut.

use kernel::{
    new_mutex,
    prelude::*,
    str::CStr,
    sync::Mutex,
    uaccess::{UserSliceReader, UserSliceWriter},
};

#[path = "../../lib/procfs.rs"]
mod procfs;

use procfs::{OpenFlags, ProcFile, Registration};

module! {
    type: Procfs2,
    name: "procfs2",
    authors: ["rustkm"],
    description: "LKMPG procfs2 in Rust",
    license: "GPL",
}

const HELLO: &[u8] = b"HelloWorld!\n";
const PROCFS_MAX_SIZE: usize = 1024;
/// The most of a write the log line shows.
const LOGGED_MAX: usize = 200;

#[pin_data]
struct Buffer1k {
    /// The last write, NUL-terminated.
    #[pin]
    buffer: Mutex<[u8; PROCFS_MAX_SIZE]>,
}

impl ProcFile for Buffer1k {
    fn open(&self, _flags: OpenFlags) -> Result {
        Ok(())
    }

    fn read(&self, out: &mut UserSliceWriter, pos: i64) -> Result<usize> {
        procfs::read_at(HELLO, out, pos)
    }

    fn write(&self, input: &mut UserSliceReader, pos: &mut i64, _append: bool) -> Result<usize> {
        let count = input.len().min(PROCFS_MAX_SIZE - 1);
        let mut buffer = self.buffer.lock();
        input.read_slice(&mut buffer[..count])?;
        buffer[count] = 0;
        let text = CStr::from_bytes_until_nul(&buffer[..]).map_or(&[][..], |t| t.to_bytes());
        let shown = &text[..text.len().min(LOGGED_MAX)];
        pr_info!(
            "procfile write {}\n",
            core::str::from_utf8(shown).unwrap_or("(not UTF-8)")
        );
        *pos += count as i64;
        Ok(count)
    }

    fn size(&self) -> i64 {
        HELLO.len() as i64
    }

    fn max_size(&self) -> i64 {
        HELLO.len() as i64
    }
}

struct Procfs2 {
    _file: Registration<Buffer1k>,
}

impl kernel::Module for Procfs2 {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let buffer = KBox::pin_init(
            pin_init!(Buffer1k {
                buffer <- new_mutex!([0u8; PROCFS_MAX_SIZE]),
            }),
            GFP_KERNEL,
        )?;
        let file = Registration::register(c"buffer1k", 0o644, buffer)?;
        pr_info!("/proc/buffer1k created\n");
        Ok(Procfs2 { _file: file })
    }
}

impl Drop for Procfs2 {
    fn drop(&mut self) {
        pr_info!("/proc/buffer1k removed\n");
    }
}
