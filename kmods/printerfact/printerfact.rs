// SPDX-License-Identifier: GPL-2.0

//! /dev/printerfact: a misc device that tells a random fact about printers.
//!
//! Each open picks one fact uniformly at random (no modulo bias); reads then return that
//! fact and follow the file position, so it can be read in pieces, and a read at the end
//! returns 0. Writes are refused with `EPERM`.
//!
//! ```sh
//! $ cat /dev/printerfact
//! The first laser printer was built at Xerox PARC in 1971.
//! $ dd if=/dev/printerfact bs=5
//! ```

use kernel::{
    bindings,
    fs::{File, Kiocb},
    iov::{IovIterDest, IovIterSource},
    miscdevice::{MiscDevice, MiscDeviceRegistration},
    prelude::*,
};

#[path = "../lib/miscdev.rs"]
mod miscdev;

module! {
    type: PrinterFactModule,
    name: "printerfact",
    authors: ["rustkm"],
    description: "A misc device that returns a random printer fact",
    license: "GPL",
}

const FACTS: &[&str] = &[
    "The first laser printer was built at Xerox PARC in 1971 by Gary Starkweather.\n",
    "Printer ink can cost more per litre than vintage champagne.\n",
    "The dot matrix printer was introduced by Centronics in 1968.\n",
    "Many colour laser printers add nearly invisible yellow dots to every page they print.\n",
    "The word 'lp' in lpr, lpd and /dev/lp stands for 'line printer'.\n",
    "PostScript was created by Adobe in 1982 and is a complete programming language.\n",
    "An inkjet printhead fires droplets measured in picolitres, thousands of times a second.\n",
    "HP's LaserJet, released in 1984, printed eight pages a minute at 300 dots per inch.\n",
    "The Linux 'lp0 on fire' message dates back to the early days of Unix printer drivers.\n",
    "3D printers build objects layer by layer, an idea patented in the 1980s.\n",
    "Thermal printers, found in receipt machines, use heat-sensitive paper and no ink.\n",
    "Daisy wheel printers produced typewriter-quality text from a spinning wheel of letters.\n",
];

/// A uniformly distributed index below `bound`.
fn random_below(bound: u32) -> u32 {
    // SAFETY: `__get_random_u32_below` has no preconditions: it may be called from any
    // context with any bound, and returns an unbiased value in `0..bound` (0 when `bound`
    // is 0).
    unsafe { bindings::__get_random_u32_below(bound) }
}

#[pin_data(PinnedDrop)]
struct PrinterFactModule {
    #[pin]
    _miscdev: miscdev::Registration<PrinterFact>,
}

impl kernel::InPlaceModule for PrinterFactModule {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        pr_info!("ready, {} facts\n", FACTS.len());
        try_pin_init!(Self {
            // SAFETY: the registration is part of this module's data.
            _miscdev <- unsafe { miscdev::Registration::register(c"printerfact", module) },
        })
    }
}

/// One open file: the fact it picked.
struct PrinterFact {
    fact: &'static str,
}

#[vtable]
impl MiscDevice for PrinterFact {
    type Ptr = KBox<Self>;

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<KBox<Self>> {
        let count = u32::try_from(FACTS.len()).map_err(|_| EINVAL)?;
        let index = usize::try_from(random_below(count)).map_err(|_| EINVAL)?;
        let fact = FACTS.get(index).copied().ok_or(EINVAL)?;
        Ok(KBox::new(PrinterFact { fact }, GFP_KERNEL)?)
    }

    fn read_iter(mut kiocb: Kiocb<'_, Self::Ptr>, iov: &mut IovIterDest<'_>) -> Result<usize> {
        let fact = kiocb.file().fact;
        iov.simple_read_from_buffer(kiocb.ki_pos_mut(), fact.as_bytes())
    }

    fn write_iter(_kiocb: Kiocb<'_, Self::Ptr>, _iov: &mut IovIterSource<'_>) -> Result<usize> {
        Err(EPERM)
    }
}

#[pinned_drop]
impl PinnedDrop for PrinterFactModule {
    fn drop(self: Pin<&mut Self>) {
        pr_info!("unloaded\n");
    }
}

#[kunit_tests(printerfact)]
mod tests {
    use super::*;

    #[test]
    fn every_fact_is_one_line() {
        for fact in FACTS {
            assert!(fact.len() > 1);
            assert!(fact.ends_with('\n'));
            assert_eq!(fact.matches('\n').count(), 1);
        }
    }

    #[test]
    fn facts_are_distinct() {
        for (i, fact) in FACTS.iter().enumerate() {
            assert!(!FACTS[i + 1..].contains(fact));
        }
    }

    #[test]
    fn random_below_reaches_every_fact_and_no_further() {
        let mut seen = [false; FACTS.len()];
        let bound = FACTS.len() as u32;
        // 12 values over 2000 draws: the chance that a uniform one never shows is 1e-74.
        for _ in 0..2000 {
            let index = random_below(bound);
            assert!(index < bound);
            if let Some(slot) = seen.get_mut(index as usize) {
                *slot = true;
            }
        }
        assert!(seen.iter().all(|&hit| hit));
    }

    #[test]
    fn random_below_one_is_always_zero() {
        for _ in 0..100 {
            assert_eq!(random_below(1), 0);
        }
    }
}
