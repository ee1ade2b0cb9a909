// SPDX-License-Identifier: GPL-2.0

//! A PCI driver for QEMU's `edu` teaching device (`-device edu`, QEMU's docs/specs/edu.rst).
//!
//! Each bound device gets /dev/eduN (N = 0..3, in probe order):
//!
//! - `read`/`write` at positions 0..4096 move data between user space and the device's own
//!   4 KiB buffer (at 0x40000 in its address space) through the DMA engine: the bytes go
//!   through a coherent buffer of the kernel's DMA API, and each transfer is completed by the
//!   device's DMA interrupt. A write or read is cut at the end of the buffer (a write that
//!   starts there fails with `ENOSPC`, a read returns 0).
//! - `ioctl`: `EDU_IOC_ID` (the identification register, 0x010000ed), `EDU_IOC_LIVENESS`
//!   (writes a value, returns the register, which reads back its bitwise inverse) and
//!   `EDU_IOC_FACTORIAL` (n in, n! modulo 2^32 out: the device computes it in a thread of its
//!   own and raises its factorial interrupt when done).
//!
//! The interrupt (MSI: the guest has no routing for INTx) goes to a threaded handler that
//! reads and acknowledges the device's interrupt status and wakes the waiter. A waiter gives
//! up after `timeout_ms` (module parameter, default 1000) with `ETIMEDOUT`, on a signal with
//! `EINTR`, and at unbind with `ENODEV`. One operation runs on a device at a time; a device
//! left busy by an abandoned one answers `EBUSY` until it is idle.
//!
//! An open file holds the device's state (an `Arc`): after an unbind or a removal of the
//! device its calls fail with `ENODEV` (the BAR mapping is revoked at unbind); the module
//! stays loaded while a file is open.
//!
//! Each bound device also gets an auxiliary device, `edu.selftest.N`, as drivers of
//! multi-function hardware split it into functions on the auxiliary bus. Its driver (in this
//! module: the registration data is a Rust type only this module knows) checks the parent
//! through its registers and interrupt (identification, liveness, 10!) and refuses to bind
//! with `EIO` if the device does not behave. It goes before the parent's state at unbind.

use kernel::{
    auxiliary, bindings,
    device::{Bound, Core, Device},
    devres::Devres,
    dma::{Coherent, Device as _, DmaMask},
    driver,
    fs::{File, Kiocb},
    io::Io,
    ioctl::{_IOR, _IOWR},
    iov::{IovIterDest, IovIterSource},
    irq::{self, IrqReturn, ThreadedHandler},
    miscdevice::{MiscDevice, MiscDeviceRegistration},
    new_condvar, new_mutex, pci,
    prelude::*,
    sync::{
        aref::ARef,
        atomic::{Atomic, Full},
        Arc, ArcBorrow, CondVar, Mutex,
    },
    time::{delay::fsleep, msecs_to_jiffies, Delta},
    types::ForLt,
    uaccess::{UserPtr, UserSlice},
};

#[path = "../../lib/compat.rs"]
mod compat;
#[path = "../../lib/devmisc.rs"]
mod devmisc;

module! {
    type: EduModule,
    name: "edu",
    authors: ["rustkm"],
    description: "Driver for QEMU's edu PCI device: MMIO, interrupts, DMA",
    license: "GPL",
    params: {
        timeout_ms: u32 {
            default: 1000,
            description: "How long to wait for the device's interrupt (ms, 1 to 60000)",
        },
    },
}

// Registers of BAR 0 (QEMU docs/specs/edu.rst).
const REG_ID: usize = 0x00;
const REG_LIVENESS: usize = 0x04;
const REG_FACTORIAL: usize = 0x08;
const REG_STATUS: usize = 0x20;
const REG_IRQ_STATUS: usize = 0x24;
const REG_IRQ_ACK: usize = 0x64;
const REG_DMA_SRC: usize = 0x80;
const REG_DMA_DST: usize = 0x88;
const REG_DMA_COUNT: usize = 0x90;
const REG_DMA_CMD: usize = 0x98;
/// The registers this driver uses lie below this offset (the BAR is 1 MiB).
const BAR_SIZE: usize = 0x100;

