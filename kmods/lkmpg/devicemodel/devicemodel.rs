// SPDX-License-Identifier: GPL-2.0

//! LKMPG devicemodel in Rust: a platform driver, `devicemodel_example`, whose probe prints the
//! greeting its device carries as platform data, and whose remove says so.
//!
//! The original registers only the driver, so nothing ever binds to it. This one also creates
//! the matching platform device (registered before the driver, unregistered after it), so
//! probe really runs, and unbind/bind through sysfs calls remove and probe again:
//!
//! ```sh
//! $ echo devicemodel_example > /sys/bus/platform/drivers/devicemodel_example/unbind
//! $ echo devicemodel_example > /sys/bus/platform/drivers/devicemodel_example/bind
//! ```
//!
//! Not ported: the original's power-management ops (suspend, resume, ...). 7.2's
//! `kernel::platform` does not expose `driver.pm`, and the guest kernel has no `CONFIG_PM_SLEEP`,
//! so they could not be called anyway.

use kernel::{device::Core, driver, platform, prelude::*, str::CStr};

#[path = "../../lib/platform_device.rs"]
mod platform_device;

use platform_device::{platform_data, DeviceRegistration};

/// The name of the driver and of its device (one instance, no number).
const NAME: &CStr = c"devicemodel_example";

/// The platform data of the device, as in the original's `struct devicemodel_data`.
#[derive(Clone, Copy)]
struct DevicemodelData {
    greeting: &'static CStr,
    number: i32,
}

const DATA: DevicemodelData = DevicemodelData {
    greeting: c"Hello from the Rust device model",
    number: 42,
};

struct DevicemodelDriver;

impl platform::Driver for DevicemodelDriver {
    type IdInfo = ();
    type Data<'bound> = Self;

    fn probe<'bound>(
        pdev: &'bound platform::Device<Core<'_>>,
        _id_info: Option<&'bound Self::IdInfo>,
    ) -> impl PinInit<Self, Error> + 'bound {
        pr_info!("devicemodel probe\n");
        // A device bound through `driver_override` may be any platform device: only the one
        // this module made (the only device with this name while the driver is registered,
        // since names are unique and the module registers it first) carries our data.
        if pdev.as_ref().name() != NAME {
            pr_info!("devicemodel: not our device, refused\n");
            return Err(ENODEV);
        }
        // SAFETY: the device named `NAME` is the one `DevicemodelModule` registered with a
        // `DevicemodelData` (see above).
        let data = unsafe { platform_data::<DevicemodelData, _>(pdev) }.ok_or(ENODEV)?;
        pr_info!(
            "devicemodel greeting: {}; {}\n",
            data.greeting.to_str().unwrap_or("(not UTF-8)"),
            data.number
        );
        // Your device initialization code
        Ok(DevicemodelDriver)
    }

    fn unbind<'bound>(_pdev: &'bound platform::Device<Core<'_>>, _this: Pin<&Self>) {
        pr_info!("devicemodel example removed\n");
        // Your device removal code
    }
}

#[pin_data(PinnedDrop)]
struct DevicemodelModule {
    // Fields drop in this order: the driver is unregistered before its device goes.
    #[pin]
    _driver: driver::Registration<platform::Adapter<DevicemodelDriver>>,
    _device: DeviceRegistration,
}

impl kernel::InPlaceModule for DevicemodelModule {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        pr_info!("devicemodel init\n");
        try_pin_init!(Self {
            _device: DeviceRegistration::register(NAME, &DATA)
                .inspect_err(|_| pr_err!("Unable to register device\n"))?,
            _driver <- driver::Registration::new(NAME, module),
        })
    }
}

#[pinned_drop]
impl PinnedDrop for DevicemodelModule {
    fn drop(self: Pin<&mut Self>) {
        pr_info!("devicemodel exit\n");
    }
}

module! {
    type: DevicemodelModule,
    name: "devicemodel",
    authors: ["rustkm"],
    description: "Linux Device Model example",
    license: "GPL",
}
