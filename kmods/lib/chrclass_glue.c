// SPDX-License-Identifier: GPL-2.0
/*
 * The C half of kmods/lib/chrclass.rs: a device class of the module's own, with write-only
 * class attributes, and a range of character device minors whose nodes are that class's
 * devices (/dev/NAME through devtmpfs). One per module: the state is this file's statics.
 * struct file_operations, struct class and the attribute macros stay on the C side.
 */
#include <linux/cdev.h>
#include <linux/device.h>
#include <linux/fs.h>
#include <linux/kdev_t.h>
#include <linux/module.h>

#define RUSTKM_CHRCLASS_MAX_ATTRS 4

/* Implemented in Rust (chrclass.rs). */
int rustkm_chrclass_open(void *data, unsigned int minor, void **file_data);
void rustkm_chrclass_release(void *data, void *file_data);
ssize_t rustkm_chrclass_read(void *data, void *file_data, char __user *buf, size_t count,
			     loff_t *pos);
ssize_t rustkm_chrclass_write(void *data, void *file_data, const char __user *buf,
			      size_t count);
ssize_t rustkm_chrclass_store(void *data, unsigned int index, const char *buf, size_t count);

/* Called from Rust. */
int rustkm_chrclass_register(const char *name, unsigned int minors, const char *const *attrs,
			     unsigned int nattrs, void *data);
void rustkm_chrclass_unregister(void);
struct device *rustkm_chrclass_node_create(unsigned int minor, const char *name);
void rustkm_chrclass_node_destroy(struct device *dev);

static struct {
	dev_t base;
	unsigned int minors;
	struct cdev cdev;
	struct class class;
	struct class_attribute attrs[RUSTKM_CHRCLASS_MAX_ATTRS];
	unsigned int nattrs;
	void *data;
} chrclass;

static int glue_open(struct inode *inode, struct file *file)
{
	return rustkm_chrclass_open(chrclass.data, iminor(inode) - MINOR(chrclass.base),
				    &file->private_data);
}

static int glue_release(struct inode *inode, struct file *file)
{
	rustkm_chrclass_release(chrclass.data, file->private_data);
	return 0;
}

static ssize_t glue_read(struct file *file, char __user *buf, size_t count, loff_t *pos)
{
	return rustkm_chrclass_read(chrclass.data, file->private_data, buf, count, pos);
}

static ssize_t glue_write(struct file *file, const char __user *buf, size_t count, loff_t *pos)
{
	return rustkm_chrclass_write(chrclass.data, file->private_data, buf, count);
}

static const struct file_operations chrclass_fops = {
	.owner = THIS_MODULE, /* open files keep the module loaded */
	.open = glue_open,
	.release = glue_release,
	.read = glue_read,
	.write = glue_write,
	.llseek = noop_llseek,
};

static ssize_t glue_store(const struct class *class, const struct class_attribute *attr,
			  const char *buf, size_t count)
{
	return rustkm_chrclass_store(chrclass.data, attr - chrclass.attrs, buf, count);
}

int rustkm_chrclass_register(const char *name, unsigned int minors, const char *const *attrs,
			     unsigned int nattrs, void *data)
{
	unsigned int i;
	int err;

	if (nattrs > RUSTKM_CHRCLASS_MAX_ATTRS)
		return -EINVAL;
	chrclass.data = data;
	chrclass.minors = minors;
	err = alloc_chrdev_region(&chrclass.base, 0, minors, name);
	if (err)
		return err;
	chrclass.class.name = name;
	err = class_register(&chrclass.class);
	if (err)
		goto fail_class;
	for (chrclass.nattrs = 0; chrclass.nattrs < nattrs; chrclass.nattrs++) {
		struct class_attribute *attr = &chrclass.attrs[chrclass.nattrs];

		sysfs_attr_init(&attr->attr);
		attr->attr.name = attrs[chrclass.nattrs];
		attr->attr.mode = 0200;
		attr->store = glue_store;
		err = class_create_file(&chrclass.class, attr);
		if (err)
			goto fail_attrs;
	}
	cdev_init(&chrclass.cdev, &chrclass_fops);
	chrclass.cdev.owner = THIS_MODULE;
	err = cdev_add(&chrclass.cdev, chrclass.base, minors);
	if (err)
		goto fail_attrs;
	return 0;

fail_attrs:
	for (i = 0; i < chrclass.nattrs; i++)
		class_remove_file(&chrclass.class, &chrclass.attrs[i]);
	class_unregister(&chrclass.class);
fail_class:
	unregister_chrdev_region(chrclass.base, minors);
	return err;
}

/* No store runs after this returns; no file is open (they hold the module). */
void rustkm_chrclass_unregister(void)
{
	unsigned int i;

	cdev_del(&chrclass.cdev);
	for (i = 0; i < chrclass.nattrs; i++)
		class_remove_file(&chrclass.class, &chrclass.attrs[i]);
	class_unregister(&chrclass.class);
	unregister_chrdev_region(chrclass.base, chrclass.minors);
}

/* /dev/NAME for `minor`, a device of the class; an ERR_PTR on failure. */
struct device *rustkm_chrclass_node_create(unsigned int minor, const char *name)
{
	return device_create(&chrclass.class, NULL, chrclass.base + minor, NULL, "%s", name);
}

void rustkm_chrclass_node_destroy(struct device *dev)
{
	device_unregister(dev);
}
