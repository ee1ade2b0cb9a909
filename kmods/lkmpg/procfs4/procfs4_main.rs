// SPDX-License-Identifier: GPL-2.0

//! LKMPG procfs4 in Rust: /proc/iter, read through seq_file, counts its readers. As in the
//! original, each `cat /proc/iter` prints the next number: 0, then 1, then 2.
//!
//! The walk is an iterator over records (kmods/lib/seqfile.rs): each open file takes the next
//! `records` numbers of the counter (1 by default, as in the original) and shows one per line.
//! Beyond the original: what an open file shows is fixed at its open, so short reads (`dd
//! bs=1`), seeks and rereads within it agree with one large read (the original advanced its
//! counter inside the walk, so a seek or a retried record could skip or repeat numbers), and
//! concurrent readers never get the same number.

use core::sync::atomic::{AtomicU64, Ordering};
use kernel::{prelude::*, seq_file::SeqFile, seq_print};

#[path = "../../lib/params.rs"]
mod params;
#[path = "../../lib/seqfile.rs"]
mod seqfile;

use seqfile::{Records, Registration};

module! {
    type: Procfs4,
    name: "procfs4",
    authors: ["rustkm"],
    description: "LKMPG procfs4 in Rust: a /proc file read through seq_file",
    license: "GPL",
}

params::module_param!(records: u32 = 1, perm: 0o444,
                      desc: "Numbers each open of /proc/iter shows (1 to 100000)");

const MAX_RECORDS: u32 = 100_000;

/// The counter the opens take numbers from.
struct Counter {
    next: AtomicU64,
    per_open: u64,
}

/// The numbers one open file shows: `first` and the `count - 1` after it.
struct Numbers {
    first: u64,
    count: u64,
}

impl Records for Counter {
    type View = Numbers;

    fn open(&self) -> Result<Numbers> {
        Ok(Numbers {
            first: self.next.fetch_add(self.per_open, Ordering::Relaxed),
            count: self.per_open,
        })
    }

    fn has(&self, view: &Numbers, index: u64) -> bool {
        index < view.count
    }

    fn show(&self, view: &Numbers, index: u64, out: &SeqFile) -> Result {
        seq_print!(out, "{}\n", view.first.wrapping_add(index));
        Ok(())
    }
}

struct Procfs4 {
    _iter: Registration<Counter>,
}

impl kernel::Module for Procfs4 {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let per_open = records.get();
        if !(1..=MAX_RECORDS).contains(&per_open) {
            pr_err!("records={per_open} is out of range (1 to {MAX_RECORDS})\n");
            return Err(EINVAL);
        }
        let counter = KBox::pin(
            Counter {
                next: AtomicU64::new(0),
                per_open: per_open.into(),
            },
            GFP_KERNEL,
        )?;
        let iter = Registration::register(c"iter", 0o444, counter)?;
        pr_info!("/proc/iter created: {per_open} record(s) per open\n");
        Ok(Procfs4 { _iter: iter })
    }
}

impl Drop for Procfs4 {
    fn drop(&mut self) {
        pr_info!("/proc/iter removed\n");
    }
}

#[kunit_tests(procfs4)]
mod tests {
    use super::*;

    fn counter(next: u64, per_open: u64) -> Counter {
        Counter {
            next: AtomicU64::new(next),
            per_open,
        }
    }

    #[test]
    fn each_open_takes_the_next_numbers() -> Result {
        let counter = counter(0, 3);
        let first = counter.open()?;
        let second = counter.open()?;
        assert_eq!((first.first, first.count), (0, 3));
        assert_eq!((second.first, second.count), (3, 3));
        assert_eq!(counter.next.load(Ordering::Relaxed), 6);
        Ok(())
    }

    #[test]
    fn a_view_has_exactly_its_records() -> Result {
        let counter = counter(41, 2);
        let view = counter.open()?;
        assert!(counter.has(&view, 0));
        assert!(counter.has(&view, 1));
        assert!(!counter.has(&view, 2));
        assert!(!counter.has(&view, u64::MAX));
        Ok(())
    }

    #[test]
    fn a_view_is_fixed_at_its_open() -> Result {
        // What one open shows does not move when others open meanwhile: its rereads and
        // seeks agree with one large read.
        let counter = counter(0, 1);
        let view = counter.open()?;
        for _ in 0..5 {
            counter.open()?;
        }
        assert_eq!((view.first, view.count), (0, 1));
        assert!(counter.has(&view, 0) && !counter.has(&view, 1));
        Ok(())
    }

    #[test]
    fn the_counter_wraps_instead_of_overflowing() -> Result {
        let counter = counter(u64::MAX, 1);
        let last = counter.open()?;
        let next = counter.open()?;
        assert_eq!((last.first, next.first), (u64::MAX, 0));
        assert_eq!(last.first.wrapping_add(1), next.first);
        Ok(())
    }
}
