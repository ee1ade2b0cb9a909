// SPDX-License-Identifier: GPL-2.0

//! An I2C client driver for 256-byte SMBus EEPROMs, such as the eight QEMU's `pc` machine puts
//! on the PIIX4 SMBus at 0x50-0x57 (hw/i2c/smbus_eeprom.c; 24C02-like: byte reads and writes
//! at an 8-bit offset).
//!
//! There is no ACPI or devicetree in the guest: a device is instantiated from user space,
//! `echo eeprom_smbus 0x50 > /sys/bus/i2c/devices/i2c-0/new_device`, and removed with
//! `delete_device`. A bound device gets a binary sysfs file `eeprom` (256 bytes; read and
//! write at any offset, sysfs cuts at the end) on its I2C client device. Probe reads byte 0:
//! an address where no device answers is refused (`ENXIO`), so a typo does not bind.
//!
//! 7.2's Rust I2C abstraction binds drivers to clients but has no transfers: the SMBus byte
//! transfers are the kernel's exported `i2c_smbus_{read,write}_byte_data` from the bindings.
//! It has no sysfs attributes either: `kmods/lib/bin_attr.rs` with its C half provides the
//! file. (A temperature sensor such as QEMU's `tmp105` would go through hwmon; this kernel has
//! no CONFIG_HWMON and Debian's x86 QEMU has no tmp105: see kmods/drivers/README.md.)

use kernel::{
    bindings,
    device::Core,
    i2c, new_mutex,
    prelude::*,
    sync::{aref::ARef, Mutex},
};

#[path = "../../lib/bin_attr.rs"]
mod bin_attr;
#[path = "../../lib/compat.rs"]
mod compat;

use bin_attr::{BinaryFile, DeviceBinFile};

/// The size of a 24C02-like EEPROM; offsets are one byte.
const SIZE: usize = 256;

kernel::module_i2c_driver! {
    type: EepromDriver,
    name: "eeprom_smbus",
    authors: ["rustkm"],
    description: "256-byte SMBus EEPROMs (QEMU's smbus-eeprom) with a binary sysfs file",
    license: "GPL",
}

/// A bound EEPROM: the client to talk to, and a lock so that a multi-byte read or write is
/// not interleaved with another.
#[pin_data]
struct Eeprom {
    client: ARef<i2c::I2cClient>,
    #[pin]
    lock: Mutex<()>,
}

impl Eeprom {
    fn raw(&self) -> *const bindings::i2c_client {
        // `I2cClient` is a `#[repr(transparent)]` wrapper of `struct i2c_client`.
        core::ptr::from_ref(&*self.client).cast()
    }

    fn read_byte(&self, offset: u8) -> Result<u8> {
        // SAFETY: the client is alive (we hold a reference) and bound to this driver while
        // its sysfs file, the only caller, exists.
        let value = unsafe { bindings::i2c_smbus_read_byte_data(self.raw(), offset) };
        if value < 0 {
            return Err(Error::from_errno(value));
        }
        u8::try_from(value).map_err(|_| EIO)
    }

    fn write_byte(&self, offset: u8, value: u8) -> Result {
        // SAFETY: as in `read_byte`.
        let status = unsafe { bindings::i2c_smbus_write_byte_data(self.raw(), offset, value) };
        if status < 0 {
            return Err(Error::from_errno(status));
        }
        Ok(())
    }
}

/// Byte offsets `offset..offset + len`, refused if they leave the EEPROM.
fn offsets(offset: usize, len: usize) -> Result<impl Iterator<Item = u8>> {
    let end = offset.checked_add(len).ok_or(EINVAL)?;
    if end > SIZE {
        return Err(EINVAL);
    }
    Ok((offset..end).filter_map(|at| u8::try_from(at).ok()))
}

impl BinaryFile for Eeprom {
    fn read(&self, offset: usize, out: &mut [u8]) -> Result<usize> {
        let _guard = self.lock.lock();
        let mut done = 0;
        for (at, byte) in offsets(offset, out.len())?.zip(out.iter_mut()) {
            match self.read_byte(at) {
                Ok(value) => *byte = value,
                // A failure after some bytes is a short read; at the first, the error.
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            }
            done += 1;
        }
        Ok(done)
    }

    fn write(&self, offset: usize, data: &[u8]) -> Result<usize> {
        let _guard = self.lock.lock();
        let mut done = 0;
        for (at, value) in offsets(offset, data.len())?.zip(data.iter()) {
            match self.write_byte(at, *value) {
                Ok(()) => done += 1,
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(done)
    }
}

/// What the driver keeps while bound: the sysfs file (removed first when unbound).
struct EepromData {
    _file: DeviceBinFile<Eeprom>,
}

struct EepromDriver;

compat::device_table!(
    i2c_device_table,
    I2C_TABLE,
    MODULE_I2C_TABLE,
    <EepromDriver as i2c::Driver>::IdInfo,
    [(i2c::DeviceId::new(c"eeprom_smbus"), ())]
);

impl i2c::Driver for EepromDriver {
    type IdInfo = ();
    type Data<'bound> = EepromData;
    const I2C_ID_TABLE: Option<i2c::IdTable<Self::IdInfo>> = Some(&I2C_TABLE);

    fn probe<'bound>(
        client: &'bound i2c::I2cClient<Core<'_>>,
        _info: Option<&'bound Self::IdInfo>,
    ) -> impl PinInit<EepromData, Error> + 'bound {
        let dev = client.as_ref();
        let eeprom = KBox::pin_init(
            try_pin_init!(Eeprom {
                client: client.into(),
                lock <- new_mutex!(()),
            }),
            GFP_KERNEL,
        )?;
        // Nobody answers at this address: refuse, rather than bind a dead file.
        if let Err(e) = eeprom.read_byte(0) {
            dev_err!(dev, "no EEPROM answers here (error {})\n", e.to_errno());
            return Err(ENXIO);
        }
        let file = DeviceBinFile::create(dev, c"eeprom", 0o644, SIZE, eeprom)?;
        dev_info!(dev, "{} byte EEPROM\n", SIZE);
        Ok(EepromData { _file: file })
    }
}
