// SPDX-License-Identifier: GPL-2.0
/*
 * The C half of kmods/lib/gpio.rs: GPIO lines found by their chip's label and an offset, with
 * the descriptor (gpiod) consumer API, whose functions are not in 7.2's Rust bindings; and the
 * preempt_count() tests that say which context code runs in (macros, so not in the bindings).
 *
 * A line is requested with the legacy gpio_request() on the descriptor's global number: the
 * descriptor-based gpiod_request() is internal to gpiolib (not exported), and a consumer
 * without a device or a lookup table (an out-of-tree module) has no other way to claim a line
 * it found by chip label. gpio_request() takes the same references as gpiod_get() (the chip's
 * module and its gpio_device); the line is released with gpiod_put(), the descriptor API's
 * free, which needs no global number (and so works even if the chip is gone by then).
 */
#include <linux/err.h>
#include <linux/gpio.h>
#include <linux/gpio/consumer.h>
#include <linux/gpio/driver.h>
#include <linux/preempt.h>

struct gpio_desc *rustkm_gpio_request(const char *chip_label, unsigned int offset,
				      const char *consumer, int direction);
void rustkm_gpio_free(struct gpio_desc *desc);
int rustkm_gpio_get(struct gpio_desc *desc);
int rustkm_gpio_set(struct gpio_desc *desc, int value);
int rustkm_gpio_to_irq(struct gpio_desc *desc);
int rustkm_irq_context(void);

/*
 * Requests line `offset` of the chip labelled `chip_label` for `consumer`, as an input
 * (direction < 0) or as an output driving `direction` (0 or 1). Returns the line's descriptor
 * or an ERR_PTR: -ENODEV when no chip has that label, -EINVAL when the chip has no such line,
 * -EBUSY when the line is already requested. May sleep.
 */
struct gpio_desc *rustkm_gpio_request(const char *chip_label, unsigned int offset,
				      const char *consumer, int direction)
{
	struct gpio_device *gdev __free(gpio_device_put) = gpio_device_find_by_label(chip_label);
	struct gpio_desc *desc;
	int ret;

	if (!gdev)
		return ERR_PTR(-ENODEV);
	desc = gpio_device_get_desc(gdev, offset);
	if (IS_ERR(desc))
		return desc;
	ret = gpio_request(desc_to_gpio(desc), consumer);
	if (ret)
		return ERR_PTR(ret);
	/* The request holds its own reference to gdev; ours is dropped on return. */
	if (direction < 0)
		ret = gpiod_direction_input(desc);
	else
		ret = gpiod_direction_output(desc, direction);
	if (ret) {
		gpiod_put(desc);
		return ERR_PTR(ret);
	}
	return desc;
}

/* Releases a line requested by rustkm_gpio_request(). May sleep. */
void rustkm_gpio_free(struct gpio_desc *desc)
{
	gpiod_put(desc);
}

/* The line's value (0 or 1) or a negative errno. May sleep (the _cansleep variant). */
int rustkm_gpio_get(struct gpio_desc *desc)
{
	return gpiod_get_value_cansleep(desc);
}

/* Drives an output line. May sleep (the _cansleep variant). */
int rustkm_gpio_set(struct gpio_desc *desc, int value)
{
	return gpiod_set_value_cansleep(desc, value);
}

/* The Linux IRQ number of an input line's edges, or a negative errno. */
int rustkm_gpio_to_irq(struct gpio_desc *desc)
{
	return gpiod_to_irq(desc);
}

/* 2 in a hard IRQ handler, 1 in a softirq (or with bottom halves off), 0 in a task. */
int rustkm_irq_context(void)
{
	if (in_hardirq())
		return 2;
	if (in_interrupt())
		return 1;
	return 0;
}
