// SPDX-License-Identifier: GPL-2.0
/*
 * The C half of kmods/lib/seqfile.rs: a /proc file read through seq_file. The kernel's
 * seq_read and seq_lseek do the buffering, short reads and seeks; Rust says which records
 * exist and prints each one. As in procfs_glue.c, struct proc_ops and struct seq_operations
 * are built here against the target kernel's headers, never declared in Rust.
 */
#include <linux/fs.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>

/*
 * Implemented in Rust (seqfile.rs). `data` is the entry's handler; `view` is what one open
 * file reads, made at open and dropped at release.
 */
int rustkm_seqfile_open(void *data, void **view);
bool rustkm_seqfile_has(void *data, void *view, loff_t index);
int rustkm_seqfile_show(void *data, void *view, loff_t index, struct seq_file *m);
void rustkm_seqfile_release(void *data, void *view);

/* Called from Rust. */
void *rustkm_seqfile_create(const char *name, umode_t mode, void *data);
void rustkm_seqfile_remove(void *entry);

static void *seq_data(struct seq_file *m)
{
	return pde_data(file_inode(m->file));
}

/* The record at *pos, if there is one: its index is the cursor. */
static void *glue_start(struct seq_file *m, loff_t *pos)
{
	return rustkm_seqfile_has(seq_data(m), m->private, *pos) ? pos : NULL;
}

static void *glue_next(struct seq_file *m, void *v, loff_t *pos)
{
	++*pos;
	return glue_start(m, pos);
}

static void glue_stop(struct seq_file *m, void *v)
{
}

static int glue_show(struct seq_file *m, void *v)
{
	return rustkm_seqfile_show(seq_data(m), m->private, *(loff_t *)v, m);
}

static const struct seq_operations rustkm_seqfile_seq_ops = {
	.start = glue_start,
	.next = glue_next,
	.stop = glue_stop,
	.show = glue_show,
};

static int glue_open(struct inode *inode, struct file *file)
{
	void *view;
	int err;

	/* Records are read only: even root (whom 0444 does not stop) cannot open for writing. */
	if (file->f_mode & FMODE_WRITE)
		return -EACCES;
	err = rustkm_seqfile_open(pde_data(inode), &view);
	if (err)
		return err;
	err = seq_open(file, &rustkm_seqfile_seq_ops);
	if (err) {
		rustkm_seqfile_release(pde_data(inode), view);
		return err;
	}
	((struct seq_file *)file->private_data)->private = view;
	return 0;
}

/* At the last close of a file, or for files still open when the entry is removed. */
static int glue_release(struct inode *inode, struct file *file)
{
	struct seq_file *m = file->private_data;

	rustkm_seqfile_release(pde_data(inode), m->private);
	return seq_release(inode, file);
}

static const struct proc_ops rustkm_seqfile_ops = {
	.proc_open = glue_open,
	.proc_read = seq_read,
	.proc_lseek = seq_lseek,
	.proc_release = glue_release,
};

void *rustkm_seqfile_create(const char *name, umode_t mode, void *data)
{
	return proc_create_data(name, mode, NULL, &rustkm_seqfile_ops, data);
}

void rustkm_seqfile_remove(void *entry)
{
	/* Waits for callbacks already running and releases files still open. */
	proc_remove(entry);
}
