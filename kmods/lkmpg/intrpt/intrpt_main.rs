// SPDX-License-Identifier: GPL-2.0

//! LKMPG intrpt in Rust: press one button to turn an LED on, another to turn it off.
//!
//! The original drives a Raspberry Pi's GPIO 4 (LED) and 17/18 (buttons). This port takes the
//! lines of the GPIO chip labelled `lkmpg-gpio` (a gpio-sim chip in the tests), at offsets given
//! as module parameters (`led`, `button1`, `button2`; 0, 1, 2 by default): 7.2's `module!` has
//! integer parameters only, so the chip label is fixed. No such chip: insmod fails with
//! `ENODEV`.
//!
//! Both edges of each button raise an interrupt, as in the original. The hard IRQ handler
//! does what the original's does: button 1 turns the LED on if it is off, button 2 off if it
//! is on. The original then writes the GPIO right there; a gpio-sim line (like an I2C
//! expander's) may sleep, which a hard IRQ handler must not, so the write happens in the
//! IRQ's thread (`request_threaded_irq`), the kernel's way for such chips. The LED's state is
//! kept in an atomic the hard handler can read; the two IRQs' threads write the line under one
//! mutex, each reading the state once it holds it, so the line always ends as the last press
//! left it (without it, a thread that read "on" and was preempted could write "on" after the
//! other thread wrote a later "off"). Every interrupt is counted and logged with the context it
//! runs in.

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use kernel::{
    irq::{IrqReturn, ThreadedIrqReturn},
    new_mutex,
    prelude::*,
    str::CStr,
    sync::{Arc, Mutex},
};

#[path = "../../lib/compat.rs"]
mod compat;
#[path = "../../lib/gpio.rs"]
mod gpio;

use gpio::{Edge, Irq, Line};

module! {
    type: Intrpt,
    name: "intrpt",
    authors: ["rustkm"],
    description: "Handle some GPIO interrupts",
    license: "GPL",
    params: {
        led: u32 {
            default: 0,
            description: "Offset of the LED line on the chip labelled lkmpg-gpio",
        },
        button1: u32 {
            default: 1,
            description: "Offset of the LED-on button's line",
        },
        button2: u32 {
            default: 2,
            description: "Offset of the LED-off button's line",
        },
    },
}

/// The label of the GPIO chip whose lines this module uses.
const CHIP: &CStr = c"lkmpg-gpio";

/// The LED, the two buttons and what the interrupts saw.
#[pin_data(PinnedDrop)]
struct Buttons {
    led: Line,
    buttons: [Line; 2],
    /// The buttons' IRQ numbers, to tell them apart as the original does.
    irqs: [u32; 2],
    /// The LED's state as the hard IRQ handler last decided it.
    led_on: AtomicBool,
    /// Interrupts seen per button.
    count: [AtomicU32; 2],
    /// Held by the IRQ thread that writes the LED line.
    #[pin]
    led_write: Mutex<()>,
}

impl gpio::Handler for Buttons {
    fn handle(&self, irq: u32) -> ThreadedIrqReturn {
        let (index, on) = if irq == self.irqs[0] {
            (0, true)
        } else if irq == self.irqs[1] {
            (1, false)
        } else {
            return ThreadedIrqReturn::None;
        };
        let n = self.count[index].fetch_add(1, Ordering::Relaxed) + 1;
        pr_info!(
            "button{} interrupt {} ({})\n",
            index + 1,
            n,
            gpio::context()
        );
        // Button 1 turns the LED on if it is off, button 2 off if it is on.
        if self.led_on.swap(on, Ordering::AcqRel) != on {
            ThreadedIrqReturn::WakeThread
        } else {
            ThreadedIrqReturn::Handled
        }
    }

    fn handle_threaded(&self, _irq: u32) -> IrqReturn {
        let _writing = self.led_write.lock();
        let on = self.led_on.load(Ordering::Acquire);
        match self.led.set(on) {
            Ok(()) => pr_info!(
                "LED {} ({})\n",
                if on { "ON" } else { "OFF" },
                gpio::context()
            ),
            Err(e) => pr_err!("Unable to set the LED: {}\n", e.to_errno()),
        }
        IrqReturn::Handled
    }
}

#[pinned_drop]
impl PinnedDrop for Buttons {
    /// Runs once both IRQs are freed: turn the LED off, as the original's exit does.
    fn drop(self: Pin<&mut Self>) {
        match self.led.set(false) {
            Ok(()) => pr_info!("LED OFF (exit)\n"),
            Err(e) => pr_err!("Unable to turn the LED off: {}\n", e.to_errno()),
        }
    }
}

struct Intrpt {
    // Freed in this order when the module is unloaded; the lines go with the last `Arc`.
    _irqs: [Irq<Buttons>; 2],
}

fn request(offset: u32, what: &str, output: bool, consumer: &'static CStr) -> Result<Line> {
    let line = if output {
        Line::output(CHIP, offset, consumer, false)
    } else {
        Line::input(CHIP, offset, consumer)
    };
    line.inspect_err(|e| {
        pr_err!(
            "Unable to request GPIOs for {}: line {} of chip {:?}: {}\n",
            what,
            offset,
            CHIP,
            e.to_errno()
        )
    })
}

impl kernel::Module for Intrpt {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("intrpt_init\n");
        let led = request(
            compat::param(&module_parameters::led),
            "LEDs",
            true,
            c"LED 1",
        )?;
        let on = request(
            compat::param(&module_parameters::button1),
            "BUTTONs",
            false,
            c"LED 1 ON BUTTON",
        )?;
        let off = request(
            compat::param(&module_parameters::button2),
            "BUTTONs",
            false,
            c"LED 1 OFF BUTTON",
        )?;
        pr_info!("Current button1 value: {}\n", u8::from(on.get()?));
        let irq_error = |e: &Error| pr_err!("Unable to request IRQ: {}\n", e.to_errno());
        let irqs = [
            on.to_irq().inspect_err(irq_error)?,
            off.to_irq().inspect_err(irq_error)?,
        ];
        let buttons = Arc::pin_init(
            pin_init!(Buttons {
                led,
                buttons: [on, off],
                irqs,
                led_on: AtomicBool::new(false),
                count: [AtomicU32::new(0), AtomicU32::new(0)],
                led_write <- new_mutex!(()),
            }),
            GFP_KERNEL,
        )?;
        let button1 = Irq::request_threaded(
            &buttons.buttons[0],
            Edge::Both,
            c"gpiomod#button1",
            buttons.clone(),
        )
        .inspect_err(irq_error)?;
        pr_info!("Successfully requested BUTTON1 IRQ # {}\n", button1.irq());
        let button2 = Irq::request_threaded(
            &buttons.buttons[1],
            Edge::Both,
            c"gpiomod#button2",
            buttons.clone(),
        )
        .inspect_err(irq_error)?;
        pr_info!("Successfully requested BUTTON2 IRQ # {}\n", button2.irq());
        Ok(Intrpt {
            _irqs: [button1, button2],
        })
    }
}

impl Drop for Intrpt {
    fn drop(&mut self) {
        pr_info!("intrpt_exit\n");
    }
}
