// SPDX-License-Identifier: GPL-2.0
/*
 * The C half of kmods/lib/input.rs. The bindings have no <linux/input.h>: struct input_dev and
 * the inline reporting helpers are reached from here, compiled against the target's headers.
 */
#include <linux/device.h>
#include <linux/input.h>

/* Called from Rust. */
struct input_dev *rustkm_input_alloc(const char *name, const char *phys, struct device *parent);
void rustkm_input_set_key(struct input_dev *dev, unsigned int code);
void rustkm_input_set_autorepeat(struct input_dev *dev);
int rustkm_input_register(struct input_dev *dev);
void rustkm_input_unregister(struct input_dev *dev);
void rustkm_input_free(struct input_dev *dev);
void rustkm_input_report_key(struct input_dev *dev, unsigned int code, int value);
void rustkm_input_sync(struct input_dev *dev);

struct input_dev *rustkm_input_alloc(const char *name, const char *phys, struct device *parent)
{
	struct input_dev *dev = input_allocate_device();

	if (!dev)
		return NULL;
	dev->name = name;
	dev->phys = phys;
	dev->dev.parent = parent;
	dev->id.bustype = BUS_VIRTUAL;
	return dev;
}

/* Rust checks code <= KEY_MAX. */
void rustkm_input_set_key(struct input_dev *dev, unsigned int code)
{
	input_set_capability(dev, EV_KEY, code);
}

/* The input core's software autorepeat (input_set_capability knows no EV_REP). */
void rustkm_input_set_autorepeat(struct input_dev *dev)
{
	__set_bit(EV_REP, dev->evbit);
}

int rustkm_input_register(struct input_dev *dev)
{
	return input_register_device(dev);
}

/* Also frees it once its last user (an evdev client, say) lets go. */
void rustkm_input_unregister(struct input_dev *dev)
{
	input_unregister_device(dev);
}

void rustkm_input_free(struct input_dev *dev)
{
	input_free_device(dev);
}

void rustkm_input_report_key(struct input_dev *dev, unsigned int code, int value)
{
	input_report_key(dev, code, value);
}

void rustkm_input_sync(struct input_dev *dev)
{
	input_sync(dev);
}
