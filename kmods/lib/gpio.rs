// SPDX-License-Identifier: GPL-2.0

//! GPIO lines found by their chip's label, and interrupt handlers for their edges.
//!
//! 7.2's kernel crate has no GPIO consumer abstraction, and its `kernel::irq` registrations
//! need a bound `Device` (they are device-managed), which a plain module driving lines of
//! someone else's chip does not have. This wraps the two pieces such a module needs:
//!
//! - [`Line`]: a line requested by chip label and offset as an input or an output (C half:
//!   `gpio_glue.c`, on the descriptor API), read and driven with the `_cansleep` accessors
//!   (lines on I2C expanders or gpio-sim may sleep), released when dropped;
//! - [`Irq`]: `request_irq` / `request_threaded_irq` on a line's edges with a Rust handler,
//!   `free_irq` when dropped: `free_irq` waits for running handlers and the IRQ thread, and
//!   the handler is dropped only after it, so no handler runs after the drop.
//!
//! A module links both halves (see kmods/lkmpg/intrpt/Kbuild).

use core::ffi::c_void;
use kernel::{
    bindings,
    error::{from_err_ptr, to_result},
    ffi::{c_char, c_int, c_uint},
    irq::{IrqReturn, ThreadedIrqReturn},
    prelude::*,
    str::CStr,
    sync::Arc,
};

extern "C" {
    fn rustkm_gpio_request(
        chip_label: *const c_char,
        offset: c_uint,
        consumer: *const c_char,
        direction: c_int,
    ) -> *mut bindings::gpio_desc;
    fn rustkm_gpio_free(desc: *mut bindings::gpio_desc);
    fn rustkm_gpio_get(desc: *mut bindings::gpio_desc) -> c_int;
    fn rustkm_gpio_set(desc: *mut bindings::gpio_desc, value: c_int) -> c_int;
    fn rustkm_gpio_to_irq(desc: *mut bindings::gpio_desc) -> c_int;
    // Not every module logs its context.
    #[allow(dead_code)]
    fn rustkm_irq_context() -> c_int;
}

/// A requested GPIO line, released when dropped.
///
/// # Invariants
///
/// `desc` was returned by a successful `rustkm_gpio_request` and is released only in `drop`.
pub(crate) struct Line {
    desc: *mut bindings::gpio_desc,
}

// SAFETY: gpiolib serialises accesses to a line itself; a descriptor may be used and released
// from any task.
unsafe impl Send for Line {}
// SAFETY: see `Send`; every method takes `&self` and is safe to call concurrently.
unsafe impl Sync for Line {}

// Not every module uses every accessor.
#[allow(dead_code)]
impl Line {
    fn request(
        chip: &CStr,
        offset: u32,
        consumer: &'static CStr,
        direction: c_int,
    ) -> Result<Self> {
        // SAFETY: both strings are NUL-terminated; the consumer label is copied by gpiolib.
        // The call may sleep: so may every caller of a safe function taking no lock.
        let desc = unsafe {
            rustkm_gpio_request(
                chip.as_char_ptr(),
                offset,
                consumer.as_char_ptr(),
                direction,
            )
        };
        Ok(Self {
            desc: from_err_ptr(desc)?,
        })
    }

    /// Requests line `offset` of the chip labelled `chip` as an input, for `consumer`.
    ///
    /// `ENODEV` if no chip has that label, `EINVAL` if it has no such line, `EBUSY` if the line
    /// is taken. May sleep.
    pub(crate) fn input(chip: &CStr, offset: u32, consumer: &'static CStr) -> Result<Self> {
        Self::request(chip, offset, consumer, -1)
    }

    /// Requests line `offset` of the chip labelled `chip` as an output driving `value`.
    ///
    /// Errors as [`Line::input`]. May sleep.
    pub(crate) fn output(
        chip: &CStr,
        offset: u32,
        consumer: &'static CStr,
        value: bool,
    ) -> Result<Self> {
        Self::request(chip, offset, consumer, c_int::from(value))
    }

