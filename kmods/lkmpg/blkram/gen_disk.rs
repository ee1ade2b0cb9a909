// SPDX-License-Identifier: GPL-2.0

//! A disk whose openers hold a reference on the module: 7.2's `GenDiskBuilder::build` and
//! `GenDisk`, with `block_device_operations.owner` set.
//!
//! 7.2's `GenDiskBuilder::build` leaves `owner` null (a "TODO: Set to `THIS_MODULE`") and its
//! `block_device_operations` table is a constant of the module that builds the disk. The block
//! layer takes a reference on `fops->owner` for each opener (`blkdev_get_no_open()`); with
//! none, `rmmod` succeeds while the disk is open, and the last close then reads the unloaded
//! module's table: an oops in `bdev_release()`, reproduced in the VM. [`GenDisk::new`] does what
//! 7.2's `build` does, with a table whose `owner` is this module, so `rmmod` fails (EAGAIN)
//! while the disk is open, as for a C driver.
//!
//! It takes 7.2's own [`TagSet`] and [`Operations`]: the queue's `queuedata` is
//! `T::QueueData::into_foreign()`, which 7.2's `Operations` callbacks borrow, and which is
//! taken back when the disk is dropped, after `del_gendisk()` (7.2's `GenDisk` invariants).

use core::{fmt::Write, ptr, ptr::NonNull};
use kernel::{
    bindings,
    block::mq::{gen_disk::GenDiskBuilder, Operations, TagSet},
    error::{from_err_ptr, to_result},
    fmt,
    prelude::*,
    static_lock_class,
    str::NullTerminatedFormatter,
    sync::Arc,
    types::ForeignOwnable,
};

/// The disk's operations: none, but the owner.
#[repr(transparent)]
struct Fops(bindings::block_device_operations);

// SAFETY: the table is never written; `owner` points to this module's `struct module`.
unsafe impl Sync for Fops {}

static FOPS: Fops = Fops(bindings::block_device_operations {
    owner: &raw mut bindings::__this_module,
    ..pin_init::zeroed()
});

/// A disk added to the system (/dev/NAME, /sys/block/NAME), removed when dropped.
///
/// # Invariants
///
/// - `gendisk` was allocated by `__blk_mq_alloc_disk()` on `_tagset`'s tag set, with `FOPS`
///   as its operations, and added with `device_add_disk()`; this owns the reference that
///   `put_disk()` drops.
/// - Its queue's `queuedata` comes from `T::QueueData::into_foreign()`, taken back only when
///   this is dropped.
pub(crate) struct GenDisk<T: Operations> {
    gendisk: NonNull<bindings::gendisk>,
    _tagset: Arc<TagSet<T>>,
}

// SAFETY: dropping the disk (`del_gendisk()`, `put_disk()`, dropping the queue data and the tag
// set) may happen on any thread in process context, if the queue data may be sent there.
unsafe impl<T: Operations> Send for GenDisk<T> where T::QueueData: Send {}

// SAFETY: a shared `GenDisk` gives access to nothing.
unsafe impl<T: Operations> Sync for GenDisk<T> {}

impl<T: Operations> GenDisk<T> {
    /// Adds a disk named `name` of `capacity` 512-byte sectors, with logical and physical
    /// blocks of `block_size` bytes (a power of two, 512 to `PAGE_SIZE`), its requests queued
    /// on `tagset` and handled by `T` with `queue_data`.
    pub(crate) fn new(
        name: fmt::Arguments<'_>,
        block_size: u32,
        capacity: u64,
        tagset: Arc<TagSet<T>>,
        queue_data: T::QueueData,
    ) -> Result<Self> {
        GenDiskBuilder::validate_block_size(block_size)?;
        let mut lim: bindings::queue_limits = pin_init::zeroed();
        lim.logical_block_size = block_size;
        lim.physical_block_size = block_size;

        // `TagSet<T>` is `#[repr(transparent)]` over `Opaque<bindings::blk_mq_tag_set>` (7.2's
        // rust/kernel/block/mq/tag_set.rs), so its address is the C tag set's; `Opaque` allows
        // the C side to use it through a shared reference.
        let set = ptr::from_ref::<TagSet<T>>(&tagset)
            .cast::<bindings::blk_mq_tag_set>()
            .cast_mut();
        let data = queue_data.into_foreign();
        // SAFETY: `set` is an initialised tag set (a `TagSet` is initialised when created), kept
        // alive by `tagset`, then by the disk; `lim` is valid during the call; the lock class
        // is static.
        let gendisk = from_err_ptr(unsafe {
            bindings::__blk_mq_alloc_disk(set, &mut lim, data, static_lock_class!().as_ptr())
        })
        .and_then(|gendisk| NonNull::new(gendisk).ok_or(ENOMEM));
        let gendisk = match gendisk {
            Ok(gendisk) => gendisk,
            Err(e) => {
                // SAFETY: `data` came from `into_foreign()` above; no queue holds it.
                drop(unsafe { T::QueueData::from_foreign(data) });
                return Err(e);
            }
        };
        let disk = gendisk.as_ptr();

        let add = || -> Result {
            // SAFETY: `disk` is a valid disk, not yet added: nothing else uses it.
            unsafe { (*disk).fops = &FOPS.0 };
            // SAFETY: as above.
            let name_buf = unsafe { &mut (*disk).disk_name };
            let mut writer = NullTerminatedFormatter::new(name_buf).ok_or(EINVAL)?;
            writer.write_fmt(name)?;
            // SAFETY: `disk` is a valid disk; `set_capacity()` takes its own lock.
            unsafe { bindings::set_capacity(disk, capacity) };
            // SAFETY: `disk` is a valid disk, not yet added, with its name, size and fops.
            to_result(unsafe { bindings::device_add_disk(ptr::null_mut(), disk, ptr::null_mut()) })
        };
        if let Err(e) = add() {
            // SAFETY: `disk` came from `__blk_mq_alloc_disk()` and was not added: dropping its
            // reference frees it and its queue, which no longer uses `data`.
            unsafe { bindings::put_disk(disk) };
            // SAFETY: `data` came from `into_foreign()` above and is not taken back elsewhere.
            drop(unsafe { T::QueueData::from_foreign(data) });
            return Err(e);
        }
        // INVARIANT: allocated on `tagset` with `FOPS` and `data`, added above.
        Ok(Self {
            gendisk,
            _tagset: tagset,
        })
    }
}

impl<T: Operations> Drop for GenDisk<T> {
    fn drop(&mut self) {
        let disk = self.gendisk.as_ptr();
        // SAFETY: by the type invariants `disk` is a valid, added disk with a queue.
        let data = unsafe { (*(*disk).queue).queuedata };
        // SAFETY: as above. `del_gendisk()` removes the disk and waits for the requests in
        // flight; later I/O from openers still holding it fails without reaching `T`.
        unsafe { bindings::del_gendisk(disk) };
        // SAFETY: drops the reference `__blk_mq_alloc_disk()` gave (type invariant); openers
        // keep their own.
        unsafe { bindings::put_disk(disk) };
        // SAFETY: `data` came from `T::QueueData::into_foreign()` (type invariant), and after
        // `del_gendisk()` no callback of `T` borrows it any more.
        drop(unsafe { T::QueueData::from_foreign(data) });
    }
}