const STATUS_COMPUTING: u32 = 0x01;
const STATUS_IRQ_FACTORIAL: u32 = 0x80;
const IRQ_FACTORIAL: u32 = 0x001;
const IRQ_DMA: u32 = 0x100;
const DMA_RUN: u64 = 0x1;
const DMA_TO_RAM: u64 = 0x2;
const DMA_IRQ: u64 = 0x4;
/// The device's DMA buffer: its address on the device's side, and its size.
const DEVICE_BUFFER: u64 = 0x40000;
const BUFFER_SIZE: usize = 4096;
/// The device clamps DMA addresses to 28 bits (its `dma_mask` property).
const DMA_BITS: u32 = 28;
/// How many devices get a /dev node.
const NAMES: [&CStr; 4] = [c"edu0", c"edu1", c"edu2", c"edu3"];

/// `_IOR('E', 1, __u32)`: the identification register.
const EDU_IOC_ID: u32 = _IOR::<u32>(b'E' as u32, 1);
/// `_IOWR('E', 2, __u32)`: write the liveness register, read it back.
const EDU_IOC_LIVENESS: u32 = _IOWR::<u32>(b'E' as u32, 2);
/// `_IOWR('E', 3, __u32)`: the factorial of the value passed, modulo 2^32.
const EDU_IOC_FACTORIAL: u32 = _IOWR::<u32>(b'E' as u32, 3);

/// The /dev names in use (bit N: eduN).
static NAMES_USED: Atomic<u32> = Atomic::new(0);

/// The file operations of /dev/eduN: a `static`, so that files outlive an unbind.
static FOPS: devmisc::FileOps<EduFile, Arc<Edu>> = devmisc::FileOps::new(&THIS_MODULE);

type Bar0 = pci::Bar<'static, BAR_SIZE>;

/// What the interrupt handler tells the waiters: `done` holds interrupt bits not yet
/// consumed; `gone` is set at unbind.
struct Events {
    done: u32,
    gone: bool,
}

/// A bound device, shared by the driver, the interrupt handler and open files.
#[pin_data]
struct Edu {
    pdev: ARef<pci::Device>,
    bar: Devres<Bar0>,
    /// The DMA buffer on the CPU's side; only touched with `op` held while the device's DMA
    /// engine is idle.
    dma: Coherent<[u8]>,
    /// One operation at a time.
    #[pin]
    op: Mutex<()>,
    #[pin]
    events: Mutex<Events>,
    #[pin]
    wake: CondVar,
}

impl Edu {
    fn read32(&self, offset: usize) -> Result<u32> {
        self.bar
            .try_access_with(|bar| bar.try_read32(offset))
            .ok_or(ENODEV)?
    }

    fn write32(&self, value: u32, offset: usize) -> Result {
        self.bar
            .try_access_with(|bar| bar.try_write32(value, offset))
            .ok_or(ENODEV)?
    }

    fn read64(&self, offset: usize) -> Result<u64> {
        self.bar
            .try_access_with(|bar| bar.try_read64(offset))
            .ok_or(ENODEV)?
    }

    fn write64(&self, value: u64, offset: usize) -> Result {
        self.bar
            .try_access_with(|bar| bar.try_write64(value, offset))
            .ok_or(ENODEV)?
    }

    /// `EBUSY` while the device still computes or transfers for an abandoned operation.
    fn check_idle(&self) -> Result {
        if self.read32(REG_STATUS)? & STATUS_COMPUTING != 0
            || self.read64(REG_DMA_CMD)? & DMA_RUN != 0
        {
            return Err(EBUSY);
        }
        Ok(())
    }

    /// Forgets an earlier, abandoned operation's interrupt of kind `bits`.
    fn clear_events(&self, bits: u32) -> Result {
        let mut events = self.events.lock();
        if events.gone {
            return Err(ENODEV);
        }
        events.done &= !bits;
        Ok(())
    }

