// SPDX-License-Identifier: GPL-2.0
/*
 * The C half of kmods/lib/kmem_cache.rs. kmem_cache_create() and kmem_cache_alloc() are
 * macros (a _Generic over the argument types, allocation tagging), and the SLAB_* flags are
 * built from an enum bindgen does not turn into constants; these functions expand them against
 * the target kernel's own headers.
 */
#include <linux/slab.h>

struct kmem_cache *rustkm_kmem_cache_create(const char *name, unsigned int size,
					    unsigned int align, bool hwcache_align,
					    bool no_merge);
void *rustkm_kmem_cache_alloc(struct kmem_cache *cache);
void rustkm_kmem_cache_free(struct kmem_cache *cache, void *object);
void rustkm_kmem_cache_destroy(struct kmem_cache *cache);

struct kmem_cache *rustkm_kmem_cache_create(const char *name, unsigned int size,
					    unsigned int align, bool hwcache_align,
					    bool no_merge)
{
	slab_flags_t flags = 0;

	if (hwcache_align)
		flags |= SLAB_HWCACHE_ALIGN;
	if (no_merge)
		flags |= SLAB_NO_MERGE;
	return kmem_cache_create(name, size, align, flags, NULL);
}

/* May sleep (GFP_KERNEL). */
void *rustkm_kmem_cache_alloc(struct kmem_cache *cache)
{
	return kmem_cache_alloc(cache, GFP_KERNEL);
}

void rustkm_kmem_cache_free(struct kmem_cache *cache, void *object)
{
	kmem_cache_free(cache, object);
}

void rustkm_kmem_cache_destroy(struct kmem_cache *cache)
{
	kmem_cache_destroy(cache);
}
