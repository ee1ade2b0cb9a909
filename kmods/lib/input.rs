// SPDX-License-Identifier: GPL-2.0

//! A safe input-device abstraction: a keyboard-like `struct input_dev` that Rust sets up,
//! registers and reports key events on, which user space reads through evdev.
//!
//! 7.2's Rust has no input support and its bindings do not include `<linux/input.h>`; the C
//! half, `input_glue.c`, reaches `struct input_dev` and the inline reporting helpers.
//!
//! An [`InputDevice`] is allocated and set up (a [`Setup`] view: which keys, autorepeat), then
//! [`InputDevice::register`]ed into a [`RegisteredInput`], whose [`Events`] view reports keys.
//! Both views are plain pointers, so they can be handed to another module over a C ABI and
//! rebuilt there with `from_raw`.

use core::{marker::PhantomData, ptr::NonNull};
use kernel::{bindings, device::Device, ffi, prelude::*, str::CStr, str::CString};

// Unused in modules that hand their devices to others to set up and report on (vinput).
#[allow(dead_code)]
/// The highest key code (`KEY_MAX` in the uAPI, `input-event-codes.h`).
pub(crate) const KEY_MAX: u32 = 0x2ff;

// A module that only reports on devices made elsewhere (vkbd) uses part of this.
#[allow(dead_code)]
extern "C" {
    fn rustkm_input_alloc(
        name: *const ffi::c_char,
        phys: *const ffi::c_char,
        parent: *mut ffi::c_void,
    ) -> *mut ffi::c_void;
    fn rustkm_input_set_key(dev: *mut ffi::c_void, code: ffi::c_uint);
    fn rustkm_input_set_autorepeat(dev: *mut ffi::c_void);
    fn rustkm_input_register(dev: *mut ffi::c_void) -> ffi::c_int;
    fn rustkm_input_unregister(dev: *mut ffi::c_void);
    fn rustkm_input_free(dev: *mut ffi::c_void);
    fn rustkm_input_report_key(dev: *mut ffi::c_void, code: ffi::c_uint, value: ffi::c_int);
    fn rustkm_input_sync(dev: *mut ffi::c_void);
}

/// An allocated input device, not registered yet; freed when dropped.
#[allow(dead_code)] // Unused in modules that only report on devices made elsewhere (vkbd).
pub(crate) struct InputDevice {
    dev: NonNull<ffi::c_void>,
    // `dev->name` points here: it lives as long as the registration (see `RegisteredInput`).
    name: CString,
}

// SAFETY: an input device may be set up, registered and freed from any thread.
unsafe impl Send for InputDevice {}

#[allow(dead_code)] // Unused in modules that only report on devices made elsewhere (vkbd).
impl InputDevice {
    /// An input device called `name` (a copy is kept), on the virtual bus, at `phys`, with
    /// `parent` as its parent device in sysfs.
    pub(crate) fn new(name: &CStr, phys: &'static CStr, parent: Option<&Device>) -> Result<Self> {
        let name = CString::try_from(name)?;
        // `kernel::device::Device` is a transparent wrapper of `struct device`.
        let parent = parent.map_or(core::ptr::null_mut(), |parent| {
            core::ptr::from_ref(parent)
                .cast::<bindings::device>()
                .cast_mut()
                .cast()
        });
        // SAFETY: `name` is kept with the device and outlives its registration; `phys` is
        // 'static; `parent`, when given, is a live device, which the input device (its child)
        // pins by a reference of its own once registered.
        let dev = unsafe { rustkm_input_alloc(name.as_char_ptr(), phys.as_char_ptr(), parent) };
        Ok(Self {
            dev: NonNull::new(dev).ok_or(ENOMEM)?,
            name,
        })
    }

    /// The view that sets up what it can report.
    pub(crate) fn setup(&mut self) -> Setup<'_> {
        Setup {
            dev: self.dev,
            _device: PhantomData,
        }
    }

    /// Registers it: evdev makes /dev/input/eventN for it.
    pub(crate) fn register(self) -> Result<RegisteredInput> {
        // SAFETY: `dev` is allocated and not registered.
        to_result(unsafe { rustkm_input_register(self.dev.as_ptr()) })?;
        let this = core::mem::ManuallyDrop::new(self);
        // SAFETY: `name` is moved out of `this` once, and `this` is never dropped.
        let name = unsafe { core::ptr::read(&this.name) };
        Ok(RegisteredInput {
            dev: this.dev,
            _name: name,
        })
    }
}

