// SPDX-License-Identifier: GPL-2.0

//! LKMPG dma in Rust: a synthetic platform device, and a platform driver whose probe sets a
//! 32-bit DMA mask, allocates a coherent buffer and maps a streaming buffer for the device.
//!
//! No hardware is driven. The probe logs the coherent buffer's DMA address and size, the
//! streaming buffer's DMA address and size, and the mask; unbinding (at rmmod) logs "DMA demo
//! removed" and frees both (the streaming mapping is undone first). Unlike the original, which
//! unmaps the streaming buffer within the probe, the mapping here lives as long as the device is
//! bound, as a driver's would; its address is logged too. `coherent_size` and `streaming_size`
//! (bytes, default one page) must be 1 to 1 MiB.

use kernel::{
    device::Core,
    dma::{Coherent, DataDirection, Device, DmaMask},
    driver, platform,
    prelude::*,
    scatterlist::{Owned, SGTable},
    sync::aref::ARef,
};

#[path = "../../lib/compat.rs"]
mod compat;
#[path = "../../lib/platform_device.rs"]
mod platform_device;

use platform_device::DeviceRegistration;

module! {
    type: DmaModule,
    name: "dma",
    authors: ["rustkm"],
    description: "LKMPG DMA API demo module",
    license: "GPL",
    params: {
        coherent_size: u32 {
            default: 4096,
            description: "Size of the coherent DMA buffer",
        },
        streaming_size: u32 {
            default: 4096,
            description: "Size of the streaming DMA buffer",
        },
    },
}

const NAME: &CStr = c"lkmpg_dma_demo";
const MAX_SIZE: usize = 1 << 20;
/// The filler the original writes into the streaming buffer.
const FILL: u8 = 0x5a;

/// A size parameter, checked.
fn size(value: u32) -> Result<usize> {
    usize::try_from(value)
        .ok()
        .filter(|n| (1..=MAX_SIZE).contains(n))
        .ok_or(EINVAL)
}

/// What the driver holds while bound to the device.
struct DmaDemo {
    _pdev: ARef<platform::Device>,
    _coherent: Coherent<[u8]>,
    /// The streaming buffer, mapped for the device while this lives.
    _streaming: Pin<KBox<SGTable<Owned<VVec<u8>>>>>,
}

impl DmaDemo {
    /// The original's probe: DMA mask, coherent buffer, streaming mapping.
    fn new(pdev: &platform::Device<Core<'_>>) -> Result<Self> {
        let dev = pdev.as_ref();
        let mask = DmaMask::new::<32>();
        // SAFETY: nothing else allocates or maps for this device during its probe.
        unsafe { pdev.dma_set_mask_and_coherent(mask) }
            .inspect_err(|_| dev_err!(dev, "failed to set DMA mask\n"))?;

        let coherent_len = size(compat::param(&module_parameters::coherent_size))?;
        let streaming_len = size(compat::param(&module_parameters::streaming_size))?;
        let coherent = Coherent::<u8>::zeroed_slice(dev, coherent_len, GFP_KERNEL)
            .inspect_err(|_| dev_err!(dev, "failed to allocate coherent buffer\n"))?;

        let mut buffer = VVec::with_capacity(streaming_len, GFP_KERNEL)?;
        buffer.extend_with(streaming_len, FILL, GFP_KERNEL)?;
        let streaming = KBox::pin_init(
            SGTable::new(dev, buffer, DataDirection::ToDevice, GFP_KERNEL),
            GFP_KERNEL,
        )
        .inspect_err(|_| dev_err!(dev, "failed to map streaming buffer\n"))?;
        let streaming_handle = streaming.iter().next().map_or(0, |e| e.dma_address());
        // 7.3 renamed `Coherent::dma_handle()` to `dma_address()`: a presence probe in
        // rustkm-module.toml asks the target kernel which one it has.
        #[cfg(rustkm_has_coherent_dma_address)]
        let coherent_handle = coherent.dma_address();
        #[cfg(not(rustkm_has_coherent_dma_address))]
        let coherent_handle = coherent.dma_handle();

        dev_info!(
            dev,
            "coherent={:#x}/{} streaming={:#x}/{} DMA mask={:#x}\n",
            coherent_handle,
            coherent_len,
            streaming_handle,
            streaming_len,
            mask.value()
        );
        Ok(DmaDemo {
            _pdev: pdev.into(),
            _coherent: coherent,
            _streaming: streaming,
        })
    }
}

impl platform::Driver for DmaDemo {
    type IdInfo = ();
    type Data<'bound> = Self;

    fn probe<'bound>(
        pdev: &'bound platform::Device<Core<'_>>,
        _info: Option<&'bound Self::IdInfo>,
    ) -> impl PinInit<Self, Error> + 'bound {
        Self::new(pdev)
    }

    fn unbind<'bound>(dev: &'bound platform::Device<Core<'_>>, _this: Pin<&Self>) {
        dev_info!(dev.as_ref(), "DMA demo removed\n");
    }
}

#[pin_data]
struct DmaModule {
    /// Dropped first: the driver unbinds from the device before the device goes.
    #[pin]
    _driver: driver::Registration<platform::Adapter<DmaDemo>>,
    _device: DeviceRegistration,
}

impl kernel::InPlaceModule for DmaModule {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        pin_init::pin_init_scope(move || {
            size(compat::param(&module_parameters::coherent_size))?;
            size(compat::param(&module_parameters::streaming_size))?;
            let device = DeviceRegistration::register_bare(NAME)?;
            Ok(try_pin_init!(Self {
                _device: device,
                _driver <- driver::Registration::new(NAME, module),
            }))
        })
    }
}
