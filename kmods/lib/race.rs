// SPDX-License-Identifier: GPL-2.0

//! Shared by the LKMPG concurrency examples: a count whose increment is a deliberate
//! read-modify-write window, and a sysctl file that hammers it from user space.
//!
//! Writing `N` to the file increments the count N times; reading shows it. Loads and stores are
//! atomic, so an unprotected increment loses updates on another CPU's interleaving without
//! undefined behaviour; the examples show that their lock (or `fetch_add`) prevents it.

use core::sync::atomic::{AtomicU64, Ordering};
use kernel::prelude::*;

// The crate includes kmods/lib/sysctl.rs as `mod sysctl` too.
use crate::sysctl::SysctlFile;

/// How one example protects an increment (a mutex, a spinlock, an atomic operation).
pub(crate) trait Increment: Sync + 'static {
    /// Increments `count` once, protected when `protect` (the module parameter) says so.
    fn increment(&self, count: &RacyCount, protect: bool);
    /// The module parameter that turns protection off.
    fn protect(&self) -> bool;
}

/// The sysctl file: a write of N makes N increments, a read shows the count.
pub(crate) struct Hammer<I: Increment> {
    count: RacyCount,
    how: I,
}

impl<I: Increment> Hammer<I> {
    pub(crate) const fn new(how: I) -> Self {
        Self {
            count: RacyCount::new(),
            how,
        }
    }
}

impl<I: Increment> SysctlFile for Hammer<I> {
    fn show(&self, out: &mut [u8]) -> usize {
        show_u64(self.count.get(), out)
    }

    fn store(&self, input: &[u8]) -> Result {
        let protect = self.how.protect();
        for _ in 0..parse_times(input)? {
            self.how.increment(&self.count, protect);
        }
        Ok(())
    }
}

/// The most increments one write may ask for.
const MAX_TIMES: u64 = 10_000_000;

/// A counter with an explicit window between reading and writing it back.
pub(crate) struct RacyCount(AtomicU64);

impl RacyCount {
    pub(crate) const fn new() -> Self {
        Self(AtomicU64::new(0))
    }

    /// Read, pause, write back one more: loses updates unless callers exclude each other.
    pub(crate) fn increment_in_window(&self) {
        let value = self.0.load(Ordering::Relaxed);
        for _ in 0..64 {
            core::hint::spin_loop();
        }
        self.0.store(value.wrapping_add(1), Ordering::Relaxed);
    }

    /// One indivisible increment.
    // Each example includes this file; only example_atomic uses this one.
    #[allow(dead_code)]
    pub(crate) fn increment_atomically(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// How many increments a write asks for: a decimal number, one optional trailing newline.
pub(crate) fn parse_times(input: &[u8]) -> Result<u64> {
    let digits = input.strip_suffix(b"\n").unwrap_or(input);
    if digits.is_empty() || digits.len() > 8 {
        return Err(EINVAL);
    }
    let mut times: u64 = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return Err(EINVAL);
        }
        times = times * 10 + u64::from(digit - b'0');
    }
    if times > MAX_TIMES {
        return Err(EINVAL);
    }
    Ok(times)
}

/// Writes `value` and a newline in decimal into `out`; returns the length.
pub(crate) fn show_u64(value: u64, out: &mut [u8]) -> usize {
    let mut digits = [0u8; 20];
    let mut rest = value;
    let mut count = 0;
    loop {
        digits[count] = b'0' + (rest % 10) as u8;
        count += 1;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let len = (count + 1).min(out.len());
    for (i, slot) in out.iter_mut().take(len.saturating_sub(1)).enumerate() {
        *slot = digits[count - 1 - i];
    }
    if let Some(last) = out.get_mut(len.saturating_sub(1)) {
        *last = b'\n';
    }
    len
}
