// SPDX-License-Identifier: GPL-2.0
/*
 * The C half of kmods/lib/sysfs.rs: a kobject and its attribute files. struct kobj_attribute
 * and struct attribute (whose lockdep fields come and go with CONFIG_DEBUG_LOCK_ALLOC) are
 * built here against the target kernel's headers; Rust sees opaque pointers and provides two
 * extern "C" callbacks.
 */
#include <linux/kobject.h>
#include <linux/slab.h>
#include <linux/sysfs.h>

/* Implemented in Rust (sysfs.rs); `data` is the attribute's handler. */
ssize_t rustkm_sysfs_show(void *data, char *buf);
ssize_t rustkm_sysfs_store(void *data, const char *buf, size_t count);

/* Called from Rust. */
void *rustkm_sysfs_kobject_create(const char *name);
void rustkm_sysfs_kobject_get(void *kobj);
void rustkm_sysfs_kobject_put(void *kobj);
void *rustkm_sysfs_attr_create(void *kobj, const char *name, umode_t mode, void *data,
			       int *error);
void rustkm_sysfs_attr_remove(void *kobj, void *attr);

struct rustkm_sysfs_attr {
	struct kobj_attribute kattr;
	void *data;
};

static ssize_t glue_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	return rustkm_sysfs_show(container_of(attr, struct rustkm_sysfs_attr, kattr)->data, buf);
}

static ssize_t glue_store(struct kobject *kobj, struct kobj_attribute *attr, const char *buf,
			  size_t count)
{
	return rustkm_sysfs_store(container_of(attr, struct rustkm_sysfs_attr, kattr)->data,
				  buf, count);
}

/* A kobject under /sys/kernel, as the original's kobject_create_and_add(name, kernel_kobj). */
void *rustkm_sysfs_kobject_create(const char *name)
{
	return kobject_create_and_add(name, kernel_kobj);
}

void rustkm_sysfs_kobject_get(void *kobj)
{
	kobject_get(kobj);
}

void rustkm_sysfs_kobject_put(void *kobj)
{
	kobject_put(kobj);
}

void *rustkm_sysfs_attr_create(void *kobj, const char *name, umode_t mode, void *data,
			       int *error)
{
	struct rustkm_sysfs_attr *attr = kzalloc(sizeof(*attr), GFP_KERNEL);

	if (!attr) {
		*error = -ENOMEM;
		return NULL;
	}
	/* A dynamically allocated attribute needs its own lockdep key. */
	sysfs_attr_init(&attr->kattr.attr);
	attr->kattr.attr.name = name;
	attr->kattr.attr.mode = mode;
	attr->kattr.show = glue_show;
	attr->kattr.store = glue_store;
	attr->data = data;
	*error = sysfs_create_file(kobj, &attr->kattr.attr);
	if (*error) {
		kfree(attr);
		return NULL;
	}
	return attr;
}

/* Waits for running show/store calls: afterwards `data` is no longer used. */
void rustkm_sysfs_attr_remove(void *kobj, void *attr)
{
	struct rustkm_sysfs_attr *a = attr;

	sysfs_remove_file(kobj, &a->kattr.attr);
	kfree(a);
}