    /// The line's current value. May sleep: process context only.
    pub(crate) fn get(&self) -> Result<bool> {
        // SAFETY: `desc` is a requested line (type invariant).
        let value = unsafe { rustkm_gpio_get(self.desc) };
        to_result(value)?;
        Ok(value != 0)
    }

    /// Drives an output line. May sleep: process context only.
    pub(crate) fn set(&self, value: bool) -> Result {
        // SAFETY: `desc` is a requested line (type invariant).
        to_result(unsafe { rustkm_gpio_set(self.desc, c_int::from(value)) })
    }

    /// The Linux IRQ number of the line's edges (an input line).
    pub(crate) fn to_irq(&self) -> Result<u32> {
        // SAFETY: `desc` is a requested line (type invariant).
        let irq = unsafe { rustkm_gpio_to_irq(self.desc) };
        to_result(irq)?;
        u32::try_from(irq).map_err(|_| EINVAL)
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        // SAFETY: `desc` is a requested line (type invariant), released once, here.
        unsafe { rustkm_gpio_free(self.desc) };
    }
}

/// Which edges of a line raise its interrupt.
#[allow(dead_code)]
#[derive(Clone, Copy)]
pub(crate) enum Edge {
    /// `IRQF_TRIGGER_RISING`.
    Rising,
    /// `IRQF_TRIGGER_FALLING`.
    Falling,
    /// Both: a button's press and its release.
    Both,
}

impl Edge {
    fn flags(self) -> kernel::ffi::c_ulong {
        let flags = match self {
            Edge::Rising => bindings::IRQF_TRIGGER_RISING,
            Edge::Falling => bindings::IRQF_TRIGGER_FALLING,
            Edge::Both => bindings::IRQF_TRIGGER_RISING | bindings::IRQF_TRIGGER_FALLING,
        };
        // The IRQF_ values fit in 32 bits; `c_ulong` is at least as wide.
        flags as kernel::ffi::c_ulong
    }
}

/// An interrupt handler: `handle` runs in hard IRQ context (must not sleep); `handle_threaded`
/// runs in the IRQ's kernel thread (process context, may sleep) after `handle` returned
/// [`ThreadedIrqReturn::WakeThread`], for an [`Irq::request_threaded`] registration only.
pub(crate) trait Handler: Send + Sync + 'static {
    /// The hard IRQ handler, for interrupt `irq`. Atomic context: no sleeping.
    fn handle(&self, irq: u32) -> ThreadedIrqReturn;

    /// The threaded handler, for interrupt `irq`. Process context.
    fn handle_threaded(&self, _irq: u32) -> IrqReturn {
        IrqReturn::None
    }
}

/// An interrupt handler registration, freed (`free_irq`) when dropped.
///
/// # Invariants
///
/// `irq` is requested with `Arc::as_ptr(&handler)` as its cookie and the trampolines of `T`;
/// it is freed only in `drop`, before `handler` is dropped.
pub(crate) struct Irq<T: Handler> {
    irq: u32,
    handler: Arc<T>,
}

/// `T::handle` as a threaded IRQ's primary handler.
///
/// # Safety
///
/// `cookie` is the `Arc<T>` pointer of a live [`Irq`] registration.
unsafe extern "C" fn hard_trampoline<T: Handler>(irq: c_int, cookie: *mut c_void) -> c_uint {
    // SAFETY: `cookie` is the `Arc<T>` pointer of a registration that has not been freed yet
    // (`free_irq` waits for running handlers before the `Arc` is dropped).
    let handler = unsafe { &*cookie.cast::<T>() };
    handler.handle(irq.unsigned_abs()) as c_uint
}

