// SPDX-License-Identifier: GPL-2.0

//! LKMPG hello-debugfs in Rust: /sys/kernel/debug/lkmpg_debugfs/debug_value (a u32, "42") and
//! debug_enabled (a bool, "Y"/"N"), both 0600 and backed by the module parameters of the same
//! names (0600 too, in /sys/module/hello_debugfs/parameters): a write on either side shows on
//! the other.
//!
//! The files are made with `kmods/lib/debugfs.rs`, not 7.2's `kernel::debugfs` (whose files do
//! not hold the module while open: closing one after rmmod oopses). Writes parse as the C
//! helpers do, except
//! that debug_value takes decimal only (the original's `kstrtoull(, 0)` also takes 0x and 0
//! prefixes) and refuses values past u32 instead of truncating them: EINVAL, value unchanged.

use kernel::{
    fmt,
    fs::file,
    prelude::*,
    str::CString,
    uaccess::{UserSliceReader, UserSliceWriter},
};

#[path = "../../lib/debugfs.rs"]
mod debugfs;
#[path = "../../lib/params.rs"]
mod params;

use debugfs::{DebugfsFile, Dir};
use params::Param;

module! {
    type: HelloDebugfs,
    name: "hello_debugfs",
    authors: ["rustkm"],
    description: "Export simple values through debugfs",
    license: "GPL",
}

params::module_param!(
    debug_value: u32 = 42,
    perm: 0o600,
    desc: "Value exported through both sysfs and debugfs",
);
params::module_param!(
    debug_enabled: bool = true,
    perm: 0o600,
    desc: "Enable or disable the example flag",
);

/// The longest write taken: a u32 in decimal, a newline and some slack.
const MAX_WRITE: usize = 16;

/// Reads a whole short write (longer ones are refused) into `buf`; returns what was written.
fn read_text<'a>(input: &mut UserSliceReader, buf: &'a mut [u8; MAX_WRITE]) -> Result<&'a [u8]> {
    let target = buf.get_mut(..input.len()).ok_or(EINVAL)?;
    input.read_slice(target)?;
    Ok(target)
}

/// A value shown as text: "42\n" or "Y\n", as `simple_read_from_buffer()` on it.
fn show(
    out: &mut UserSliceWriter,
    pos: &mut file::Offset,
    args: fmt::Arguments<'_>,
) -> Result<usize> {
    let text = CString::try_from_fmt(args)?;
    out.write_slice_file(text.to_bytes(), pos)
}

/// debugfs_create_u32(): the value in decimal.
struct ValueFile(&'static Param<u32>);

impl DebugfsFile for ValueFile {
    fn read(&self, out: &mut UserSliceWriter, pos: &mut file::Offset) -> Result<usize> {
        show(out, pos, fmt!("{}\n", self.0.get()))
    }

    fn write(&self, input: &mut UserSliceReader, _pos: &mut file::Offset) -> Result<usize> {
        let count = input.len();
        let mut buf = [0u8; MAX_WRITE];
        let text = read_text(input, &mut buf)?;
        let text = text.strip_suffix(b"\n").unwrap_or(text);
        let number = core::str::from_utf8(text).map_err(|_| EINVAL)?;
        self.0.set(number.parse::<u32>().map_err(|_| EINVAL)?);
        Ok(count)
    }
}

/// C's `kstrtobool()`: y/Y/t/T/1 or on, n/N/f/F/0 or off; only the first characters count.
fn parse_bool(text: &[u8]) -> Result<bool> {
    match text {
        [b'y' | b'Y' | b't' | b'T' | b'1', ..] => Ok(true),
        [b'n' | b'N' | b'f' | b'F' | b'0', ..] => Ok(false),
        [b'o' | b'O', b'n' | b'N', ..] => Ok(true),
        [b'o' | b'O', b'f' | b'F', ..] => Ok(false),
        _ => Err(EINVAL),
    }
}

/// debugfs_create_bool(): "Y" or "N".
struct EnabledFile(&'static Param<bool>);

impl DebugfsFile for EnabledFile {
    fn read(&self, out: &mut UserSliceWriter, pos: &mut file::Offset) -> Result<usize> {
        show(out, pos, fmt!("{}\n", if self.0.get() { 'Y' } else { 'N' }))
    }

    fn write(&self, input: &mut UserSliceReader, _pos: &mut file::Offset) -> Result<usize> {
        let count = input.len();
        let mut buf = [0u8; MAX_WRITE];
        self.0.set(parse_bool(read_text(input, &mut buf)?)?);
        Ok(count)
    }
}

struct HelloDebugfs {
    _dir: Dir,
}

impl kernel::Module for HelloDebugfs {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let mut dir = Dir::new(c"lkmpg_debugfs")?;
        let value = KBox::pin(ValueFile(&debug_value), GFP_KERNEL)?;
        dir.add_file(c"debug_value", 0o600, value)?;
        let enabled = KBox::pin(EnabledFile(&debug_enabled), GFP_KERNEL)?;
        dir.add_file(c"debug_enabled", 0o600, enabled)?;
        pr_info!("debugfs interface registered under /sys/kernel/debug/lkmpg_debugfs\n");
        Ok(HelloDebugfs { _dir: dir })
    }
}

impl Drop for HelloDebugfs {
    fn drop(&mut self) {
        pr_info!("debugfs example removed\n");
    }
}

#[kunit_tests(hello_debugfs)]
mod tests {
    use super::*;

    #[test]
    fn parse_bool_reads_what_kstrtobool_reads() {
        let yes: &[&[u8]] = &[
            b"y", b"Y\n", b"t", b"T", b"1", b"on", b"ON", b"yes", b"true",
        ];
        for text in yes {
            assert_eq!(parse_bool(text), Ok(true));
        }
        let no: &[&[u8]] = &[
            b"n", b"N\n", b"f", b"F", b"0", b"off", b"OFF", b"no", b"false",
        ];
        for text in no {
            assert_eq!(parse_bool(text), Ok(false));
        }
    }

    #[test]
    fn parse_bool_refuses_the_rest() {
        let refused: &[&[u8]] = &[b"", b"\n", b"2", b"o", b"ox", b" y", b"-1", b"maybe"];
        for text in refused {
            assert_eq!(parse_bool(text), Err(EINVAL));
        }
    }
}
