// SPDX-License-Identifier: GPL-2.0

//! LKMPG hello-6 in Rust: a parameter with set/get callbacks (C's `module_param_cb()`).
//! `watched` (0644) logs every update, at insmod and through
//! /sys/module/hello_6/parameters/watched, and every read; bad values get the kernel's int
//! parser's errno and change nothing.

use kernel::prelude::*;

#[path = "../../lib/params.rs"]
mod params;

use params::{ParamArg, ParamBuf, ParamHooks, ParamRef};

module! {
    type: Hello6,
    name: "hello_6",
    authors: ["LKMPG"],
    description: "A module_param_cb() example",
    license: "GPL",
}

/// The callbacks of `watched`.
struct Watched;

impl ParamHooks<i32> for Watched {
    fn set(param: &ParamRef<'_, i32>, arg: &ParamArg<'_>) -> Result {
        param.set_default(arg)?;
        pr_info!("watched updated to {}\n", param.value());
        Ok(())
    }

    fn get(param: &ParamRef<'_, i32>, buf: &mut ParamBuf) -> Result<usize> {
        let len = param.get_default(buf)?;
        pr_info!("watched was read\n");
        Ok(len)
    }
}

params::module_param!(
    watched: i32 = 42,
    perm: 0o644,
    desc: "An integer that logs every update",
    hooks: Watched,
);

struct Hello6;

impl kernel::Module for Hello6 {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("Hello, world 6\n");
        pr_info!("watched starts at {}\n", watched.get());
        Ok(Hello6)
    }
}

impl Drop for Hello6 {
    fn drop(&mut self) {
        pr_info!("Goodbye, world 6\n");
    }
}
