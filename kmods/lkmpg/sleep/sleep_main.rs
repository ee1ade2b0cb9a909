// SPDX-License-Identifier: GPL-2.0

//! LKMPG sleep in Rust: /proc/sleep can be open by one process at a time. A second opener
//! sleeps until the first closes, or gets `EAGAIN` at once if it opened with `O_NONBLOCK`; a
//! signal ends the wait with `EINTR`. Writes store a message (at most 79 bytes); reads give
//! "Last input:MESSAGE\n".
//!
//! The original takes a module reference in `open`, so `rmmod` waits for nobody; here `rmmod`
//! works while the file is open or openers sleep: the sleepers wake and get `ENODEV`, and
//! procfs turns the open file's later calls into `EIO`.

use kernel::{
    new_condvar, new_mutex,
    prelude::*,
    sync::{CondVar, Mutex},
    uaccess::{UserSliceReader, UserSliceWriter},
};

#[path = "../../lib/procfs.rs"]
mod procfs;

use procfs::{OpenFlags, ProcFile, Registration};

module! {
    type: SleepModule,
    name: "sleep",
    authors: ["rustkm"],
    description: "LKMPG sleep in Rust",
    license: "GPL",
}

const MESSAGE_LENGTH: usize = 80;
const PREFIX: &[u8] = b"Last input:";

struct State {
    /// A file is open.
    open: bool,
    /// The module is going away: nobody may open any more.
    closing: bool,
    message: [u8; MESSAGE_LENGTH],
    len: usize,
}

#[pin_data]
struct Sleep {
    #[pin]
    state: Mutex<State>,
    /// Openers waiting for `open` to become false.
    #[pin]
    waitq: CondVar,
}

impl ProcFile for Sleep {
    fn open(&self, flags: OpenFlags) -> Result {
        let mut state = self.state.lock();
        loop {
            if state.closing {
                return Err(ENODEV);
            }
            if !state.open {
                state.open = true;
                return Ok(());
            }
            if flags.nonblock() {
                return Err(EAGAIN);
            }
            if self.waitq.wait_interruptible(&mut state) {
                return Err(EINTR);
            }
        }
    }

    fn release(&self) {
        self.state.lock().open = false;
        self.waitq.notify_all();
    }

    fn read(&self, out: &mut UserSliceWriter, pos: i64) -> Result<usize> {
        let mut text = [0u8; PREFIX.len() + MESSAGE_LENGTH + 1];
        let len = {
            let state = self.state.lock();
            let message = &state.message[..state.len];
            text[..PREFIX.len()].copy_from_slice(PREFIX);
            text[PREFIX.len()..][..message.len()].copy_from_slice(message);
            text[PREFIX.len() + message.len()] = b'\n';
            PREFIX.len() + message.len() + 1
        };
        procfs::read_at(&text[..len], out, pos)
    }

    fn write(&self, input: &mut UserSliceReader, pos: &mut i64, _append: bool) -> Result<usize> {
        let count = input.len().min(MESSAGE_LENGTH - 1);
        let mut incoming = [0u8; MESSAGE_LENGTH];
        input.read_slice(&mut incoming[..count])?;
        let mut state = self.state.lock();
        state.message = incoming;
        state.len = count;
        *pos += count as i64;
        Ok(count)
    }

    fn size(&self) -> i64 {
        (PREFIX.len() + self.state.lock().len + 1) as i64
    }

    fn max_size(&self) -> i64 {
        (PREFIX.len() + MESSAGE_LENGTH) as i64
    }
}

struct SleepModule {
    file: Registration<Sleep>,
}

impl kernel::Module for SleepModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let sleep = KBox::pin_init(
            pin_init!(Sleep {
                state <- new_mutex!(State {
                    open: false,
                    closing: false,
                    message: [0; MESSAGE_LENGTH],
                    len: 0,
                }),
                waitq <- new_condvar!(),
            }),
            GFP_KERNEL,
        )?;
        let file = Registration::register(c"sleep", 0o644, sleep)?;
        pr_info!("/proc/sleep created\n");
        Ok(SleepModule { file })
    }
}

impl Drop for SleepModule {
    fn drop(&mut self) {
        // Wake the sleeping openers before the entry's removal waits for them.
        let sleep = self.file.handler();
        sleep.state.lock().closing = true;
        sleep.waitq.notify_all();
        pr_info!("/proc/sleep removed\n");
    }
}
