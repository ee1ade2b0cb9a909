// SPDX-License-Identifier: GPL-2.0
/*
 * The C half of kmods/lib/rwlock.rs. rwlock_init(), read_lock() and friends are macros whose
 * expansion depends on the configuration (CONFIG_DEBUG_SPINLOCK, CONFIG_PREEMPT_RT); these
 * functions expand them against the target kernel's own headers.
 */
#include <linux/spinlock.h>

void rustkm_rwlock_init(rwlock_t *lock, const char *name, struct lock_class_key *key);
void rustkm_read_lock(rwlock_t *lock);
void rustkm_read_unlock(rwlock_t *lock);
void rustkm_write_lock(rwlock_t *lock);
void rustkm_write_unlock(rwlock_t *lock);

/* rwlock_init() with the caller's name and lockdep class instead of a macro-local one. */
void rustkm_rwlock_init(rwlock_t *lock, const char *name, struct lock_class_key *key)
{
#if defined(CONFIG_PREEMPT_RT)
	init_rwbase_rt(&lock->rwbase);
	__rt_rwlock_init(lock, name, key);
#elif defined(CONFIG_DEBUG_SPINLOCK)
	__rwlock_init(lock, name, key);
#else
	*lock = __RW_LOCK_UNLOCKED(lock);
#endif
}

void rustkm_read_lock(rwlock_t *lock)
{
	read_lock(lock);
}

void rustkm_read_unlock(rwlock_t *lock)
{
	read_unlock(lock);
}

void rustkm_write_lock(rwlock_t *lock)
{
	write_lock(lock);
}

void rustkm_write_unlock(rwlock_t *lock)
{
	write_unlock(lock);
}
