// SPDX-License-Identifier: GPL-2.0

//! /proc/sys/example/atom: a boolean sysctl, strict about what it accepts.
//!
//! Reads give "0\n" or "1\n". Writes accept exactly "0" or "1", with or without one trailing
//! newline, in a single write; anything else ("2", "-1", "01", " 1", "true", an empty write,
//! a huge one) fails with `EINVAL` and keeps the old value. (The kernel's own `proc_dobool`
//! would take several of those.)
//!
//! ```sh
//! $ echo 1 > /proc/sys/example/atom
//! $ cat /proc/sys/example/atom
//! 1
//! ```

use core::sync::atomic::{AtomicBool, Ordering};
use kernel::prelude::*;

#[path = "../lib/sysctl.rs"]
mod sysctl;

use sysctl::{entry, Registration, SysctlFile, SysctlTable};

module! {
    type: SysctlAtom,
    name: "sysctl_atom",
    authors: ["rustkm"],
    description: "A boolean at /proc/sys/example/atom",
    license: "GPL",
}

/// The value behind the file.
struct Atom(AtomicBool);

impl SysctlFile for Atom {
    fn show(&self, out: &mut [u8]) -> usize {
        let text: &[u8] = if self.0.load(Ordering::Relaxed) {
            b"1\n"
        } else {
            b"0\n"
        };
        let count = text.len().min(out.len());
        out[..count].copy_from_slice(&text[..count]);
        count
    }

    fn store(&self, input: &[u8]) -> Result {
        let value = match input {
            b"0" | b"0\n" => false,
            b"1" | b"1\n" => true,
            _ => return Err(EINVAL),
        };
        self.0.store(value, Ordering::Relaxed);
        Ok(())
    }
}

static ATOM: Atom = Atom(AtomicBool::new(false));
static TABLE: SysctlTable<1> = SysctlTable::new([entry(c"atom", 0o644, &ATOM)]);

struct SysctlAtom {
    _registration: Registration,
}

impl kernel::Module for SysctlAtom {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let registration = Registration::register(c"example", &TABLE)?;
        pr_info!("/proc/sys/example/atom ready\n");
        Ok(SysctlAtom {
            _registration: registration,
        })
    }
}

impl Drop for SysctlAtom {
    fn drop(&mut self) {
        pr_info!("unloaded\n");
    }
}
