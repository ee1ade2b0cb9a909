// SPDX-License-Identifier: GPL-2.0

//! LKMPG vinput in Rust: a framework for virtual input devices.
//!
//! Modules of device types (vkbd) register with it ([`vinput_register`]). User space then
//! makes virtual devices of a type through the `vinput` class, and injects events by writing
//! to their /dev/vinputN nodes:
//!
//! ```sh
//! $ echo vkbd > /sys/class/vinput/export     # makes /dev/vinput0 and an input device
//! $ echo +30 > /dev/vinput0                   # KEY_A pressed (-30: released)
//! $ cat /dev/vinput0                          # the last event: +30
//! $ echo 0 > /sys/class/vinput/unexport
//! ```
//!
//! Unlike the original, writes are checked: unknown types, bad numbers and over-long writes
//! get an errno (ENODEV, EINVAL), and a device whose type is gone answers ENODEV.

use core::ptr::NonNull;
use kernel::{
    bindings, dev_info, dev_warn, ffi, global_lock, new_mutex,
    prelude::*,
    str::CString,
    sync::{Arc, Mutex},
    uaccess::{UserSliceReader, UserSliceWriter},
};

#[path = "../../lib/chrclass.rs"]
mod chrclass;
#[path = "../../lib/input.rs"]
mod input;
mod vinput_api;

use chrclass::{ChrClass, ChrFile, Class, Node};
use input::{InputDevice, RegisteredInput};
use vinput_api::{Vinput, VinputDevice, VINPUT_MAX_LEN};

module! {
    type: VinputModule,
    name: "vinput",
    authors: ["rustkm"],
    description: "Emulate input events",
    license: "GPL",
}

/// The most virtual devices at a time (minors 0..32).
const MAX_VINPUT: usize = 32;

/// A registered type; it lives in its own module, until [`vinput_unregister`].
struct TypePtr(NonNull<VinputDevice>);

// SAFETY: `VinputDevice` is `Sync` and stays valid while registered (see `get`).
unsafe impl Send for TypePtr {}

impl TypePtr {
    fn get(&self) -> &VinputDevice {
        // SAFETY: a `TypePtr` is kept only in `STATE.types` and in an `Active`, both dropped
        // by `vinput_unregister` (under `STATE`) before the type's module may go.
        unsafe { self.0.as_ref() }
    }
}

/// A virtual device in use: its type, input device and node.
struct Active {
    ty: TypePtr,
    // Fields drop in order: the input device (a child of the node) before the node.
    input: RegisteredInput,
    node: Node,
}

/// A virtual device; open files keep it alive after it is unexported.
#[pin_data]
struct VDev {
    vinput: Vinput,
    /// Its type's address, compared only (never followed).
    ty: usize,
    /// `None` once unexported or once its type unregistered.
    #[pin]
    active: Mutex<Option<Active>>,
}

struct State {
    types: KVec<TypePtr>,
    devices: [Option<Arc<VDev>>; MAX_VINPUT],
}

impl State {
    const fn new() -> Self {
        Self {
            types: KVec::new(),
            devices: [const { None }; MAX_VINPUT],
        }
    }

    /// Drops every virtual device for which `doomed` holds (under `STATE`, so that a freed
    /// number is not reused before its node is gone).
    fn remove_devices(&mut self, doomed: impl Fn(&VDev) -> bool) {
        for slot in self.devices.iter_mut() {
            if slot.as_deref().is_some_and(&doomed) {
                if let Some(vdev) = slot.take() {
                    // Waits for a running send or read; later ones get ENODEV.
                    let active = vdev.active.lock().take();
                    drop(active);
                }
            }
        }
    }
}

global_lock! {
    // SAFETY: initialised in `init` before the class (or anything else) can use it.
    unsafe(uninit) static STATE: Mutex<State> = State::new();
}

/// Attribute indices, in `ATTRS`' order.
const EXPORT: usize = 0;
const UNEXPORT: usize = 1;

struct VinputClass;

static VINPUT_CLASS: VinputClass = VinputClass;

/// `text` without one trailing newline (as `echo` writes).
fn chomp(text: &[u8]) -> &[u8] {
    text.strip_suffix(b"\n").unwrap_or(text)
}

impl VinputClass {
    fn export(&self, class: &Class, name: &[u8]) -> Result {
        let mut state = STATE.lock();
        let Some(ty) = state
            .types
            .iter()
            .find(|t| t.get().name().to_bytes() == name)
        else {
            pr_info!("This virtual device isn't registered\n");
            return Err(ENODEV);
        };
        let ty = TypePtr(ty.0);
        let id = state
            .devices
            .iter()
            .position(Option::is_none)
            .ok_or(Error::from_errno(-(bindings::ENOBUFS as i32)))?;
        let vdev = Arc::pin_init(
            pin_init!(VDev {
                vinput: Vinput::new(id as ffi::c_long),
                ty: ty.0.as_ptr() as usize,
                active <- new_mutex!(None),
            }),
            GFP_KERNEL,
        )?;
        let node_name = CString::try_from_fmt(fmt!("vinput{id}"))?;
        let node = Node::create(class, id as u32, &node_name)?;
        let mut input = InputDevice::new(ty.get().name(), c"vinput", Some(node.device()))?;
        ty.get().init(&mut input.setup())?;
        let input = input.register()?;
        dev_info!(
            node.device(),
            "Registered virtual input {} {}\n",
            ty.get().name().to_str().unwrap_or("?"),
            id
        );
        *vdev.active.lock() = Some(Active { ty, input, node });
        if let Some(slot) = state.devices.get_mut(id) {
            *slot = Some(vdev);
        }
        Ok(())
    }

