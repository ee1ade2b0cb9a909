// SPDX-License-Identifier: GPL-2.0
/*
 * The C half of kbleds: the foreground virtual console's tty and its KDSETLED ioctl. 7.2's
 * Rust has no tty or VT bindings for these (vc_cons, fg_console and the tty operations are
 * C structures); Rust sees an opaque tty pointer.
 */
#include <linux/tty.h>
#include <linux/tty_driver.h>
#include <linux/console.h>
#include <linux/console_struct.h>
#include <linux/kd.h>
#include <linux/vt_kern.h>

/* Called from Rust. */
void *rustkm_kbleds_fg_tty(int *console);
int rustkm_kbleds_set(void *tty, unsigned long leds);
void rustkm_kbleds_put(void *tty);

/*
 * The foreground console's tty with a reference, or NULL when the console has none: a VT's
 * tty exists only while something has it open (the original dereferences it regardless).
 */
void *rustkm_kbleds_fg_tty(int *console)
{
	struct tty_struct *tty = NULL;

	console_lock();
	*console = fg_console;
	if (vc_cons[fg_console].d)
		tty = tty_kref_get(vc_cons[fg_console].d->port.tty);
	console_unlock();
	return tty;
}

/* The original's (my_driver->ops->ioctl)(tty, KDSETLED, leds): the VT's own ioctl. */
int rustkm_kbleds_set(void *tty, unsigned long leds)
{
	struct tty_struct *t = tty;

	return t->ops->ioctl ? t->ops->ioctl(t, KDSETLED, leds) : -ENOTTY;
}

void rustkm_kbleds_put(void *tty)
{
	tty_kref_put(tty);
}
