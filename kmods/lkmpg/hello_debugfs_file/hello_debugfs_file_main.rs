// SPDX-License-Identifier: GPL-2.0

//! LKMPG hello-debugfs-file in Rust: /sys/kernel/debug/lkmpg_debugfs_file/message (0600), a
//! message of up to 127 bytes read at any offset and replaced by a write at offset 0 (longer
//! writes are cut to 127 bytes; a write at another offset gets EINVAL), and blob (0400), a
//! read-only text, as the original's `debugfs_create_blob()`.
//!
//! Made with `kmods/lib/debugfs.rs` (7.2's `kernel::debugfs` does not hold the module while a
//! file is open).

use kernel::{
    fs::file,
    new_mutex,
    prelude::*,
    sync::Mutex,
    uaccess::{UserSliceReader, UserSliceWriter},
};

#[path = "../../lib/debugfs.rs"]
mod debugfs;

use debugfs::{DebugfsFile, Dir};

module! {
    type: HelloDebugfsFile,
    name: "hello_debugfs_file",
    authors: ["rustkm"],
    description: "Custom debugfs file and blob examples",
    license: "GPL",
}

const MESSAGE_MAX_LEN: usize = 128;
const GREETING: &[u8] = b"debugfs says hello\n";
const BLOB: &[u8] = b"This blob is read-only and exported with debugfs_create_blob().\n";

struct Message {
    text: [u8; MESSAGE_MAX_LEN],
    len: usize,
}

#[pin_data]
struct MessageFile {
    #[pin]
    message: Mutex<Message>,
}

impl DebugfsFile for MessageFile {
    fn read(&self, out: &mut UserSliceWriter, pos: &mut file::Offset) -> Result<usize> {
        let message = self.message.lock();
        out.write_slice_file(message.text.get(..message.len).ok_or(EINVAL)?, pos)
    }

    fn write(&self, input: &mut UserSliceReader, pos: &mut file::Offset) -> Result<usize> {
        if *pos != 0 {
            return Err(EINVAL);
        }
        // As simple_write_to_buffer() into 127 bytes: the rest of a longer write is left.
        let count = input.len().min(MESSAGE_MAX_LEN - 1);
        let mut text = [0u8; MESSAGE_MAX_LEN];
        input.read_slice(text.get_mut(..count).ok_or(EINVAL)?)?;
        *self.message.lock() = Message { text, len: count };
        *pos = count as file::Offset;
        Ok(count)
    }
}

/// debugfs_create_blob(): a read-only text.
struct BlobFile(&'static [u8]);

impl DebugfsFile for BlobFile {
    fn read(&self, out: &mut UserSliceWriter, pos: &mut file::Offset) -> Result<usize> {
        out.write_slice_file(self.0, pos)
    }
}

struct HelloDebugfsFile {
    _dir: Dir,
}

impl kernel::Module for HelloDebugfsFile {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let mut text = [0u8; MESSAGE_MAX_LEN];
        text[..GREETING.len()].copy_from_slice(GREETING);
        let message = KBox::pin_init(
            pin_init!(MessageFile {
                message <- new_mutex!(Message { text, len: GREETING.len() }),
            }),
            GFP_KERNEL,
        )?;
        let mut dir = Dir::new(c"lkmpg_debugfs_file")?;
        dir.add_file(c"message", 0o600, message)?;
        dir.add_file(c"blob", 0o400, KBox::pin(BlobFile(BLOB), GFP_KERNEL)?)?;
        pr_info!("debugfs file example registered under /sys/kernel/debug/lkmpg_debugfs_file\n");
        Ok(HelloDebugfsFile { _dir: dir })
    }
}

impl Drop for HelloDebugfsFile {
    fn drop(&mut self) {
        pr_info!("debugfs file example removed\n");
    }
}
