// SPDX-License-Identifier: GPL-2.0
/*
 * The C half of kmods/lib/tty.rs: the current task's controlling tty, and a write to it as
 * the kernel's own tty_write_message() does it (which is not exported to modules). Rust
 * never looks inside struct tty_struct.
 */
#include <linux/errno.h>
#include <linux/mutex.h>
#include <linux/poll.h>
#include <linux/tty.h>
#include <linux/tty_driver.h>
#include <linux/wait.h>

/* Called from Rust. */
void *rustkm_tty_get_current(void);
void rustkm_tty_put(void *tty);
ssize_t rustkm_tty_write(void *tty, const u8 *buf, size_t count);

/* A counted reference to the current task's controlling tty, or NULL if it has none. */
void *rustkm_tty_get_current(void)
{
	return get_current_tty();
}

void rustkm_tty_put(void *tty)
{
	tty_kref_put(tty);
}

/*
 * Writes straight to the tty's driver (no line discipline, so no "\n" to "\r\n"), under the
 * tty's write lock and tty lock like tty_write_message(). Returns how many bytes the driver
 * took (it may take fewer when its buffer is full), or -EIO when the tty is closed or hung up.
 * Sleeps.
 */
ssize_t rustkm_tty_write(void *ptr, const u8 *buf, size_t count)
{
	struct tty_struct *tty = ptr;
	ssize_t ret = -EIO;

	mutex_lock(&tty->atomic_write_lock);
	tty_lock(tty);
	if (tty->ops->write && tty->count > 0 && !test_bit(TTY_IO_ERROR, &tty->flags))
		ret = tty->ops->write(tty, buf, count);
	tty_unlock(tty);
	mutex_unlock(&tty->atomic_write_lock);
	wake_up_interruptible_poll(&tty->write_wait, EPOLLOUT);
	return ret;
}