    /// Waits for an interrupt of kind `bits`.
    fn wait_for(&self, bits: u32) -> Result {
        let timeout = (*module_parameters::timeout_ms.value()).clamp(1, 60_000);
        let mut left = msecs_to_jiffies(timeout);
        let mut events = self.events.lock();
        loop {
            if events.gone {
                return Err(ENODEV);
            }
            if events.done & bits != 0 {
                events.done &= !bits;
                return Ok(());
            }
            match self.wake.wait_interruptible_timeout(&mut events, left) {
                kernel::sync::CondVarTimeoutResult::Timeout => {
                    // Seen once more: the interrupt may have come with the timeout.
                    if events.done & bits != 0 {
                        events.done &= !bits;
                        return Ok(());
                    }
                    return Err(ETIMEDOUT);
                }
                kernel::sync::CondVarTimeoutResult::Signal { .. } => return Err(EINTR),
                kernel::sync::CondVarTimeoutResult::Woken { jiffies } => left = jiffies,
            }
        }
    }

    /// After a timeout: lower the interrupt the device may raise late, so that a shared
    /// line does not stay asserted.
    fn abandon(&self, bits: u32) {
        let _ = self.write32(bits, REG_IRQ_ACK);
        dev_warn!(
            self.pdev,
            "no interrupt {:#x} within {} ms\n",
            bits,
            module_parameters::timeout_ms.value()
        );
    }

    fn factorial(&self, n: u32) -> Result<u32> {
        let _op = self.op.lock();
        self.check_idle()?;
        self.clear_events(IRQ_FACTORIAL)?;
        self.write32(STATUS_IRQ_FACTORIAL, REG_STATUS)?;
        self.write32(n, REG_FACTORIAL)?;
        if let Err(e) = self.wait_for(IRQ_FACTORIAL) {
            if e == ETIMEDOUT {
                self.abandon(IRQ_FACTORIAL);
            }
            return Err(e);
        }
        self.read32(REG_FACTORIAL)
    }

    fn liveness(&self, value: u32) -> Result<u32> {
        let _op = self.op.lock();
        self.write32(value, REG_LIVENESS)?;
        self.read32(REG_LIVENESS)
    }

    /// One DMA transfer of `len` bytes between the coherent buffer's start and the device
    /// buffer at `offset`. The caller holds `op` and checked that the device is idle.
    fn transfer(&self, offset: usize, len: usize, to_ram: bool) -> Result {
        let end = offset.checked_add(len).ok_or(EINVAL)?;
        if len == 0 || end > BUFFER_SIZE || len > self.dma.len() {
            return Err(EINVAL);
        }
        let ram = self.dma.dma_handle();
        let device = DEVICE_BUFFER + offset as u64;
        self.clear_events(IRQ_DMA)?;
        let (src, dst) = if to_ram { (device, ram) } else { (ram, device) };
        self.write64(src, REG_DMA_SRC)?;
        self.write64(dst, REG_DMA_DST)?;
        self.write64(len as u64, REG_DMA_COUNT)?;
        let direction = if to_ram { DMA_TO_RAM } else { 0 };
        self.write64(DMA_RUN | direction | DMA_IRQ, REG_DMA_CMD)?;
        if let Err(e) = self.wait_for(IRQ_DMA) {
            if e == ETIMEDOUT {
                self.abandon(IRQ_DMA);
            }
            return Err(e);
        }
        Ok(())
    }

    /// Waits (at most about a second) until an abandoned operation has finished with the
    /// device, so that no transfer runs after unbind.
    fn quiesce(&self) {
        for _ in 0..100 {
            match self.check_idle() {
                Err(e) if e == EBUSY => fsleep(Delta::from_millis(10)),
                _ => return,
            }
        }
        dev_warn!(self.pdev, "still busy at unbind\n");
    }
}

/// The interrupt handler: the hard half wakes the thread, which reads and acknowledges the
/// device's interrupt status and passes it to the waiters.
struct Handler {
    edu: Arc<Edu>,
}

impl ThreadedHandler for Handler {
    fn handle_threaded(&self, dev: &Device<Bound>) -> IrqReturn {
        // The BAR is revoked after the interrupt is freed, so it is there while this runs.
        let Ok(bar) = self.edu.bar.access(dev) else {
            return IrqReturn::None;
        };
        let Ok(status) = bar.try_read32(REG_IRQ_STATUS) else {
            return IrqReturn::None;
        };
        if status == 0 {
            return IrqReturn::None;
        }
        let _ = bar.try_write32(status, REG_IRQ_ACK);
        self.edu.events.lock().done |= status;
        self.edu.wake.notify_all();
        IrqReturn::Handled
    }
}

