// SPDX-License-Identifier: GPL-2.0

//! LKMPG led in Rust: /dev/gpio_led switches an LED on a GPIO line.
//!
//! `echo 1 > /dev/gpio_led` turns the LED on, `echo 0 > /dev/gpio_led` off; the LED starts
//! off and is turned off at unload, as in the original. Each write consumes at most two bytes
//! (the original's `BUF_LEN`) and acts on the first; anything but `0` or `1` is logged as
//! "Invalid value!" as in the original and, unlike it, refused with `EINVAL`.
//!
//! The original drives a Raspberry Pi's GPIO 4 by its global number and registers a major
//! number, a cdev and a class by hand. This port takes line `led` (a module parameter, 0 by
//! default) of the GPIO chip labelled `lkmpg-gpio` (a gpio-sim chip in the tests; 7.2's
//! `module!` has integer parameters only, so the label is fixed); no such chip: insmod fails
//! with `ENODEV`. /dev/gpio_led is a misc device (`kmods/lib/miscdev.rs`), which gives user
//! space the same node.

use kernel::{
    fs::{File, Kiocb},
    global_lock,
    iov::IovIterSource,
    miscdevice::{MiscDevice, MiscDeviceRegistration},
    prelude::*,
    str::CStr,
};

#[path = "../../lib/compat.rs"]
mod compat;
#[path = "../../lib/gpio.rs"]
mod gpio;
#[path = "../../lib/miscdev.rs"]
mod miscdev;

use gpio::Line;

module! {
    type: LedModule,
    name: "led",
    authors: ["rustkm"],
    description: "LKMPG led in Rust: a GPIO LED switched through /dev/gpio_led",
    license: "GPL",
    params: {
        led: u32 {
            default: 0,
            description: "Offset of the LED line on the chip labelled lkmpg-gpio",
        },
    },
}

/// The label of the GPIO chip whose line this module drives.
const CHIP: &CStr = c"lkmpg-gpio";
/// How many bytes a write consumes at most: the command and a newline.
const BUF_LEN: usize = 2;

global_lock! {
    // SAFETY: initialised in `init` before the device that uses it exists.
    unsafe(uninit) static LED: Mutex<Option<Line>> = None;
}

#[pin_data(PinnedDrop)]
struct LedModule {
    #[pin]
    _miscdev: miscdev::Registration<GpioLed>,
}

impl kernel::InPlaceModule for LedModule {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        let offset = compat::param(&module_parameters::led);
        // SAFETY: called once, before anything locks the mutex.
        unsafe { LED.init() };
        let line = Line::output(CHIP, offset, c"LED 1", false).inspect_err(|e| {
            pr_err!(
                "Unable to request GPIOs for LEDs: line {} of chip {:?}: {}\n",
                offset,
                CHIP,
                e.to_errno()
            )
        });
        let requested = line.as_ref().map(|_| ()).map_err(|e| *e);
        try_pin_init!(Self {
            _miscdev <- {
                // No line, no device.
                requested?;
                // SAFETY: the registration is part of this module's data.
                unsafe { miscdev::Registration::register(c"gpio_led", module) }
            },
        })
        // Once the device is registered; if that fails, the line is dropped (released) here.
        .pin_chain(move |_| {
            if let Ok(line) = line {
                *LED.lock() = Some(line);
            }
            pr_info!("Device created on /dev/gpio_led\n");
            Ok(())
        })
    }
}

#[pinned_drop]
impl PinnedDrop for LedModule {
    fn drop(self: Pin<&mut Self>) {
        // Runs before the device is deregistered, but no file is open (each holds the module).
        if let Some(line) = LED.lock().take() {
            match line.set(false) {
                Ok(()) => pr_info!("LED OFF (exit)\n"),
                Err(e) => pr_err!("Unable to turn the LED off: {}\n", e.to_errno()),
            }
        }
    }
}

/// An open /dev/gpio_led: no state of its own.
struct GpioLed;

#[vtable]
impl MiscDevice for GpioLed {
    type Ptr = ();

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result {
        Ok(())
    }

    fn write_iter(mut kiocb: Kiocb<'_, ()>, iov: &mut IovIterSource<'_>) -> Result<usize> {
        let mut signal = [0u8; BUF_LEN];
        let length = iov.len().min(BUF_LEN);
        let signal = signal.get_mut(..length).ok_or(EINVAL)?;
        if iov.copy_from_iter(signal) != length {
            return Err(EFAULT);
        }
        let on = match signal.first() {
            None => return Ok(0),
            Some(b'0') => false,
            Some(b'1') => true,
            Some(_) => {
                pr_warn!("Invalid value!\n");
                return Err(EINVAL);
            }
        };
        match LED.lock().as_ref() {
            Some(line) => line.set(on)?,
            None => return Err(ENODEV),
        }
        pr_info!("LED {}\n", if on { "ON" } else { "OFF" });
        let pos = kiocb.ki_pos_mut();
        *pos = pos.saturating_add(i64::try_from(length).map_err(|_| EINVAL)?);
        Ok(length)
    }
}
