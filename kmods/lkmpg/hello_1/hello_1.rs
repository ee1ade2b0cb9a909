// SPDX-License-Identifier: GPL-2.0

//! The simplest module: a line when loaded, a line when unloaded (LKMPG hello-1).

use kernel::prelude::*;

module! {
    type: Hello1,
    name: "hello_1",
    authors: ["rustkm"],
    description: "LKMPG hello-1 in Rust",
    license: "GPL",
}

struct Hello1;

impl kernel::Module for Hello1 {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("Hello world 1.\n");
        Ok(Hello1)
    }
}

impl Drop for Hello1 {
    fn drop(&mut self) {
        pr_info!("Goodbye world 1.\n");
    }
}
