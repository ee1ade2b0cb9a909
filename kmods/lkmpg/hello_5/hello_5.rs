// SPDX-License-Identifier: GPL-2.0

//! Module parameters (LKMPG hello-5): `insmod hello_5.ko myshort=7 myint=-3 mylong=123`.
//!
//! The parameters are declared with `kmods/lib/params.rs` rather than `module!`'s `params`
//! (which 7.2 registers without sysfs permissions), so they appear under
//! /sys/module/hello_5/parameters with the original's permissions: myshort 0660 and myint
//! 0644 are writable there, mylong 0400 is read-only. LKMPG's string (`charp`) and array
//! parameters are not ported.

use kernel::prelude::*;

#[path = "../../lib/params.rs"]
mod params;

module! {
    type: Hello5,
    name: "hello_5",
    authors: ["rustkm"],
    description: "LKMPG hello-5 in Rust: module parameters",
    license: "GPL",
}

params::module_param!(myshort: i16 = 1, perm: 0o660, desc: "A short integer");
params::module_param!(myint: i32 = 420, perm: 0o644, desc: "An integer");
params::module_param!(mylong: isize = 9999, perm: 0o400, desc: "A long integer");

struct Hello5;

impl kernel::Module for Hello5 {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("Hello, world 5\n=============\n");
        pr_info!("myshort is a short integer: {}\n", myshort.get());
        pr_info!("myint is an integer: {}\n", myint.get());
        pr_info!("mylong is a long integer: {}\n", mylong.get());
        Ok(Hello5)
    }
}

impl Drop for Hello5 {
    fn drop(&mut self) {
        pr_info!("Goodbye, world 5\n");
    }
}
