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
        self.0.store(parse_strict_bool(input)?, Ordering::Relaxed);
        Ok(())
    }
}

/// "0" or "1", with or without one trailing newline; anything else is `EINVAL`.
fn parse_strict_bool(input: &[u8]) -> Result<bool> {
    match input {
        b"0" | b"0\n" => Ok(false),
        b"1" | b"1\n" => Ok(true),
        _ => Err(EINVAL),
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

#[kunit_tests(sysctl_atom)]
mod tests {
    use super::*;

    #[test]
    fn accepts_0_and_1_with_one_optional_newline() {
        assert_eq!(parse_strict_bool(b"0"), Ok(false));
        assert_eq!(parse_strict_bool(b"0\n"), Ok(false));
        assert_eq!(parse_strict_bool(b"1"), Ok(true));
        assert_eq!(parse_strict_bool(b"1\n"), Ok(true));
    }

    #[test]
    fn refuses_everything_else() {
        let refused: &[&[u8]] = &[
            b"", b"\n", b"2", b"-1", b"01", b" 1", b"1 ", b"1\n\n", b"true", b"\x001",
        ];
        for input in refused {
            assert_eq!(parse_strict_bool(input), Err(EINVAL));
        }
    }

    #[test]
    fn shows_the_value_with_a_newline() {
        let mut out = [0u8; 4];
        let atom = Atom(AtomicBool::new(true));
        assert_eq!(atom.show(&mut out), 2);
        assert_eq!(&out[..2], b"1\n");
        atom.0.store(false, Ordering::Relaxed);
        assert_eq!(atom.show(&mut out), 2);
        assert_eq!(&out[..2], b"0\n");
    }

    #[test]
    fn shows_what_fits_in_a_short_buffer() {
        let mut out = [0u8; 1];
        assert_eq!(Atom(AtomicBool::new(true)).show(&mut out), 1);
        assert_eq!(out[0], b'1');
    }
}
