// SPDX-License-Identifier: GPL-2.0
/*
 * The C half of kmods/lib/static_key.rs: the module's static key, defined with the C macro
 * (its initial value and layout are the target kernel's), and the macros that flip and query
 * it. Rust branches on it with the kernel's own static_branch_unlikely! (kernel::jump_label),
 * which patches the branch in place like C's.
 */
#include <linux/jump_label.h>

DEFINE_STATIC_KEY_FALSE(rustkm_static_key);

void rustkm_static_key_enable(void);
void rustkm_static_key_disable(void);
bool rustkm_static_key_enabled(void);

/* These two may sleep (they take cpus_read_lock and the jump label mutex). */
void rustkm_static_key_enable(void)
{
	static_branch_enable(&rustkm_static_key);
}

void rustkm_static_key_disable(void)
{
	static_branch_disable(&rustkm_static_key);
}

bool rustkm_static_key_enabled(void)
{
	return static_key_enabled(&rustkm_static_key);
}
