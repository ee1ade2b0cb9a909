// SPDX-License-Identifier: GPL-2.0

//! A safe Ethernet network device: C's `alloc_etherdev()` + `register_netdev()` with a
//! `struct net_device_ops` whose `ndo_start_xmit` calls a Rust handler, owned socket buffers
//! (`struct sk_buff`), `netif_rx()` to receive, and the device's packet counters.
//!
//! Linux 7.2's Rust has no `net_device` abstraction. The C half, `netdev_glue.c`, sets the
//! device up and calls back into Rust; a module using this links both (see
//! kmods/lkmpg/vnetloop/Kbuild). Dropping a [`Registration`] unregisters the device (closing it
//! if it is up, waiting for transmits in flight) and frees it, then the handler.
//!
//! The transmit handler runs with bottom halves disabled: it must not sleep.

use core::ptr::NonNull;
use kernel::{ffi, prelude::*};

/// An opaque `struct net_device`.
#[repr(C)]
struct RawNetDev {
    _opaque: [u8; 0],
}

/// An opaque `struct sk_buff`.
#[repr(C)]
struct RawSkb {
    _opaque: [u8; 0],
}

type XmitFn = unsafe extern "C" fn(*mut ffi::c_void, *mut RawNetDev, *mut RawSkb);

extern "C" {
    fn rustkm_netdev_register(
        name: *const ffi::c_char,
        xmit: XmitFn,
        data: *mut ffi::c_void,
        err: *mut ffi::c_int,
    ) -> *mut RawNetDev;
    fn rustkm_netdev_unregister(dev: *mut RawNetDev);
    fn rustkm_netdev_name(dev: *mut RawNetDev) -> *const ffi::c_char;
    fn rustkm_netdev_count_tx(dev: *mut RawNetDev, len: ffi::c_uint);
    fn rustkm_netdev_count_rx_dropped(dev: *mut RawNetDev);
    fn rustkm_netdev_receive(dev: *mut RawNetDev, skb: *mut RawSkb);
    fn rustkm_skb_copy(skb: *mut RawSkb) -> *mut RawSkb;
    fn rustkm_skb_free(skb: *mut RawSkb);
    fn rustkm_skb_len(skb: *mut RawSkb) -> ffi::c_uint;
    fn rustkm_skb_data(skb: *mut RawSkb, headlen: *mut ffi::c_uint) -> *const u8;
}

/// What a network device does with the packets sent on it.
pub(crate) trait NetDevHandler: Send + Sync + 'static {
    /// Transmits `skb` on `dev` (C's `ndo_start_xmit`). Called with bottom halves disabled: must
    /// not sleep. The handler owns `skb`; dropping it frees it.
    fn start_xmit(&self, dev: &NetDev<'_>, skb: SkBuff);
}

/// A registered network device, borrowed for the duration of a handler call.
///
/// # Invariants
///
/// `raw` is a registered `struct net_device` from `rustkm_netdev_register`, alive for `'a`.
pub(crate) struct NetDev<'a> {
    raw: NonNull<RawNetDev>,
    _life: core::marker::PhantomData<&'a ()>,
}

impl NetDev<'_> {
    /// The interface name, e.g. `vnetloop0`.
    pub(crate) fn name(&self) -> &CStr {
        // SAFETY: by the invariant the device is alive; its name is a NUL-terminated string
        // inside it, set at registration (renames happen under RTNL, while the device lives).
        unsafe { CStr::from_char_ptr(rustkm_netdev_name(self.raw.as_ptr())) }
    }

    /// Counts a transmitted packet of `len` bytes in the device's statistics.
    pub(crate) fn count_tx(&self, len: u32) {
        // SAFETY: by the invariant the device is alive; the counters are atomic.
        unsafe { rustkm_netdev_count_tx(self.raw.as_ptr(), len) };
    }

    /// Counts a received packet that was dropped.
    pub(crate) fn count_rx_dropped(&self) {
        // SAFETY: by the invariant the device is alive; the counters are atomic.
        unsafe { rustkm_netdev_count_rx_dropped(self.raw.as_ptr()) };
    }

    /// Hands `skb`, an Ethernet frame, to the device's receive path (C's `eth_type_trans()` +
    /// `netif_rx()`), counting it as received. Callable from any context.
    pub(crate) fn receive(&self, skb: SkBuff) {
        let raw = skb.raw.as_ptr();
        core::mem::forget(skb);
        // SAFETY: by the invariant the device is alive; `raw` is an owned skb (its `SkBuff`
        // was forgotten above), whose ownership passes to the network stack.
        unsafe { rustkm_netdev_receive(self.raw.as_ptr(), raw) };
    }
}

/// An owned socket buffer (`struct sk_buff`); freed when dropped.
///
/// # Invariants
///
/// `raw` is a valid `struct sk_buff` that this `SkBuff` owns.
pub(crate) struct SkBuff {
    raw: NonNull<RawSkb>,
}

// SAFETY: an owned skb may be passed to and freed on any thread.
unsafe impl Send for SkBuff {}

