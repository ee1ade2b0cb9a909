// SPDX-License-Identifier: GPL-2.0

//! Data used only while loading (LKMPG hello-3: `__initdata`). Rust has no `__initdata`
//! section attribute for modules; a `const` is folded into the init code, which is freed after
//! loading just the same.

use kernel::prelude::*;

module! {
    type: Hello3,
    name: "hello_3",
    authors: ["rustkm"],
    description: "LKMPG hello-3 in Rust",
    license: "GPL",
}

/// Only the init code reads it.
const HELLO3_DATA: i32 = 3;

struct Hello3;

impl kernel::Module for Hello3 {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("Hello, world {}\n", HELLO3_DATA);
        Ok(Hello3)
    }
}

impl Drop for Hello3 {
    fn drop(&mut self) {
        pr_info!("Goodbye, world 3\n");
    }
}
