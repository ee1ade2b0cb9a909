// SPDX-License-Identifier: GPL-2.0

//! Init and exit as named functions (LKMPG hello-2: module_init, module_exit).

use kernel::prelude::*;

module! {
    type: Hello2,
    name: "hello_2",
    authors: ["rustkm"],
    description: "LKMPG hello-2 in Rust",
    license: "GPL",
}

struct Hello2;

impl kernel::Module for Hello2 {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("Hello, world 2\n");
        Ok(Hello2)
    }
}

impl Drop for Hello2 {
    fn drop(&mut self) {
        pr_info!("Goodbye, world 2\n");
    }
}