impl SkBuff {
    /// The packet's length in bytes (all of its data, linear or not).
    pub(crate) fn len(&self) -> u32 {
        // SAFETY: by the invariant `raw` is a valid skb.
        unsafe { rustkm_skb_len(self.raw.as_ptr()) }
    }

    /// The linear part of the packet's data (its start: the Ethernet header on transmit).
    #[allow(dead_code)] // Part of the wrapper; vnetloop does not look inside packets.
    pub(crate) fn head(&self) -> &[u8] {
        let mut len: ffi::c_uint = 0;
        // SAFETY: by the invariant `raw` is a valid skb; `len` is writable.
        let data = unsafe { rustkm_skb_data(self.raw.as_ptr(), &mut len) };
        if data.is_null() {
            return &[];
        }
        // SAFETY: `data` has `len` linear bytes, which live as long as the owned skb, and
        // nobody else writes them while we own it.
        unsafe { core::slice::from_raw_parts(data, len as usize) }
    }

    /// A private copy of the packet (C's `skb_copy(skb, GFP_ATOMIC)`); fine in atomic context.
    pub(crate) fn try_copy(&self) -> Result<SkBuff> {
        // SAFETY: by the invariant `raw` is a valid skb.
        let copy = unsafe { rustkm_skb_copy(self.raw.as_ptr()) };
        // INVARIANT: a new skb from `skb_copy`, owned by us.
        Ok(SkBuff {
            raw: NonNull::new(copy).ok_or(ENOMEM)?,
        })
    }
}

impl Drop for SkBuff {
    fn drop(&mut self) {
        // SAFETY: by the invariant we own the skb; it is not used after this.
        unsafe { rustkm_skb_free(self.raw.as_ptr()) };
    }
}

/// The C `ndo_start_xmit` callback of a device whose handler is a `T`.
///
/// # Safety
///
/// `data` is the handler of a live [`Registration<T>`], `dev` its device and `skb` an skb the
/// caller gives up.
unsafe extern "C" fn start_xmit<T: NetDevHandler>(
    data: *mut ffi::c_void,
    dev: *mut RawNetDev,
    skb: *mut RawSkb,
) {
    // SAFETY: per the contract `data` is the `T` of the registration, alive until the device is
    // unregistered, which waits for transmits in flight.
    let handler = unsafe { &*data.cast::<T>() };
    let (Some(dev), Some(skb)) = (NonNull::new(dev), NonNull::new(skb)) else {
        return;
    };
    // INVARIANT: `dev` is registered and alive for this call.
    let dev = NetDev {
        raw: dev,
        _life: core::marker::PhantomData,
    };
    // INVARIANT: the skb is ours per the contract.
    handler.start_xmit(&dev, SkBuff { raw: skb });
}

/// A registered Ethernet device running a `T`; unregistered and freed when dropped.
///
/// # Invariants
///
/// `raw` is a device from `rustkm_netdev_register` whose handler data is `handler`'s `T`, not
/// yet unregistered.
pub(crate) struct Registration<T: NetDevHandler> {
    raw: NonNull<RawNetDev>,
    handler: KBox<T>,
}

// SAFETY: the device may be used and unregistered from any thread; `T` is `Send + Sync`.
unsafe impl<T: NetDevHandler> Send for Registration<T> {}
// SAFETY: a shared `Registration` only reads the name and gives a `&T` (`T: Sync`).
unsafe impl<T: NetDevHandler> Sync for Registration<T> {}

impl<T: NetDevHandler> Registration<T> {
    /// Registers a new Ethernet device with a random MAC address, no ARP, down. `name` may hold
    /// a `%d` for the kernel to fill in (e.g. `c"vnetloop%d"`).
    pub(crate) fn register(name: &CStr, handler: T) -> Result<Self> {
        let handler = KBox::new(handler, GFP_KERNEL)?;
        let data = core::ptr::from_ref(&*handler)
            .cast_mut()
            .cast::<ffi::c_void>();
        let mut err: ffi::c_int = 0;
        // SAFETY: `name` is NUL-terminated; `start_xmit::<T>` gets `data`, the boxed `T`, which
        // stays at its address until `drop` has unregistered the device; `err` is writable.
        let raw =
            unsafe { rustkm_netdev_register(name.as_char_ptr(), start_xmit::<T>, data, &mut err) };
        let Some(raw) = NonNull::new(raw) else {
            return Err(Error::from_errno(err));
        };
        // INVARIANT: `raw` is a new registered device with `handler` as its data.
        Ok(Self { raw, handler })
    }

    /// The device, to read its name.
    pub(crate) fn dev(&self) -> NetDev<'_> {
        // INVARIANT: registered until `self` is dropped.
        NetDev {
            raw: self.raw,
            _life: core::marker::PhantomData,
        }
    }

    /// The handler.
    #[allow(dead_code)] // Part of the wrapper; vnetloop keeps no state in its handler.
    pub(crate) fn handler(&self) -> &T {
        &self.handler
    }
}

impl<T: NetDevHandler> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: by the invariant the device is registered; after this no callback runs, so
        // the handler may be freed (after this function) with the struct's fields.
        unsafe { rustkm_netdev_unregister(self.raw.as_ptr()) };
    }
}
