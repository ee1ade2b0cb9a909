// SPDX-License-Identifier: GPL-2.0

//! LKMPG vkbd in Rust: a virtual keyboard, a device type of vinput.
//!
//! After `echo vkbd > /sys/class/vinput/export`, writing `+N` or `N` to /dev/vinputX presses
//! key code N, `-N` releases it; the input device reports it (evdev: /dev/input/eventY) and a
//! read gives the last event back (`+N` or `-N`). Anything else, and codes outside
//! 1..KEY_MAX, get EINVAL (the original logged a kstrtol error and reported key 0).

use kernel::{prelude::*, str::CStr};

#[path = "../../lib/input.rs"]
mod input;
mod vinput_api;

use input::{Events, Setup, KEY_MAX};
use vinput_api::{Registration, Vinput, VinputDevice, VinputType, VINPUT_MAX_LEN};

module! {
    type: VkbdModule,
    name: "vkbd",
    authors: ["rustkm"],
    description: "Emulate keyboard input events through /dev/vinput",
    license: "GPL",
}

struct Vkbd;

/// A key event written as `+N`, `N` (press) or `-N` (release), with an optional newline.
fn parse(text: &[u8]) -> Result<i64> {
    let text = text.strip_suffix(b"\n").unwrap_or(text);
    let entry = core::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse::<i64>().ok())
        .ok_or(EINVAL)?;
    match entry.unsigned_abs() {
        1..KEY_MAX_U64 => Ok(entry),
        _ => Err(EINVAL),
    }
}

/// Key codes 1..KEY_MAX are real keys (0 is KEY_RESERVED).
const KEY_MAX_U64: u64 = KEY_MAX as u64;

impl VinputType for Vkbd {
    const NAME: &'static CStr = c"vkbd";

    fn init(setup: &mut Setup<'_>) -> Result {
        setup.set_autorepeat();
        for code in 1..KEY_MAX {
            setup.set_key(code)?;
        }
        Ok(())
    }

    fn send(vinput: &Vinput, events: Events<'_>, text: &[u8]) -> Result<usize> {
        let entry = parse(text).inspect_err(|_| {
            pr_err!("vinput{}: not a key event (+N, N or -N)\n", vinput.id());
        })?;
        vinput.set_last_entry(entry);
        let pressed = entry > 0;
        let code = entry.unsigned_abs() as u32; // below KEY_MAX (parse)
        pr_info!(
            "vinput{}: Event {} code {}\n",
            vinput.id(),
            if pressed {
                "VINPUT_PRESS"
            } else {
                "VINPUT_RELEASE"
            },
            code
        );
        // Report the state received to the input subsystem, then say the report is done.
        events.report_key(code, pressed);
        events.sync();
        Ok(text.len())
    }

    fn read(vinput: &Vinput, out: &mut [u8; VINPUT_MAX_LEN]) -> usize {
        let mut text = Cursor { out, len: 0 };
        // "%+ld\n": at most 21 bytes, which always fit.
        let _ = core::fmt::Write::write_fmt(&mut text, format_args!("{:+}\n", vinput.last_entry()));
        text.len
    }
}

/// Formats into a fixed buffer, cutting what does not fit.
struct Cursor<'a> {
    out: &'a mut [u8; VINPUT_MAX_LEN],
    len: usize,
}

impl core::fmt::Write for Cursor<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let free = &mut self.out[self.len..];
        let count = s.len().min(free.len());
        free[..count].copy_from_slice(&s.as_bytes()[..count]);
        self.len += count;
        Ok(())
    }
}

static VKBD: VinputDevice = VinputDevice::new::<Vkbd>();

struct VkbdModule {
    _registration: Registration,
}

impl kernel::Module for VkbdModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(Self {
            _registration: Registration::register(&VKBD)?,
        })
    }
}

#[kunit_tests(vkbd)]
mod tests {
    use super::*;

    #[test]
    fn parse_reads_presses_and_releases() {
        assert_eq!(parse(b"30"), Ok(30));
        assert_eq!(parse(b"+30\n"), Ok(30));
        assert_eq!(parse(b"-30"), Ok(-30));
        assert_eq!(parse(b"1"), Ok(1));
    }

    #[test]
    fn parse_takes_key_codes_below_key_max_only() {
        assert_eq!(KEY_MAX, 0x2ff);
        assert_eq!(parse(b"766"), Ok(766));
        assert_eq!(parse(b"-766"), Ok(-766));
        assert_eq!(parse(b"767"), Err(EINVAL));
        assert_eq!(parse(b"-767"), Err(EINVAL));
    }

    #[test]
    fn parse_refuses_the_rest() {
        let refused: &[&[u8]] = &[b"", b"\n", b"0", b"-0", b"abc", b"3 0", b"30\n\n", b"0x1e"];
        for text in refused {
            assert_eq!(parse(text), Err(EINVAL));
        }
    }
}
