// SPDX-License-Identifier: GPL-2.0

//! LKMPG procfs1 in Rust: /proc/helloworld reads "HelloWorld!\n" (the original also sends
//! its C string's terminating NUL; this port does not). It has no write operation: writes get
//! `EIO`, as procfs answers for a C file without `proc_write`.

use kernel::{
    prelude::*,
    uaccess::{UserSliceReader, UserSliceWriter},
};

#[path = "../../lib/procfs.rs"]
mod procfs;

use procfs::{OpenFlags, ProcFile, Registration};

module! {
    type: Procfs1,
    name: "procfs1",
    authors: ["rustkm"],
    description: "LKMPG procfs1 in Rust",
    license: "GPL",
}

const HELLO: &[u8] = b"HelloWorld!\n";

struct HelloWorld;

impl ProcFile for HelloWorld {
    fn open(&self, _flags: OpenFlags) -> Result {
        Ok(())
    }

    fn read(&self, out: &mut UserSliceWriter, pos: i64) -> Result<usize> {
        let count = procfs::read_at(HELLO, out, pos)?;
        pr_info!("procfile read helloworld\n");
        Ok(count)
    }

    fn write(&self, _input: &mut UserSliceReader, _pos: &mut i64, _append: bool) -> Result<usize> {
        Err(EIO)
    }

    fn size(&self) -> i64 {
        HELLO.len() as i64
    }

    fn max_size(&self) -> i64 {
        HELLO.len() as i64
    }
}

struct Procfs1 {
    _file: Registration<HelloWorld>,
}

impl kernel::Module for Procfs1 {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let file =
            Registration::register(c"helloworld", 0o644, KBox::pin(HelloWorld, GFP_KERNEL)?)?;
        pr_info!("/proc/helloworld created\n");
        Ok(Procfs1 { _file: file })
    }
}

impl Drop for Procfs1 {
    fn drop(&mut self) {
        pr_info!("/proc/helloworld removed\n");
    }
}