impl Drop for InputDevice {
    fn drop(&mut self) {
        // SAFETY: `dev` is allocated, not registered, and freed once, here.
        unsafe { rustkm_input_free(self.dev.as_ptr()) };
    }
}

#[allow(dead_code)] // Unused in modules that only report on devices made elsewhere (vkbd).
fn to_result(err: ffi::c_int) -> Result {
    if err < 0 {
        Err(Error::from_errno(err))
    } else {
        Ok(())
    }
}

/// What an input device being set up can be told.
pub(crate) struct Setup<'a> {
    dev: NonNull<ffi::c_void>,
    _device: PhantomData<&'a mut InputDevice>,
}

#[allow(dead_code)] // Partly unused where another module sets up and reports (vinput).
impl Setup<'_> {
    /// Rebuilds a view from [`Setup::as_raw`].
    ///
    /// # Safety
    ///
    /// `raw` came from `as_raw` of a `Setup` that is alive, and nothing else uses it meanwhile.
    pub(crate) unsafe fn from_raw(raw: *mut ffi::c_void) -> Option<Self> {
        NonNull::new(raw).map(|dev| Self {
            dev,
            _device: PhantomData,
        })
    }

    /// The raw `struct input_dev` pointer, to hand over a C ABI.
    pub(crate) fn as_raw(&self) -> *mut ffi::c_void {
        self.dev.as_ptr()
    }

    /// It can report key `code` (EINVAL above [`KEY_MAX`]).
    pub(crate) fn set_key(&mut self, code: u32) -> Result {
        if code > KEY_MAX {
            return Err(EINVAL);
        }
        // SAFETY: `dev` is an allocated device being set up; `code` is in range.
        unsafe { rustkm_input_set_key(self.dev.as_ptr(), code) };
        Ok(())
    }

    /// The input core repeats a key held down (events of value 2).
    pub(crate) fn set_autorepeat(&mut self) {
        // SAFETY: `dev` is an allocated device being set up.
        unsafe { rustkm_input_set_autorepeat(self.dev.as_ptr()) };
    }
}

/// A registered input device; unregistered (and freed once unused) when dropped.
pub(crate) struct RegisteredInput {
    dev: NonNull<ffi::c_void>,
    // Dropped after `dev` is unregistered: the device's name.
    _name: CString,
}

// SAFETY: input devices may be used and unregistered from any thread.
unsafe impl Send for RegisteredInput {}
// SAFETY: `Events` only reports events, which the input core serializes by its event lock.
unsafe impl Sync for RegisteredInput {}

#[allow(dead_code)] // Unused in modules that only report on devices made elsewhere (vkbd).
impl RegisteredInput {
    /// The view that reports events.
    pub(crate) fn events(&self) -> Events<'_> {
        Events {
            dev: self.dev,
            _device: PhantomData,
        }
    }
}

impl Drop for RegisteredInput {
    fn drop(&mut self) {
        // SAFETY: `dev` is registered and unregistered once, here.
        unsafe { rustkm_input_unregister(self.dev.as_ptr()) };
    }
}

/// Reports events on a registered input device.
#[derive(Clone, Copy)]
pub(crate) struct Events<'a> {
    dev: NonNull<ffi::c_void>,
    _device: PhantomData<&'a RegisteredInput>,
}

#[allow(dead_code)] // Partly unused where another module sets up and reports (vinput).
impl Events<'_> {
    /// Rebuilds a view from [`Events::as_raw`].
    ///
    /// # Safety
    ///
    /// `raw` came from `as_raw` of an `Events` that stays alive as long as the result.
    pub(crate) unsafe fn from_raw(raw: *mut ffi::c_void) -> Option<Self> {
        NonNull::new(raw).map(|dev| Self {
            dev,
            _device: PhantomData,
        })
    }

    /// The raw `struct input_dev` pointer, to hand over a C ABI.
    pub(crate) fn as_raw(&self) -> *mut ffi::c_void {
        self.dev.as_ptr()
    }

    /// Key `code` went down (`pressed`) or up. Codes the device was not set up for are
    /// dropped by the input core.
    pub(crate) fn report_key(&self, code: u32, pressed: bool) {
        // SAFETY: `dev` is registered while `self` lives.
        unsafe { rustkm_input_report_key(self.dev.as_ptr(), code, pressed.into()) };
    }

    /// Ends a batch of events (`EV_SYN`): readers see it now.
    pub(crate) fn sync(&self) {
        // SAFETY: `dev` is registered while `self` lives.
        unsafe { rustkm_input_sync(self.dev.as_ptr()) };
    }
}