/// A claimed /dev name, given back when dropped.
struct NameSlot(usize);

impl NameSlot {
    fn claim() -> Result<Self> {
        for index in 0..NAMES.len() {
            let bit = 1u32 << index;
            let mut used = NAMES_USED.load(kernel::sync::atomic::Relaxed);
            while used & bit == 0 {
                match NAMES_USED.cmpxchg(used, used | bit, Full) {
                    Ok(_) => return Ok(Self(index)),
                    Err(now) => used = now,
                }
            }
        }
        Err(ENOSPC)
    }

    fn name(&self) -> &'static CStr {
        NAMES[self.0]
    }

    fn index(&self) -> u32 {
        u32::try_from(self.0).unwrap_or(u32::MAX)
    }
}

impl Drop for NameSlot {
    fn drop(&mut self) {
        let bit = 1u32 << self.0;
        let mut used = NAMES_USED.load(kernel::sync::atomic::Relaxed);
        while let Err(now) = NAMES_USED.cmpxchg(used, used & !bit, Full) {
            used = now;
        }
    }
}

/// The registration data of the self-test auxiliary device: the parent's state.
type SelfTestData = ForLt!(Arc<Edu>);

/// What the driver keeps while bound. Dropped in this order: the auxiliary device, the /dev
/// node, the interrupt (freed, so the handler's reference goes), then the name.
#[pin_data]
struct EduData<'bound> {
    selftest: auxiliary::Registration<'bound, SelfTestData>,
    #[pin]
    misc: devmisc::Registration<Arc<Edu>>,
    #[pin]
    irq: irq::ThreadedRegistration<Handler>,
    edu: Arc<Edu>,
    name: NameSlot,
}

struct EduDriver;

/// QEMU's edu: vendor 0x1234, device 0x11e8. 7.2's `pci::Vendor` can only name vendors of
/// the kernel's list, which lacks QEMU's test vendor 0x1234, so the ID is built raw.
const EDU_ID: pci::DeviceId = {
    const ANY: u32 = !0;
    let raw = bindings::pci_device_id {
        vendor: 0x1234,
        device: 0x11e8,
        subvendor: ANY,
        subdevice: ANY,
        class: 0,
        class_mask: 0,
        driver_data: 0,
        override_only: 0,
    };
    // SAFETY: `pci::DeviceId` is a `#[repr(transparent)]` wrapper of `struct pci_device_id`
    // (the PCI core's probe callback casts one to the other) and adds no invariant.
    unsafe { core::mem::transmute::<bindings::pci_device_id, pci::DeviceId>(raw) }
};

compat::device_table!(
    pci_device_table,
    PCI_TABLE,
    MODULE_PCI_TABLE,
    <EduDriver as pci::Driver>::IdInfo,
    [(EDU_ID, ())]
);

impl pci::Driver for EduDriver {
    type IdInfo = ();
    type Data<'bound> = EduData<'bound>;
    const ID_TABLE: pci::IdTable<Self::IdInfo> = &PCI_TABLE;

