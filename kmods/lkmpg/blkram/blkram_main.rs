// SPDX-License-Identifier: GPL-2.0

//! A RAM disk on blk-mq (LKMPG blkram): `insmod blkram.ko blkram_mb=N`.
//!
//! /dev/blkram0 is a disk of `blkram_mb` MiB (default 8; 1 to 1024, else insmod fails with
//! EINVAL) of 512-byte sectors, kept in a zeroed vmalloc buffer; reads and writes are copied
//! between it and the requests' pages. A request that does not lie wholly on the disk, or that
//! is neither a read, a write nor a flush, ends with an error. The parameter is read-only in
//! /sys/module/blkram/parameters (0444, as the original's); it is declared with
//! `kmods/lib/params.rs` because 7.2's `module!` registers parameters without permissions.
//!
//! The queue is 7.2's `kernel::block::mq` ([`TagSet`], [`Operations`], [`Request`]). The disk
//! is `gen_disk.rs`: 7.2's `GenDiskBuilder` leaves the disk's `fops.owner` unset, so `rmmod`
//! succeeded while /dev/blkram0 was open and the last close then oopsed; with the owner set,
//! `rmmod` is refused while the disk is open. What 7.2's `Request` does not expose (a
//! request's position, size and data pages) is reached through `ramdisk.rs` and its C half,
//! `blkram_glue.c`.

use kernel::{
    block::{
        mq::{Operations, Request, TagSet},
        SECTOR_SIZE,
    },
    prelude::*,
    sync::{aref::ARef, Arc},
};

mod gen_disk;
#[path = "../../lib/params.rs"]
mod params;
mod ramdisk;

use gen_disk::GenDisk;
use ramdisk::{Io, Op, RamStore};

module! {
    type: BlkRamModule,
    name: "blkram",
    authors: ["rustkm"],
    description: "LKMPG blkram in Rust: a RAM disk on blk-mq",
    license: "GPL",
}

params::module_param!(blkram_mb: usize = 8, perm: 0o444, desc: "Size of the RAM disk in MiB");

/// The largest disk `blkram_mb` may ask for, in MiB.
const MAX_MB: usize = 1024;

/// The disk's name, under /dev and /sys/block.
const DISK_NAME: &str = "blkram0";

/// The driver: requests are served from a [`RamStore`], the queue's data.
struct BlkRam;

#[vtable]
impl Operations for BlkRam {
    type QueueData = KBox<RamStore>;

    fn queue_rq(ram: &RamStore, rq: ARef<Request<Self>>, _is_last: bool) -> Result {
        // An `Err` returned from here makes blk-mq end the request with that error (EIO:
        // BLK_STS_IOERR, "I/O error" for the reader or writer).
        let io = Io::of(&rq);
        match io.op {
            Op::Read | Op::Write => ram.transfer(&rq, &io)?,
            // Memory has no cache to write back (and without BLK_FEAT_WRITE_CACHE the block
            // layer does not even send flushes).
            Op::Flush => (),
            // As the original: BLK_STS_IOERR.
            Op::Other => return Err(EIO),
        }
        // Fails only if another `ARef` to the request existed; the driver makes none.
        Request::end_ok(rq).map_err(|_rq| EIO)
    }

    fn commit_rqs(_ram: &RamStore) {}

    fn complete(rq: ARef<Request<Self>>) {
        // Not called: requests end in `queue_rq`, never through `Request::complete`. Should it
        // be, ending the request is all there is to do.
        let _ = Request::end_ok(rq);
    }
}

struct BlkRamModule {
    disk: Option<GenDisk<BlkRam>>,
}

impl kernel::Module for BlkRamModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let mb = blkram_mb.get();
        if !(1..=MAX_MB).contains(&mb) {
            pr_err!("blkram_mb={mb} is out of range: the size must be 1 to {MAX_MB} MiB\n");
            return Err(EINVAL);
        }
        // At most 1 GiB: the shift does not overflow.
        let bytes = mb << 20;
        let sectors = u64::try_from(bytes).map_err(|_| EINVAL)? / u64::from(SECTOR_SIZE);
        let ram = RamStore::new(bytes).inspect_err(|_| {
            pr_err!("cannot allocate {mb} MiB for the disk\n");
        })?;
        let tagset = Arc::pin_init(TagSet::new(1, 64, 1), GFP_KERNEL)?;
        let ram = KBox::new(ram, GFP_KERNEL)?;
        let disk = GenDisk::new(fmt!("{DISK_NAME}"), SECTOR_SIZE, sectors, tagset, ram)?;
        pr_info!("registered /dev/{DISK_NAME} ({mb} MiB)\n");
        Ok(Self { disk: Some(disk) })
    }
}

impl Drop for BlkRamModule {
    fn drop(&mut self) {
        // Removes the disk (waiting for requests in flight), then frees the memory.
        drop(self.disk.take());
        pr_info!("removed /dev/{DISK_NAME}\n");
    }
}
