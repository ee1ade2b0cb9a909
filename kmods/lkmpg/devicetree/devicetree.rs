// SPDX-License-Identifier: GPL-2.0

//! LKMPG devicetree in Rust: a platform driver matched through the device tree. It binds to
//! nodes whose `compatible` is `lkmpg,example-device` or `lkmpg,another-device`, and its probe
//! reads the node's properties: `label` (a string; "unnamed" without one), `reg` (the device's
//! address and size), `lkmpg,custom-value` (a u32; 42 without one) and `lkmpg,has-clock` (a
//! flag). Remove names the device by its label.
//!
//! The devices are described in `dt-overlay.dts`, a device-tree overlay as in the original.
//! rustkm applies it to the device tree of its arm64 guest (QEMU's virt machine) before the
//! guest boots, so the kernel creates the platform devices at boot and they wait for this
//! driver:
//!
//! ```sh
//! $ rustkm run --arch arm64 --dt-overlay kmods/lkmpg/devicetree/dt-overlay.dts \
//!       kmods/lkmpg/devicetree -- dmesg
//! ```

use kernel::{
    device::{self, property::FwNode, Core},
    of, platform,
    prelude::*,
    str::CString,
};

/// What the original keeps per device (`struct dt_device_data`); only the label outlives the
/// probe, for the remove message.
struct DtDevice {
    label: CString,
}

/// How many `reg` cells are read at most: two address and two size cells on arm64.
const MAX_REG_CELLS: usize = 4;

kernel::of_device_table!(
    OF_TABLE,
    MODULE_OF_TABLE,
    <DtDevice as platform::Driver>::IdInfo,
    [
        (of::DeviceId::new(c"lkmpg,example-device"), ()),
        (of::DeviceId::new(c"lkmpg,another-device"), ())
    ]
);

impl platform::Driver for DtDevice {
    type IdInfo = ();
    type Data<'bound> = Self;
    const OF_ID_TABLE: Option<of::IdTable<Self::IdInfo>> = Some(&OF_TABLE);

    fn probe<'bound>(
        pdev: &'bound platform::Device<Core<'_>>,
        _id_info: Option<&'bound Self::IdInfo>,
    ) -> impl PinInit<Self, Error> + 'bound {
        let dev: &device::Device = pdev.as_ref();
        // A device bound by hand (driver_override) may have no device-tree node.
        let node = dev.fwnode().ok_or(ENODEV)?;
        pr_info!("Device tree probe called for {}\n", node);

        let label = match node.property_read::<CString>(c"label").optional() {
            Some(label) => {
                pr_info!(
                    "Found label property: {}\n",
                    label.to_str().unwrap_or("(not UTF-8)")
                );
                label
            }
            None => {
                pr_info!("No label property found, using default\n");
                CString::try_from_fmt(fmt!("unnamed"))?
            }
        };
        if let Some((address, size)) = reg(node) {
            pr_info!("Found reg property: {:#x} (size {:#x})\n", address, size);
        }
        match node.property_read::<u32>(c"lkmpg,custom-value").optional() {
            Some(value) => pr_info!("Found custom-value property: {}\n", value),
            None => pr_info!("No custom-value found, using default: 42\n"),
        }
        let has_clock = node.property_read_bool(c"lkmpg,has-clock");
        pr_info!(
            "has-clock property: {}\n",
            if has_clock { "present" } else { "absent" }
        );
        pr_info!("Device probe successful\n");
        Ok(DtDevice { label })
    }

    fn unbind<'bound>(_pdev: &'bound platform::Device<Core<'_>>, this: Pin<&Self>) {
        pr_info!(
            "Removing device {}\n",
            this.label.to_str().unwrap_or("(not UTF-8)")
        );
    }
}

/// The first address and size of the node's `reg`, read as 32-bit cells: one cell each (a
/// 32-bit parent bus) or two each (virt's root, as on most arm64 machines).
fn reg(node: &FwNode) -> Option<(u64, u64)> {
    let count = node.property_count_elem::<u32>(c"reg").ok()?;
    let cells = node
        .property_read_array_vec::<u32>(c"reg", count.min(MAX_REG_CELLS))
        .ok()?
        .optional()?;
    match cells.as_slice() {
        [address, size] => Some((u64::from(*address), u64::from(*size))),
        [high, low, size_high, size_low] => Some((
            u64::from(*high) << 32 | u64::from(*low),
            u64::from(*size_high) << 32 | u64::from(*size_low),
        )),
        _ => None,
    }
}

kernel::module_platform_driver! {
    type: DtDevice,
    name: "devicetree",
    authors: ["rustkm"],
    description: "LKMPG devicetree: a platform driver matched through the device tree",
    license: "GPL",
}
