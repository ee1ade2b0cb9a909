// SPDX-License-Identifier: GPL-2.0

//! KUnit suites for the pure logic of kmods/lib: the sysctl and procfs reads at a position, the
//! LKMPG race examples' parser and printer, and the module-parameter helpers that run at build
//! time.
//!
//! kmods/lib is compiled into many modules, and a KUnit suite name may be registered only
//! once: a suite in a lib file would be registered by every module including it. Loading this
//! module does nothing else.

use kernel::prelude::*;

#[allow(dead_code)]
#[path = "../lib/sysctl.rs"]
mod sysctl;

#[allow(dead_code)]
#[path = "../lib/race.rs"]
mod race;

#[path = "../lib/span.rs"]
mod span;

#[allow(dead_code, unused_macros, unused_imports)]
#[path = "../lib/params.rs"]
mod params;

module! {
    type: LibKunit,
    name: "lib_kunit",
    authors: ["rustkm"],
    description: "KUnit suites for kmods/lib",
    license: "GPL",
}

struct LibKunit;

impl kernel::Module for LibKunit {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(LibKunit)
    }
}

#[kunit_tests(rustkm_lib)]
mod tests {
    use super::{params, race, span, sysctl};
    use kernel::prelude::*;

    #[test]
    fn procfs_reads_take_what_fits_from_the_position() {
        assert_eq!(span::read_range(6, 0, 3), Ok(0..3));
        assert_eq!(span::read_range(6, 3, 3), Ok(3..6));
        assert_eq!(span::read_range(6, 4, 100), Ok(4..6));
        assert_eq!(span::read_range(6, 1, usize::MAX), Ok(1..6));
        assert_eq!(span::read_range(6, 2, 0), Ok(2..2));
    }

    #[test]
    fn procfs_reads_at_or_past_the_end_are_empty_and_negative_ones_refused() {
        assert_eq!(span::read_range(6, 6, 3), Ok(6..6));
        assert_eq!(span::read_range(6, 1 << 40, 3), Ok(6..6));
        assert_eq!(span::read_range(6, i64::MAX, 3), Ok(6..6));
        assert_eq!(span::read_range(0, 0, 3), Ok(0..0));
        assert_eq!(span::read_range(6, -1, 3), Err(EINVAL));
        assert_eq!(span::read_range(6, i64::MIN, 3), Err(EINVAL));
    }

    #[test]
    fn sysctl_read_at_follows_the_position() {
        let mut out = [0u8; 3];
        let mut pos = 0;
        assert_eq!(sysctl::read_at(b"hello\n", &mut pos, &mut out), 3);
        assert_eq!(&out, b"hel");
        assert_eq!(pos, 3);
        assert_eq!(sysctl::read_at(b"hello\n", &mut pos, &mut out), 3);
        assert_eq!(&out, b"lo\n");
        assert_eq!(sysctl::read_at(b"hello\n", &mut pos, &mut out), 0);
        assert_eq!(pos, 6);
    }

    #[test]
    fn sysctl_read_at_a_bad_position_reads_nothing() {
        let mut out = [0u8; 4];
        let mut pos = -1;
        assert_eq!(sysctl::read_at(b"abc", &mut pos, &mut out), 0);
        pos = 100;
        assert_eq!(sysctl::read_at(b"abc", &mut pos, &mut out), 0);
        assert_eq!(pos, 100);
    }

    #[test]
    fn race_parse_times_takes_a_decimal_and_one_newline() {
        assert_eq!(race::parse_times(b"0"), Ok(0));
        assert_eq!(race::parse_times(b"42\n"), Ok(42));
        assert_eq!(race::parse_times(b"10000000"), Ok(10_000_000));
    }

    #[test]
    fn race_parse_times_refuses_the_rest() {
        let refused: &[&[u8]] = &[
            b"",
            b"\n",
            b"-1",
            b"1 ",
            b"1\n\n",
            b"0x10",
            b"10000001",
            b"123456789",
        ];
        for input in refused {
            assert_eq!(race::parse_times(input), Err(EINVAL));
        }
    }

    #[test]
    fn race_show_u64_prints_decimal_and_a_newline() {
        let mut out = [0u8; 24];
        assert_eq!(race::show_u64(0, &mut out), 2);
        assert_eq!(&out[..2], b"0\n");
        assert_eq!(race::show_u64(u64::MAX, &mut out), 21);
        assert_eq!(&out[..21], b"18446744073709551615\n");
        let mut short = [0u8; 3];
        assert_eq!(race::show_u64(12345, &mut short), 3);
        assert_eq!(&short, b"12\n");
    }

    #[test]
    fn params_modinfo_joins_the_parts_nul_terminated() {
        const PARTS: &[&[u8]] = &[b"parm=", b"count", b":", b"How many"];
        assert_eq!(params::modinfo_len(PARTS), 20);
        let joined: [u8; 20] = params::modinfo(PARTS);
        assert_eq!(&joined, b"parm=count:How many\0");
    }

    #[test]
    fn params_checked_perm_keeps_a_valid_permission() {
        assert_eq!(params::checked_perm(0o644), 0o644);
        assert_eq!(params::checked_perm(0o444), 0o444);
        assert_eq!(params::checked_perm(0), 0);
    }
}