/// `T::handle` as a plain (not threaded) IRQ handler.
///
/// # Safety
///
/// As for [`hard_trampoline`].
unsafe extern "C" fn hard_only_trampoline<T: Handler>(irq: c_int, cookie: *mut c_void) -> c_uint {
    // SAFETY: as in `hard_trampoline`.
    let handler = unsafe { &*cookie.cast::<T>() };
    // A plain IRQ has no thread to wake: the kernel expects IRQ_HANDLED or IRQ_NONE there.
    match handler.handle(irq.unsigned_abs()) {
        ThreadedIrqReturn::None => IrqReturn::None as c_uint,
        ThreadedIrqReturn::Handled | ThreadedIrqReturn::WakeThread => IrqReturn::Handled as c_uint,
    }
}

/// `T::handle_threaded` as a threaded IRQ's thread function.
///
/// # Safety
///
/// As for [`hard_trampoline`].
unsafe extern "C" fn thread_trampoline<T: Handler>(irq: c_int, cookie: *mut c_void) -> c_uint {
    // SAFETY: as in `hard_trampoline`; `free_irq` also stops the IRQ thread first.
    let handler = unsafe { &*cookie.cast::<T>() };
    handler.handle_threaded(irq.unsigned_abs()) as c_uint
}

// Not every module uses both kinds.
#[allow(dead_code)]
impl<T: Handler> Irq<T> {
    fn request(
        line: &Line,
        edge: Edge,
        name: &'static CStr,
        handler: Arc<T>,
        threaded: bool,
    ) -> Result<Self> {
        let irq = line.to_irq()?;
        let cookie = Arc::as_ptr(&handler).cast_mut().cast::<c_void>();
        let (hard, thread): (bindings::irq_handler_t, bindings::irq_handler_t) = if threaded {
            (Some(hard_trampoline::<T>), Some(thread_trampoline::<T>))
        } else {
            (Some(hard_only_trampoline::<T>), None)
        };
        // SAFETY: the trampolines match `irq_handler_t` and treat `cookie` as a `T`, which it
        // is; `handler` keeps it alive until `drop` has freed the IRQ. `name` is `'static`
        // (the kernel keeps the pointer). Without `IRQF_SHARED`, the pair (irq, cookie) is
        // unique, so `drop` frees exactly this registration. May sleep, as any safe caller may.
        to_result(unsafe {
            bindings::request_threaded_irq(
                irq,
                hard,
                thread,
                edge.flags(),
                name.as_char_ptr(),
                cookie,
            )
        })?;
        Ok(Self { irq, handler })
    }

    /// Requests `line`'s interrupt on `edge` with a hard IRQ handler (`T::handle`), as
    /// `request_irq`; `name` shows in /proc/interrupts.
    pub(crate) fn request_hard(
        line: &Line,
        edge: Edge,
        name: &'static CStr,
        handler: Arc<T>,
    ) -> Result<Self> {
        Self::request(line, edge, name, handler, false)
    }

    /// Requests `line`'s interrupt on `edge` with `T::handle` as the hard IRQ handler and
    /// `T::handle_threaded` in an IRQ thread, as `request_threaded_irq`.
    pub(crate) fn request_threaded(
        line: &Line,
        edge: Edge,
        name: &'static CStr,
        handler: Arc<T>,
    ) -> Result<Self> {
        Self::request(line, edge, name, handler, true)
    }

    /// The Linux IRQ number.
    pub(crate) fn irq(&self) -> u32 {
        self.irq
    }
}

impl<T: Handler> Drop for Irq<T> {
    fn drop(&mut self) {
        // SAFETY: by the invariant, `irq` is requested with this cookie and not yet freed.
        // `free_irq` returns once no handler or IRQ thread of it runs; `handler` is dropped
        // after this.
        unsafe {
            bindings::free_irq(
                self.irq,
                Arc::as_ptr(&self.handler).cast_mut().cast::<c_void>(),
            )
        };
    }
}

/// The context the caller runs in, for logs: "hard IRQ", "softirq" or "task".
// Not every module logs its context.
#[allow(dead_code)]
pub(crate) fn context() -> &'static str {
    // SAFETY: reads the current preempt count; no precondition.
    match unsafe { rustkm_irq_context() } {
        2 => "hard IRQ",
        1 => "softirq",
        _ => "task",
    }
}
