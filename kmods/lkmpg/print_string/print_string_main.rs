// SPDX-License-Identifier: GPL-2.0

//! LKMPG print_string in Rust: at load and at unload, a line goes to the controlling tty of
//! the process that loads or unloads the module (insmod's, rmmod's), whatever its standard
//! output is. A process without a controlling tty gets nothing and the kernel log stays quiet,
//! as in the original; when the tty is no longer open anywhere (or hung up), the write fails
//! with `EIO` and the log says so.
//!
//! The text goes to the tty's driver directly, not through the line discipline, so each line
//! ends with "\r\n" as in the original (see `kmods/lib/tty.rs`).

use kernel::prelude::*;

#[path = "../../lib/tty.rs"]
mod tty;

use tty::Tty;

module! {
    type: PrintString,
    name: "print_string",
    authors: ["rustkm"],
    description: "LKMPG print_string in Rust: prints to the loading process's tty",
    license: "GPL",
}

/// Prints `text` and a carriage return + line feed on the current task's tty, if it has one.
fn print_string(text: &str) {
    let Some(tty) = Tty::current() else {
        return;
    };
    let result = tty
        .write_all(text.as_bytes())
        .and_then(|()| tty.write_all(b"\r\n"));
    if let Err(e) = result {
        pr_info!("could not print to the tty: error {}\n", e.to_errno());
    }
}

struct PrintString;

impl kernel::Module for PrintString {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        print_string("The module has been inserted.  Hello world!");
        Ok(PrintString)
    }
}

impl Drop for PrintString {
    fn drop(&mut self) {
        print_string("The module has been removed.  Farewell world!");
    }
}