    fn probe<'bound>(
        pdev: &'bound pci::Device<Core<'_>>,
        _info: &'bound Self::IdInfo,
    ) -> impl PinInit<EduData<'bound>, Error> + 'bound {
        pin_init::pin_init_scope(move || {
            pdev.enable_device_mem()?;
            pdev.set_master();
            let bar = pdev.iomap_region_sized::<BAR_SIZE>(0, c"edu")?;
            let id = bar.try_read32(REG_ID)?;
            if id & 0xff != 0xed {
                dev_err!(pdev, "not an edu device: identification {:#010x}\n", id);
                return Err(ENODEV);
            }
            // SAFETY: nothing else allocates or maps DMA memory for this device yet.
            unsafe { pdev.dma_set_mask_and_coherent(DmaMask::new::<DMA_BITS>())? };
            let dma = Coherent::<u8>::zeroed_slice(pdev.as_ref(), BUFFER_SIZE, GFP_KERNEL)?;
            let edu = Arc::pin_init(
                try_pin_init!(Edu {
                    pdev: pdev.into(),
                    bar: bar.into_devres()?,
                    dma,
                    op <- new_mutex!(()),
                    events <- new_mutex!(Events {
                        done: 0,
                        gone: false
                    }),
                    wake <- new_condvar!(),
                }),
                GFP_KERNEL,
            )?;
            // MSI only: without ACPI the guest cannot route the INTx pin.
            let msi = pci::IrqTypes::default().with(pci::IrqType::Msi);
            let vector = *pdev.alloc_irq_vectors(1, 1, msi)?.start();
            let name = NameSlot::claim()?;
            dev_info!(
                pdev,
                "edu {}.{} at /dev/{}, DMA buffer at {:#x}\n",
                id >> 24,
                (id >> 16) & 0xff,
                name.name().to_str().unwrap_or("?"),
                edu.dma.dma_handle()
            );
            let handler = Handler { edu: edu.clone() };
            Ok(try_pin_init!(EduData {
                irq <- pdev.request_threaded_irq(
                    vector,
                    irq::Flags::ONESHOT,
                    c"edu",
                    Ok::<_, Error>(handler)
                ),
                misc <- devmisc::Registration::register(
                    name.name(),
                    &FOPS,
                    pdev.as_ref(),
                    edu.clone()
                ),
                // Last: its driver may bind at once and use the interrupt.
                selftest: auxiliary::Registration::new(
                    pdev.as_ref(),
                    SELFTEST,
                    name.index(),
                    MODULE_NAME,
                    edu.clone()
                )?,
                edu,
                name,
            }))
        })
    }

    fn unbind<'bound>(pdev: &'bound pci::Device<Core<'_>>, this: Pin<&EduData<'bound>>) {
        {
            let mut events = this.edu.events.lock();
            events.gone = true;
        }
        this.edu.wake.notify_all();
        // Waiters leave with ENODEV; an operation between its checks and its wait finishes
        // its register writes under `op`, which is taken here until the device is idle.
        let _op = this.edu.op.lock();
        this.edu.quiesce();
        let _ = this.edu.write32(0, REG_STATUS);
        dev_info!(pdev, "unbound\n");
    }
}

/// One open file of /dev/eduN: the device's state.
struct EduFile;

impl EduFile {
    fn io_len(pos: i64, wanted: usize) -> Result<(usize, usize)> {
        let pos = usize::try_from(pos).map_err(|_| EINVAL)?;
        let len = wanted.min(BUFFER_SIZE.saturating_sub(pos));
        Ok((pos, len))
    }
}

#[vtable]
impl MiscDevice for EduFile {
    type Ptr = Arc<Edu>;

    fn open(_file: &File, misc: &MiscDeviceRegistration<Self>) -> Result<Arc<Edu>> {
        // SAFETY: /dev/eduN is registered only by `EduData`, with `FOPS`; this is its open.
        let edu: &Arc<Edu> = unsafe { devmisc::context(misc) };
        Ok(edu.clone())
    }

    fn read_iter(mut kiocb: Kiocb<'_, Self::Ptr>, iov: &mut IovIterDest<'_>) -> Result<usize> {
        let edu: ArcBorrow<'_, Edu> = kiocb.file();
        let (pos, len) = Self::io_len(kiocb.ki_pos(), iov.len())?;
        if len == 0 {
            return Ok(0);
        }
        let _op = edu.op.lock();
        edu.check_idle()?;
        edu.transfer(pos, len, true)?;
        // SAFETY: the DMA engine is idle (the transfer completed) and `op` is held, so
        // nothing writes the buffer while it is read here.
        let data = unsafe { edu.dma.as_ref() };
        let copied = iov.copy_to_iter(data.get(..len).ok_or(EINVAL)?);
        if copied == 0 {
            return Err(EFAULT);
        }
        *kiocb.ki_pos_mut() += copied as i64;
        Ok(copied)
    }

