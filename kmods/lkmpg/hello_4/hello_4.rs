// SPDX-License-Identifier: GPL-2.0

//! Module metadata: license, author, description (LKMPG hello-4); modinfo shows it.

use kernel::prelude::*;

module! {
    type: Hello4,
    name: "hello_4",
    authors: ["LKMPG"],
    description: "A sample driver",
    license: "GPL",
}

struct Hello4;

impl kernel::Module for Hello4 {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("Hello, world 4\n");
        Ok(Hello4)
    }
}

impl Drop for Hello4 {
    fn drop(&mut self) {
        pr_info!("Goodbye, world 4\n");
    }
}
