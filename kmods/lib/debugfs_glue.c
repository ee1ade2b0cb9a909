// SPDX-License-Identifier: GPL-2.0
/*
 * The C half of kmods/lib/debugfs.rs: one struct file_operations with .owner = THIS_MODULE,
 * so an open debugfs file holds the module (7.2's kernel::debugfs leaves .owner unset: a file
 * held open across rmmod then oopses in full_proxy_release at close). Rust provides the read
 * and write callbacks; `data` is the file's handler, stashed in the inode.
 */
#include <linux/debugfs.h>
#include <linux/err.h>
#include <linux/fs.h>
#include <linux/module.h>

/* Implemented in Rust (debugfs.rs). */
ssize_t rustkm_debugfs_read(void *data, char __user *buf, size_t count, loff_t *pos);
ssize_t rustkm_debugfs_write(void *data, const char __user *buf, size_t count, loff_t *pos);

/* Called from Rust. */
void *rustkm_debugfs_create_dir(const char *name, int *error);
void *rustkm_debugfs_create_file(const char *name, umode_t mode, void *parent, void *data,
				 int *error);
void rustkm_debugfs_remove(void *dentry);

static ssize_t glue_read(struct file *file, char __user *buf, size_t count, loff_t *pos)
{
	return rustkm_debugfs_read(file->private_data, buf, count, pos);
}

static ssize_t glue_write(struct file *file, const char __user *buf, size_t count,
			  loff_t *pos)
{
	return rustkm_debugfs_write(file->private_data, buf, count, pos);
}

static const struct file_operations rustkm_debugfs_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.read = glue_read,
	.write = glue_write,
	.llseek = default_llseek,
};

static void *checked(struct dentry *dentry, int *error)
{
	if (IS_ERR(dentry)) {
		*error = PTR_ERR(dentry);
		return NULL;
	}
	*error = 0;
	return dentry;
}

void *rustkm_debugfs_create_dir(const char *name, int *error)
{
	return checked(debugfs_create_dir(name, NULL), error);
}

void *rustkm_debugfs_create_file(const char *name, umode_t mode, void *parent, void *data,
				 int *error)
{
	return checked(debugfs_create_file(name, mode, parent, data, &rustkm_debugfs_fops),
		       error);
}

/* Removes the entry and everything below it; waits for running reads and writes. */
void rustkm_debugfs_remove(void *dentry)
{
	debugfs_remove(dentry);
}
