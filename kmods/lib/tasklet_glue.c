// SPDX-License-Identifier: GPL-2.0
/*
 * The C half of kmods/lib/tasklet.rs. struct tasklet_struct is allocated and set up here,
 * and tasklet_schedule() (a static inline) called here, against the target kernel's headers;
 * Rust sees an opaque pointer and gives a plain callback with its data.
 */
#include <linux/interrupt.h>
#include <linux/slab.h>

struct rustkm_tasklet {
	struct tasklet_struct tasklet;
	void (*run)(void *data);
	void *data;
};

/* Called from Rust. */
void *rustkm_tasklet_new(void (*run)(void *data), void *data);
void rustkm_tasklet_schedule(void *tasklet);
void rustkm_tasklet_kill_free(void *tasklet);

/* Softirq context: the Rust callback must not sleep. */
static void glue_callback(struct tasklet_struct *t)
{
	struct rustkm_tasklet *rt = from_tasklet(rt, t, tasklet);

	rt->run(rt->data);
}

void *rustkm_tasklet_new(void (*run)(void *data), void *data)
{
	struct rustkm_tasklet *rt = kzalloc(sizeof(*rt), GFP_KERNEL);

	if (!rt)
		return NULL;
	rt->run = run;
	rt->data = data;
	tasklet_setup(&rt->tasklet, glue_callback);
	return rt;
}

void rustkm_tasklet_schedule(void *tasklet)
{
	struct rustkm_tasklet *rt = tasklet;

	tasklet_schedule(&rt->tasklet);
}

/* Waits until the tasklet is neither scheduled nor running, then frees it. */
void rustkm_tasklet_kill_free(void *tasklet)
{
	struct rustkm_tasklet *rt = tasklet;

	tasklet_kill(&rt->tasklet);
	kfree(rt);
}
