// SPDX-License-Identifier: GPL-2.0

//! LKMPG kmem_cache in Rust: a slab cache for a small struct, two objects allocated from it at
//! load and freed, with the cache destroyed, at unload.
//!
//! Differences from the original, all visible only in the log or /proc/slabinfo:
//! - The cache also gets `SLAB_NO_MERGE`: SLUB would otherwise fold it into an existing cache
//!   of the same geometry, and /proc/slabinfo would show that cache instead of this one.
//! - The log gives no object addresses: Rust's `{:p}` would print the raw address, which C's
//!   `%p` hashes to hide the kernel's layout.
//! - `objects=N` allocates N objects instead of 2 (the first two are logged), to show in the
//!   slab statistics.

use kernel::prelude::*;

#[path = "../../lib/compat.rs"]
mod compat;
#[path = "../../lib/kmem_cache.rs"]
mod kmem_cache;

use kmem_cache::{CacheBox, CacheFlags, KmemCache};

module! {
    type: KmemCacheExample,
    name: "kmem_cache",
    authors: ["rustkm"],
    description: "A simple example of kmem_cache",
    license: "GPL",
    params: {
        objects: i32 {
            default: 2,
            description: "How many objects to allocate from the cache (1 to 100000)",
        },
    },
}

/// The original's `struct my_custom_struct` (36 bytes).
#[repr(C)]
struct MyCustomStruct {
    id: i32,
    name: [u8; 32],
}

const MAX_OBJECTS: usize = 100_000;

struct KmemCacheExample {
    objects: KVec<CacheBox<MyCustomStruct>>,
}

impl kernel::Module for KmemCacheExample {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("kmem_cache_example: Initializing module\n");
        let wanted = usize::try_from(compat::param(&module_parameters::objects))
            .ok()
            .filter(|n| (1..=MAX_OBJECTS).contains(n))
            .ok_or(EINVAL)?;
        let cache = KmemCache::<MyCustomStruct>::new(
            c"my_custom_cache",
            0,
            CacheFlags::HWCACHE_ALIGN.with(CacheFlags::NO_MERGE),
        )
        .inspect_err(|_| pr_err!("kmem_cache_example: Failed to create cache\n"))?;
        let mut objects = KVec::with_capacity(wanted, GFP_KERNEL)?;
        for id in 1..=wanted {
            let object = MyCustomStruct {
                id: i32::try_from(id).map_err(|_| EINVAL)?,
                name: [0; 32],
            };
            // On failure the objects so far are freed, then the cache destroyed (its last
            // handle is `cache`, and each object holds one).
            let object = KmemCache::alloc(&cache, object)
                .inspect_err(|_| pr_err!("kmem_cache_example: Failed to allocate objects\n"))?;
            objects.push(object, GFP_KERNEL)?;
        }
        for (n, object) in objects.iter().take(2).enumerate() {
            pr_info!(
                "kmem_cache_example: Allocated obj{} (id: {})\n",
                n + 1,
                object.id
            );
        }
        if wanted > 2 {
            pr_info!(
                "kmem_cache_example: Allocated {} more objects\n",
                wanted - 2
            );
        }
        Ok(KmemCacheExample { objects })
    }
}

impl Drop for KmemCacheExample {
    fn drop(&mut self) {
        // Frees every object; the last one takes the cache with it.
        self.objects.clear();
        pr_info!("kmem_cache_example: Cleaned up and exited\n");
    }
}
