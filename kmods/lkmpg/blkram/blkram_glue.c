// SPDX-License-Identifier: GPL-2.0
/*
 * The C half of blkram's ramdisk.rs. 7.2's Rust `Request` shows nothing of a request but its
 * reference count: its operation, position and size are inline accessors (req_op(),
 * blk_rq_pos(), blk_rq_bytes()), and its data is a chain of bios walked with the
 * rq_for_each_segment() macro, each segment's page mapped with kmap_local_page()
 * (memcpy_to_bvec() and memcpy_from_bvec()). These functions expand them against the target
 * kernel's own headers. None of them sleeps.
 */
#include <linux/blk-mq.h>
#include <linux/blkdev.h>
#include <linux/bvec.h>

/* What ramdisk.rs needs to know of req_op(); the values are ramdisk.rs's `OP_*`. */
enum rustkm_blkram_op {
	RUSTKM_BLKRAM_READ = 0,
	RUSTKM_BLKRAM_WRITE = 1,
	RUSTKM_BLKRAM_FLUSH = 2,
	RUSTKM_BLKRAM_OTHER = 3,
};

unsigned int rustkm_blkram_rq_op(struct request *rq);
u64 rustkm_blkram_rq_pos(struct request *rq);
unsigned int rustkm_blkram_rq_bytes(struct request *rq);
int rustkm_blkram_rq_copy(struct request *rq, u8 *mem, size_t len, bool write);

unsigned int rustkm_blkram_rq_op(struct request *rq)
{
	if (blk_rq_is_passthrough(rq))
		return RUSTKM_BLKRAM_OTHER;
	switch (req_op(rq)) {
	case REQ_OP_READ:
		return RUSTKM_BLKRAM_READ;
	case REQ_OP_WRITE:
		return RUSTKM_BLKRAM_WRITE;
	case REQ_OP_FLUSH:
		return RUSTKM_BLKRAM_FLUSH;
	default:
		return RUSTKM_BLKRAM_OTHER;
	}
}

/* The first sector (512 bytes, whatever the logical block size). */
u64 rustkm_blkram_rq_pos(struct request *rq)
{
	return blk_rq_pos(rq);
}

unsigned int rustkm_blkram_rq_bytes(struct request *rq)
{
	return blk_rq_bytes(rq);
}

/*
 * Copies the request's data into `mem` (a write) or from it into the request's pages (a
 * read), segment after segment; `mem` is where the request's first sector goes, `len` the
 * bytes there. A segment that would go past `len` stops the copy with -EIO.
 */
int rustkm_blkram_rq_copy(struct request *rq, u8 *mem, size_t len, bool write)
{
	struct req_iterator iter;
	struct bio_vec bvec;
	size_t done = 0;

	rq_for_each_segment(bvec, rq, iter) {
		if (bvec.bv_len > len - done)
			return -EIO;
		if (write)
			memcpy_from_bvec(mem + done, &bvec);
		else
			memcpy_to_bvec(&bvec, mem + done);
		done += bvec.bv_len;
	}
	return 0;
}
