// SPDX-License-Identifier: GPL-2.0

//! One module from two source files (LKMPG start.c + stop.c): this crate root holds the init
//! half; `stop.rs` holds the exit half.

use kernel::prelude::*;

mod stop;

module! {
    type: StartStop,
    name: "startstop",
    authors: ["rustkm"],
    description: "LKMPG startstop in Rust: one module, two files",
    license: "GPL",
}

/// The module; its `Drop` is in `stop.rs`.
pub(crate) struct StartStop;

impl kernel::Module for StartStop {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("Hello, world - this is the kernel speaking\n");
        Ok(StartStop)
    }
}
