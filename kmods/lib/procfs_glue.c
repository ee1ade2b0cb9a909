// SPDX-License-Identifier: GPL-2.0
/*
 * The C half of kmods/lib/procfs.rs. struct proc_ops is defined here, compiled by the C
 * compiler against the target kernel's own headers, so Rust never assumes its layout (which
 * differs between kernels: proc_compat_ioctl exists only with CONFIG_COMPAT, fields come and
 * go). Rust provides plain extern "C" callbacks and calls the small functions below.
 */
#include <linux/fs.h>
#include <linux/proc_fs.h>

/* Implemented in Rust (procfs.rs); `data` is the entry's handler. */
int rustkm_procfs_open(void *data, struct file *file, unsigned int flags);
ssize_t rustkm_procfs_read(void *data, char __user *buf, size_t count, loff_t *pos);
ssize_t rustkm_procfs_write(void *data, struct file *file, const char __user *buf,
			    size_t count, loff_t *pos, unsigned int flags);
loff_t rustkm_procfs_size(void *data);
loff_t rustkm_procfs_max_size(void *data);
void rustkm_procfs_release(void *data);

/* Called from Rust. */
void *rustkm_procfs_create(const char *name, umode_t mode, void *data);
void rustkm_procfs_remove(void *entry);
void rustkm_procfs_set_size(void *entry, struct file *file, loff_t size);

static int glue_open(struct inode *inode, struct file *file)
{
	return rustkm_procfs_open(pde_data(inode), file, file->f_flags);
}

/* At the last close of a file, or for files still open when the entry is removed. */
static int glue_release(struct inode *inode, struct file *file)
{
	rustkm_procfs_release(pde_data(inode));
	return 0;
}

static ssize_t glue_read(struct file *file, char __user *buf, size_t count, loff_t *pos)
{
	return rustkm_procfs_read(pde_data(file_inode(file)), buf, count, pos);
}

static ssize_t glue_write(struct file *file, const char __user *buf, size_t count,
			  loff_t *pos)
{
	return rustkm_procfs_write(pde_data(file_inode(file)), file, buf, count, pos,
				   file->f_flags);
}

/* SEEK_SET, CUR, END, DATA and HOLE with the kernel's own rules, bounded by the capacity. */
static loff_t glue_lseek(struct file *file, loff_t offset, int whence)
{
	void *data = pde_data(file_inode(file));

	return generic_file_llseek_size(file, offset, whence, rustkm_procfs_max_size(data),
					rustkm_procfs_size(data));
}

static const struct proc_ops rustkm_procfs_ops = {
	.proc_open = glue_open,
	.proc_read = glue_read,
	.proc_write = glue_write,
	.proc_lseek = glue_lseek,
	.proc_release = glue_release,
};

void *rustkm_procfs_create(const char *name, umode_t mode, void *data)
{
	return proc_create_data(name, mode, NULL, &rustkm_procfs_ops, data);
}

void rustkm_procfs_remove(void *entry)
{
	/* Waits for callbacks already running; later ones get -EIO. */
	proc_remove(entry);
}

/* stat(2) shows the size: the entry's (for new inodes) and the open file's inode. */
void rustkm_procfs_set_size(void *entry, struct file *file, loff_t size)
{
	/* NULL while proc_create_data has not returned yet: the size is set right after. */
	if (entry)
		proc_set_size(entry, size);
	if (file)
		i_size_write(file_inode(file), size);
}
