// SPDX-License-Identifier: GPL-2.0

//! Module parameters (LKMPG hello-5): `insmod hello_5.ko myshort=7 myint=-3 mylong=123`.
//!
//! Linux 7.2's Rust `module!` supports integer parameters; LKMPG's string (`charp`) and array
//! parameters have no Rust counterpart there yet, so they are not ported. The kernel registers
//! Rust parameters without sysfs permissions, so they do not appear under
//! /sys/module/hello_5/parameters (the C original's do).

use kernel::prelude::*;

module! {
    type: Hello5,
    name: "hello_5",
    authors: ["rustkm"],
    description: "LKMPG hello-5 in Rust: module parameters",
    license: "GPL",
    params: {
        myshort: i16 {
            default: 1,
            description: "A short integer",
        },
        myint: i32 {
            default: 420,
            description: "An integer",
        },
        mylong: i64 {
            default: 9999,
            description: "A long integer",
        },
    },
}

struct Hello5;

impl kernel::Module for Hello5 {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("Hello, world 5\n=============\n");
        pr_info!(
            "myshort is a short integer: {}\n",
            *module_parameters::myshort.value()
        );
        pr_info!(
            "myint is an integer: {}\n",
            *module_parameters::myint.value()
        );
        pr_info!(
            "mylong is a long integer: {}\n",
            *module_parameters::mylong.value()
        );
        Ok(Hello5)
    }
}

impl Drop for Hello5 {
    fn drop(&mut self) {
        pr_info!("Goodbye, world 5\n");
    }
}
