// SPDX-License-Identifier: GPL-2.0

//! LKMPG example_rwlock in Rust: a static reader-writer lock, read-locked and then
//! write-locked at load as in the original, and a demonstration of what it protects.
//!
//! Two values are kept equal by every writer: `echo N > /proc/sys/lkmpg/example_rwlock` makes
//! N writes (each one increments the first value, pauses, and copies it to the second) under
//! the write lock, and reading the file shows the count. `echo N >
//! /proc/sys/lkmpg/example_rwlock_readers` makes N reads under the read lock, each comparing
//! the two values; reading that file shows how many reads saw them differ (torn) and the most
//! readers that held the lock at once. With `use_lock=0` the lock is left out: concurrent
//! writers on two CPUs lose updates and readers see torn values.
//!
//! The original uses the `_irqsave` variants; nothing here runs in interrupt context, so the
//! plain `read_lock`/`write_lock` of `kmods/lib/rwlock.rs` are the faithful choice.

use core::sync::atomic::{AtomicU64, Ordering};
use kernel::{prelude::*, static_lock_class};

#[path = "../../lib/compat.rs"]
mod compat;
// Only its parser and printer are used here, not its `Hammer`.
#[allow(dead_code)]
#[path = "../../lib/race.rs"]
mod race;
#[path = "../../lib/rwlock.rs"]
mod rwlock;
#[path = "../../lib/sysctl.rs"]
mod sysctl;

use race::{parse_times, show_u64};
use rwlock::RwLock;
use sysctl::{entry, Registration, SysctlFile, SysctlTable, SHOW_MAX};

module! {
    type: ExampleRwlock,
    name: "example_rwlock",
    authors: ["rustkm"],
    description: "Read/Write locks example",
    license: "GPL",
    params: {
        use_lock: i32 {
            default: 1,
            description: "1: reads and writes take the rwlock; 0: they race",
        },
    },
}

// SAFETY: initialised in `init` before anything locks it.
static MYRWLOCK: RwLock<()> = unsafe { RwLock::new_static(()) };

fn use_lock() -> bool {
    compat::param(&module_parameters::use_lock) != 0
}

/// A pause inside a critical section, wide enough for another CPU to interleave.
fn window() {
    for _ in 0..64 {
        core::hint::spin_loop();
    }
}

/// The shared state: writers keep `first == second` (outside a write).
struct Shared {
    first: AtomicU64,
    second: AtomicU64,
    /// Reads that saw `first != second`.
    torn: AtomicU64,
    /// Readers inside the read side now, and the most seen at once.
    readers: AtomicU64,
    most_readers: AtomicU64,
}

static SHARED: Shared = Shared {
    first: AtomicU64::new(0),
    second: AtomicU64::new(0),
    torn: AtomicU64::new(0),
    readers: AtomicU64::new(0),
    most_readers: AtomicU64::new(0),
};

impl Shared {
    /// Read the first value, pause, write one more to both: loses updates unless writers
    /// exclude each other, and shows readers a difference unless they exclude writers.
    fn write_once(&self) {
        let value = self.first.load(Ordering::Relaxed).wrapping_add(1);
        window();
        self.first.store(value, Ordering::Relaxed);
        window();
        self.second.store(value, Ordering::Relaxed);
    }

    /// Read both values with a pause between them; count a read that saw them differ.
    fn read_once(&self) {
        let inside = self.readers.fetch_add(1, Ordering::Relaxed) + 1;
        self.most_readers.fetch_max(inside, Ordering::Relaxed);
        let first = self.first.load(Ordering::Relaxed);
        window();
        let second = self.second.load(Ordering::Relaxed);
        if first != second {
            self.torn.fetch_add(1, Ordering::Relaxed);
        }
        self.readers.fetch_sub(1, Ordering::Relaxed);
    }
}

/// /proc/sys/lkmpg/example_rwlock: a write of N makes N writes, a read shows the count.
struct Writers;

impl SysctlFile for Writers {
    fn show(&self, out: &mut [u8]) -> usize {
        let _guard = use_lock().then(|| MYRWLOCK.read());
        show_u64(SHARED.first.load(Ordering::Relaxed), out)
    }

    fn store(&self, input: &[u8]) -> Result {
        let locked = use_lock();
        for _ in 0..parse_times(input)? {
            let _guard = locked.then(|| MYRWLOCK.write());
            SHARED.write_once();
        }
        Ok(())
    }
}

/// /proc/sys/lkmpg/example_rwlock_readers: a write of N makes N reads; a read shows
/// "TORN MOST_READERS".
struct Readers;

impl SysctlFile for Readers {
    fn show(&self, out: &mut [u8]) -> usize {
        let mut text = [0u8; SHOW_MAX];
        let torn_len = show_u64(SHARED.torn.load(Ordering::Relaxed), &mut text);
        // `show_u64` ends with a newline; a space separates the two numbers.
        let Some(last) = torn_len.checked_sub(1) else {
            return 0;
        };
        text[last] = b' ';
        let Some(rest) = text.get_mut(torn_len..) else {
            return 0;
        };
        let len = torn_len + show_u64(SHARED.most_readers.load(Ordering::Relaxed), rest);
        let shown = len.min(out.len());
        out[..shown].copy_from_slice(&text[..shown]);
        shown
    }

    fn store(&self, input: &[u8]) -> Result {
        let locked = use_lock();
        for _ in 0..parse_times(input)? {
            let _guard = locked.then(|| MYRWLOCK.read());
            SHARED.read_once();
        }
        Ok(())
    }
}

static WRITERS: Writers = Writers;
static READERS: Readers = Readers;
static TABLE: SysctlTable<2> = SysctlTable::new([
    entry(c"example_rwlock", 0o644, &WRITERS),
    entry(c"example_rwlock_readers", 0o644, &READERS),
]);

struct ExampleRwlock {
    _sysctl: Registration,
}

fn example_read_lock() {
    {
        let _guard = MYRWLOCK.read();
        pr_info!("Read Locked\n");
        // Read from something.
    }
    pr_info!("Read Unlocked\n");
}

fn example_write_lock() {
    {
        let _guard = MYRWLOCK.write();
        pr_info!("Write Locked\n");
        // Write to something.
    }
    pr_info!("Write Unlocked\n");
}

impl kernel::Module for ExampleRwlock {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        // SAFETY: called once, before anything locks it (the sysctl files do not exist yet).
        unsafe { MYRWLOCK.init_static(c"myrwlock", static_lock_class!()) };
        pr_info!("example_rwlock started\n");
        example_read_lock();
        example_write_lock();
        Ok(ExampleRwlock {
            _sysctl: Registration::register(c"lkmpg", &TABLE)?,
        })
    }
}

impl Drop for ExampleRwlock {
    fn drop(&mut self) {
        pr_info!("example_rwlock exit\n");
    }
}