    fn write_iter(mut kiocb: Kiocb<'_, Self::Ptr>, iov: &mut IovIterSource<'_>) -> Result<usize> {
        let edu: ArcBorrow<'_, Edu> = kiocb.file();
        let (pos, len) = Self::io_len(kiocb.ki_pos(), iov.len())?;
        if len == 0 {
            return if iov.is_empty() { Ok(0) } else { Err(ENOSPC) };
        }
        let _op = edu.op.lock();
        edu.check_idle()?;
        // SAFETY: the DMA engine is idle and `op` is held: nothing else reads or writes the
        // buffer until the transfer below starts.
        let buffer = unsafe { edu.dma.as_mut() };
        let copied = iov.copy_from_iter(buffer.get_mut(..len).ok_or(EINVAL)?);
        if copied == 0 {
            return Err(EFAULT);
        }
        edu.transfer(pos, copied, false)?;
        *kiocb.ki_pos_mut() += copied as i64;
        Ok(copied)
    }

    fn ioctl(edu: ArcBorrow<'_, Edu>, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        let user = UserSlice::new(UserPtr::from_addr(arg), core::mem::size_of::<u32>());
        match cmd {
            EDU_IOC_ID => {
                let id = edu.read32(REG_ID)?;
                user.writer().write(&id)?;
            }
            EDU_IOC_LIVENESS | EDU_IOC_FACTORIAL => {
                let (mut reader, mut writer) = user.reader_writer();
                let value: u32 = reader.read()?;
                let result = if cmd == EDU_IOC_LIVENESS {
                    edu.liveness(value)?
                } else {
                    edu.factorial(value)?
                };
                writer.write(&result)?;
            }
            _ => return Err(ENOTTY),
        }
        Ok(0)
    }
}

const MODULE_NAME: &CStr = <EduModule as kernel::ModuleMetadata>::NAME;
/// The auxiliary devices' name: `edu.selftest.N`.
const SELFTEST: &CStr = c"selftest";

/// The driver of `edu.selftest.N`: binds if the parent device behaves as edu.rst says.
struct SelfTestDriver;

compat::device_table!(
    auxiliary_device_table,
    AUX_TABLE,
    MODULE_AUX_TABLE,
    <SelfTestDriver as auxiliary::Driver>::IdInfo,
    [(auxiliary::DeviceId::new(MODULE_NAME, SELFTEST), ())]
);

impl SelfTestDriver {
    fn check(edu: &Edu) -> Result<()> {
        let id = edu.read32(REG_ID)?;
        let live = edu.liveness(0x5a5a_5a5a)?;
        let fact = edu.factorial(10)?;
        if id != 0x0100_00ed || live != 0xa5a5_a5a5 || fact != 3_628_800 {
            dev_err!(
                edu.pdev,
                "self-test: id {:#x}, liveness {:#x}, 10! = {}\n",
                id,
                live,
                fact
            );
            return Err(EIO);
        }
        Ok(())
    }
}

impl auxiliary::Driver for SelfTestDriver {
    type IdInfo = ();
    type Data<'bound> = ();
    const ID_TABLE: auxiliary::IdTable<Self::IdInfo> = &AUX_TABLE;

    fn probe<'bound>(
        adev: &'bound auxiliary::Device<Core<'_>>,
        _info: &'bound Self::IdInfo,
    ) -> impl PinInit<(), Error> + 'bound {
        let edu = adev.registration_data::<SelfTestData>()?;
        match Self::check(&edu) {
            Ok(()) => {
                dev_info!(adev, "self-test of the parent passed\n");
                Ok(())
            }
            Err(e) => {
                dev_err!(
                    adev,
                    "self-test of the parent failed: error {}\n",
                    e.to_errno()
                );
                Err(EIO)
            }
        }
    }
}

#[pin_data]
struct EduModule {
    #[pin]
    driver: driver::Registration<pci::Adapter<EduDriver>>,
    #[pin]
    selftest: driver::Registration<auxiliary::Adapter<SelfTestDriver>>,
}

impl kernel::InPlaceModule for EduModule {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            driver <- driver::Registration::new(MODULE_NAME, module),
            selftest <- driver::Registration::new(MODULE_NAME, module),
        })
    }
}
