// SPDX-License-Identifier: GPL-2.0

//! LKMPG hello-sysfs in Rust: /sys/kernel/mymodule/myvariable, an int that user space reads
//! and writes (mode 0660, as the original's). The original's `sscanf("%d")` takes any prefix
//! and ignores the rest; here a write must be one decimal int (an optional trailing newline
//! allowed), otherwise it fails with EINVAL and the old value stays.

use core::{
    fmt::Write,
    sync::atomic::{AtomicI32, Ordering},
};
use kernel::prelude::*;

#[path = "../../lib/sysfs.rs"]
mod sysfs;

use sysfs::{Attribute, AttributeFile, KObject, ShowBuffer};

module! {
    type: HelloSysfs,
    name: "hello_sysfs",
    authors: ["rustkm"],
    description: "LKMPG hello-sysfs in Rust",
    license: "GPL",
}

/// The variable user space can change.
struct MyVariable(AtomicI32);

impl Attribute for MyVariable {
    fn show(&self, out: &mut ShowBuffer<'_>) -> Result {
        writeln!(out, "{}", self.0.load(Ordering::Relaxed)).map_err(|_| EINVAL)
    }

    fn store(&self, input: &[u8]) -> Result {
        let text = input.strip_suffix(b"\n").unwrap_or(input);
        let text = core::str::from_utf8(text).map_err(|_| EINVAL)?;
        let value = text.parse::<i32>().map_err(|_| EINVAL)?;
        self.0.store(value, Ordering::Relaxed);
        Ok(())
    }
}

struct HelloSysfs {
    _myvariable: AttributeFile<MyVariable>,
}

impl kernel::Module for HelloSysfs {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("mymodule: initialized\n");
        let mymodule = KObject::new_in_kernel(c"mymodule")?;
        let variable = KBox::pin(MyVariable(AtomicI32::new(0)), GFP_KERNEL)?;
        let file = mymodule
            .create_file(c"myvariable", 0o660, variable)
            .inspect_err(|_| {
                pr_info!("failed to create the myvariable file in /sys/kernel/mymodule\n");
            })?;
        // The file holds its own reference to the kobject: /sys/kernel/mymodule goes with it.
        Ok(HelloSysfs { _myvariable: file })
    }
}

impl Drop for HelloSysfs {
    fn drop(&mut self) {
        pr_info!("mymodule: Exit success\n");
    }
}

#[kunit_tests(hello_sysfs)]
mod tests {
    use super::*;

    #[test]
    fn store_takes_one_decimal_int() {
        let variable = MyVariable(AtomicI32::new(0));
        assert_eq!(variable.store(b"42\n"), Ok(()));
        assert_eq!(variable.0.load(Ordering::Relaxed), 42);
        assert_eq!(variable.store(b"-2147483648"), Ok(()));
        assert_eq!(variable.0.load(Ordering::Relaxed), i32::MIN);
    }

    #[test]
    fn store_refuses_the_rest_and_keeps_the_value() {
        let variable = MyVariable(AtomicI32::new(7));
        let refused: &[&[u8]] = &[b"", b"\n", b"x", b"1 2", b"42abc", b"2147483648", b"4\n\n"];
        for input in refused {
            assert_eq!(variable.store(input), Err(EINVAL));
        }
        assert_eq!(variable.0.load(Ordering::Relaxed), 7);
    }
}
