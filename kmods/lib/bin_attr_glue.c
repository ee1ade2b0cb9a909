// SPDX-License-Identifier: GPL-2.0
/*
 * The C half of kmods/lib/bin_attr.rs: a binary sysfs file on a device (as at24's `eeprom`).
 * struct bin_attribute embeds struct attribute, whose lockdep fields come and go with
 * CONFIG_DEBUG_LOCK_ALLOC, so it is built here against the target kernel's headers; Rust sees
 * an opaque pointer and provides the read and write callbacks.
 */
#include <linux/device.h>
#include <linux/slab.h>
#include <linux/sysfs.h>

/* Implemented in Rust (bin_attr.rs); `data` is the file's handler. */
ssize_t rustkm_bin_attr_read(void *data, char *buf, loff_t off, size_t count);
ssize_t rustkm_bin_attr_write(void *data, const char *buf, loff_t off, size_t count);

/* Called from Rust. */
void *rustkm_bin_attr_create(struct device *dev, const char *name, umode_t mode, size_t size,
			     void *data, int *error);
void rustkm_bin_attr_remove(struct device *dev, void *attr);

static ssize_t glue_read(struct file *file, struct kobject *kobj,
			 const struct bin_attribute *attr, char *buf, loff_t off, size_t count)
{
	return rustkm_bin_attr_read(attr->private, buf, off, count);
}

static ssize_t glue_write(struct file *file, struct kobject *kobj,
			  const struct bin_attribute *attr, char *buf, loff_t off, size_t count)
{
	return rustkm_bin_attr_write(attr->private, buf, off, count);
}

/* sysfs cuts reads and writes at `size` (a write that starts there is EFBIG). */
void *rustkm_bin_attr_create(struct device *dev, const char *name, umode_t mode, size_t size,
			     void *data, int *error)
{
	struct bin_attribute *attr = kzalloc(sizeof(*attr), GFP_KERNEL);

	if (!attr) {
		*error = -ENOMEM;
		return NULL;
	}
	/* A dynamically allocated attribute needs its own lockdep key. */
	sysfs_bin_attr_init(attr);
	attr->attr.name = name;
	attr->attr.mode = mode;
	attr->size = size;
	attr->private = data;
	attr->read = glue_read;
	attr->write = glue_write;
	*error = sysfs_create_bin_file(&dev->kobj, attr);
	if (*error) {
		kfree(attr);
		return NULL;
	}
	return attr;
}

/* Waits for running reads and writes: afterwards `data` is no longer used. */
void rustkm_bin_attr_remove(struct device *dev, void *attr)
{
	sysfs_remove_bin_file(&dev->kobj, attr);
	kfree(attr);
}
