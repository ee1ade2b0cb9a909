// SPDX-License-Identifier: GPL-2.0

//! LKMPG bottomhalf in Rust: top and bottom half interrupt handling, the bottom half on a
//! workqueue. Press one button to turn an LED on, another to turn it off.
//!
//! The original drives a Raspberry Pi's GPIO 4 (LED) and 17/18 (buttons). This port takes the
//! lines of the GPIO chip labelled `lkmpg-gpio` (a gpio-sim chip in the tests), at offsets given
//! as module parameters (`led`, `button1`, `button2`; 0, 1, 2 by default): 7.2's `module!` has
//! integer parameters only, so the chip label is fixed. No such chip: insmod fails with
//! `ENODEV`.
//!
//! Both edges of each button raise an interrupt. The hard IRQ handler does the quick part:
//! it counts and logs the interrupt, decides as the original (button 1 turns the LED on if it
//! is off, button 2 off if it is on) and schedules the bottom half on the system workqueue
//! (`kernel::workqueue`, as the original's `schedule_work`). The original writes the LED in
//! the hard handler; a gpio-sim line (like an I2C expander's) may sleep, so the work item
//! writes it, then sleeps 500 ms as the original's `msleep(500)`. Interrupts while the work is
//! pending are all counted; the work runs once for them. At unload the IRQs are freed first,
//! then the work is flushed, then the LED is turned off and the lines released.

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use kernel::{
    bindings,
    prelude::*,
    str::CStr,
    sync::Arc,
    time::{delay::fsleep, Delta},
    workqueue::{self, impl_has_work, new_work, Work, WorkItem},
};

#[path = "../../lib/compat.rs"]
mod compat;
#[path = "../../lib/gpio.rs"]
mod gpio;

use gpio::{Edge, Irq, Line};
use kernel::irq::ThreadedIrqReturn;

module! {
    type: Bottomhalf,
    name: "bottomhalf",
    authors: ["rustkm"],
    description: "Interrupt with top and bottom half",
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

/// The LED, the two buttons, what the interrupts saw, and the bottom half's work item.
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
    #[pin]
    work: Work<Buttons>,
}

impl_has_work! {
    impl HasWork<Self> for Buttons { self.work }
}

impl WorkItem for Buttons {
    type Pointer = Arc<Buttons>;

    /// The bottom half: process context, may sleep.
    fn run(this: Arc<Buttons>) {
        pr_info!("Bottom half workqueue starts ({})\n", gpio::context());
        let on = this.led_on.load(Ordering::Acquire);
        match this.led.set(on) {
            Ok(()) => pr_info!("LED {}\n", if on { "ON" } else { "OFF" }),
            Err(e) => pr_err!("Unable to set the LED: {}\n", e.to_errno()),
        }
        // Do something which takes a while.
        fsleep(Delta::from_millis(500));
        pr_info!("Bottom half workqueue ends\n");
    }
}

#[pinned_drop]
impl PinnedDrop for Buttons {
    /// Runs once the IRQs are freed and the work is done: turn the LED off, as the original's
    /// exit does.
    fn drop(self: Pin<&mut Self>) {
        match self.led.set(false) {
            Ok(()) => pr_info!("LED OFF (exit)\n"),
            Err(e) => pr_err!("Unable to turn the LED off: {}\n", e.to_errno()),
        }
    }
}

/// The hard IRQ handler's data: the buttons, to schedule their work item from.
struct TopHalf {
    buttons: Arc<Buttons>,
}

impl gpio::Handler for TopHalf {
    /// The top half: hard IRQ context, no sleeping.
    fn handle(&self, irq: u32) -> ThreadedIrqReturn {
        let buttons = &self.buttons;
        let (index, on) = if irq == buttons.irqs[0] {
            (0, true)
        } else if irq == buttons.irqs[1] {
            (1, false)
        } else {
            return ThreadedIrqReturn::None;
        };
        let n = buttons.count[index].fetch_add(1, Ordering::Relaxed) + 1;
        pr_info!(
            "button{} interrupt {} ({})\n",
            index + 1,
            n,
            gpio::context()
        );
        // Do something quickly right now: decide the LED's state.
        buttons.led_on.store(on, Ordering::Release);
        // Do the rest at leisure via the scheduler. Already pending: that run will see it.
        let _ = workqueue::system().enqueue(buttons.clone());
        ThreadedIrqReturn::Handled
    }
}

struct Bottomhalf {
    /// Freed first at unload (`Drop`), so no interrupt schedules the work any more.
    irqs: Option<[Irq<TopHalf>; 2]>,
    buttons: Arc<Buttons>,
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

impl kernel::Module for Bottomhalf {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("bottomhalf_init\n");
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
                work <- new_work!("bottomhalf::work"),
            }),
            GFP_KERNEL,
        )?;
        let top_half = Arc::new(
            TopHalf {
                buttons: buttons.clone(),
            },
            GFP_KERNEL,
        )?;
        // On an error from here on, the work may have been scheduled: `Bottomhalf::drop` flushes.
        let mut module = Bottomhalf {
            irqs: None,
            buttons,
        };
        let button1 = Irq::request_hard(
            &module.buttons.buttons[0],
            Edge::Both,
            c"gpiomod#button1",
            top_half.clone(),
        )
        .inspect_err(irq_error)?;
        pr_info!("Successfully requested BUTTON1 IRQ # {}\n", button1.irq());
        let button2 = Irq::request_hard(
            &module.buttons.buttons[1],
            Edge::Both,
            c"gpiomod#button2",
            top_half,
        );
        // `button1` must be freed before the flush in `drop`, also on this error path.
        let button2 = match button2 {
            Ok(irq) => irq,
            Err(e) => {
                irq_error(&e);
                drop(button1);
                return Err(e);
            }
        };
        pr_info!("Successfully requested BUTTON2 IRQ # {}\n", button2.irq());
        module.irqs = Some([button1, button2]);
        Ok(module)
    }
}

impl Drop for Bottomhalf {
    fn drop(&mut self) {
        // Free the IRQs: no handler runs or will run, so nothing schedules the work again.
        // (`None` when `init` failed half-way.)
        if let Some(irqs) = self.irqs.take() {
            pr_info!("bottomhalf_exit\n");
            drop(irqs);
        }
        // Wait for a scheduled or running bottom half (7.2's `kernel::workqueue` has no flush).
        // SAFETY: `work` is an initialised work item inside the live `Arc` held by `self`.
        unsafe { bindings::flush_work(Work::raw_get(&self.buttons.work)) };
    }
}