    fn unexport(&self, text: &[u8]) -> Result {
        let id = core::str::from_utf8(text)
            .ok()
            .and_then(|t| t.parse::<usize>().ok())
            .ok_or(EINVAL)?;
        let mut state = STATE.lock();
        if state.devices.get(id).is_none_or(Option::is_none) {
            pr_err!("No such vinput device {}\n", id);
            return Err(ENODEV);
        }
        state.remove_devices(|vdev| vdev.vinput.id() as usize == id);
        Ok(())
    }
}

impl ChrClass for VinputClass {
    type File = VDev;
    const ATTRS: &'static [&'static CStr] = &[c"export", c"unexport"];

    fn open(&self, minor: u32) -> Result<Arc<VDev>> {
        let state = STATE.lock();
        let slot = state.devices.get(minor as usize).ok_or(ENODEV)?;
        slot.clone().ok_or(ENODEV)
    }

    fn store(&self, class: &Class, attr: usize, input: &[u8]) -> Result {
        match attr {
            EXPORT => self.export(class, chomp(input)),
            UNEXPORT => self.unexport(chomp(input)),
            _ => Err(EINVAL),
        }
    }
}

impl ChrFile for VDev {
    fn read(&self, out: &mut UserSliceWriter, pos: &mut i64) -> Result<usize> {
        let mut text = [0u8; VINPUT_MAX_LEN];
        let len = {
            let active = self.active.lock();
            let active = active.as_ref().ok_or(ENODEV)?;
            active.ty.get().read(&self.vinput, &mut text)
        };
        let start = usize::try_from(*pos).map_err(|_| EINVAL)?;
        let Some(rest) = text.get(start..len) else {
            return Ok(0);
        };
        let count = rest.len().min(out.len());
        out.write_slice(&rest[..count])?;
        *pos += count as i64;
        Ok(count)
    }

    fn write(&self, input: &mut UserSliceReader) -> Result<usize> {
        let len = input.len();
        let active = self.active.lock();
        let active = active.as_ref().ok_or(ENODEV)?;
        if len > VINPUT_MAX_LEN {
            dev_warn!(
                active.node.device(),
                "Too long. {} bytes allowed\n",
                VINPUT_MAX_LEN
            );
            return Err(EINVAL);
        }
        let mut text = [0u8; VINPUT_MAX_LEN];
        let text = &mut text[..len];
        input.read_slice(text)?;
        active
            .ty
            .get()
            .send(&self.vinput, active.input.events(), text)
    }
}

/// Registers a type (the original's `vinput_register`, exported by vinput_exports.c).
///
/// # Safety
///
/// `dev` is a `VinputDevice` made by `VinputDevice::new` (vinput_api.rs) that stays valid
/// until it is passed to [`vinput_unregister`].
#[no_mangle]
unsafe extern "C" fn vinput_register(dev: *const VinputDevice) -> ffi::c_int {
    let Some(dev) = NonNull::new(dev.cast_mut()) else {
        return EINVAL.to_errno();
    };
    let ty = TypePtr(dev);
    let mut state = STATE.lock();
    if state.types.iter().any(|t| t.0 == dev) {
        return EEXIST.to_errno();
    }
    let name = ty.get().name();
    if let Err(e) = state.types.push(TypePtr(dev), GFP_KERNEL) {
        return Error::from(e).to_errno();
    }
    pr_info!(
        "registered new virtual input device '{}'\n",
        name.to_str().unwrap_or("?")
    );
    0
}

/// Unregisters a type and removes its virtual devices (the original's `vinput_unregister`).
/// Once it returns, vinput no longer uses `dev`.
///
/// # Safety
///
/// `dev` was registered by [`vinput_register`].
#[no_mangle]
unsafe extern "C" fn vinput_unregister(dev: *const VinputDevice) {
    let mut state = STATE.lock();
    let Some(index) = state
        .types
        .iter()
        .position(|t| t.0.as_ptr().cast_const() == dev)
    else {
        return;
    };
    state.remove_devices(|vdev| vdev.ty == dev as usize);
    let ty = state.types.remove(index);
    if let Ok(ty) = ty {
        pr_info!(
            "unregistered virtual input device '{}'\n",
            ty.get().name().to_str().unwrap_or("?")
        );
    }
}

struct VinputModule {
    _class: chrclass::Registration,
}

impl kernel::Module for VinputModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("Loading virtual input driver\n");
        // SAFETY: called once, before anything locks it.
        unsafe { STATE.init() };
        let class = chrclass::Registration::register(c"vinput", MAX_VINPUT as u32, &VINPUT_CLASS)
            .inspect_err(|_| pr_err!("Unable to register vinput class\n"))?;
        Ok(Self { _class: class })
    }
}

impl Drop for VinputModule {
    fn drop(&mut self) {
        pr_info!("Unloading virtual input driver\n");
        // Type modules use vinput's symbols, so they are all gone, and their devices with them;
        // nodes must go before the class anyway.
        let mut state = STATE.lock();
        state.remove_devices(|_| true);
        // A global is never dropped: the types' buffer, allocated at the first registration and
        // kept when the last type leaves, is freed here (kmemleak found it after the unload).
        state.types = KVec::new();
    }
}
