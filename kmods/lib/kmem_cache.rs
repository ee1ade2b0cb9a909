// SPDX-License-Identifier: GPL-2.0

//! A safe slab cache: a `struct kmem_cache` for objects of one Rust type.
//!
//! 7.2's Rust has no `kmem_cache` abstraction. [`KmemCache::new`] creates a cache sized and
//! aligned for `T`; [`KmemCache::alloc`] moves a value into a new object and returns a
//! [`CacheBox`] that owns it and frees it back to the cache when dropped. Each box holds a
//! reference to its cache, so the cache is destroyed (`kmem_cache_destroy`) only when the last
//! box and the last handle are gone: never with objects remaining.
//!
//! `kmem_cache_create`, `kmem_cache_alloc` and the `SLAB_*` flags are macros, so the C half,
//! `kmem_cache_glue.c`, expands them against the target's headers; a module links both (see
//! kmods/lkmpg/kmem_cache/Kbuild).
//!
//! ```ignore
//! let cache = KmemCache::<Thing>::new(c"thing_cache", 0, CacheFlags::HWCACHE_ALIGN)?;
//! let thing = cache.alloc(Thing::new())?;
//! ```

use core::{
    marker::PhantomData,
    mem::{align_of, size_of},
    ops::{Deref, DerefMut},
    ptr::NonNull,
};
use kernel::{ffi, prelude::*, str::CStr, sync::Arc};

extern "C" {
    fn rustkm_kmem_cache_create(
        name: *const ffi::c_char,
        size: ffi::c_uint,
        align: ffi::c_uint,
        hwcache_align: bool,
        no_merge: bool,
    ) -> *mut ffi::c_void;
    fn rustkm_kmem_cache_alloc(cache: *mut ffi::c_void) -> *mut ffi::c_void;
    fn rustkm_kmem_cache_free(cache: *mut ffi::c_void, object: *mut ffi::c_void);
    fn rustkm_kmem_cache_destroy(cache: *mut ffi::c_void);
}

/// How a cache lays out its objects.
#[derive(Clone, Copy, Default)]
pub(crate) struct CacheFlags {
    hwcache_align: bool,
    no_merge: bool,
}

// Each module includes this file; not every one uses every flag.
#[allow(dead_code)]
impl CacheFlags {
    /// No flags.
    pub(crate) const NONE: Self = Self {
        hwcache_align: false,
        no_merge: false,
    };
    /// `SLAB_HWCACHE_ALIGN`: objects start on a cache line.
    pub(crate) const HWCACHE_ALIGN: Self = Self {
        hwcache_align: true,
        no_merge: false,
    };
    /// `SLAB_NO_MERGE`: SLUB keeps this cache apart instead of folding it into an existing
    /// cache of the same geometry, so it shows under its own name in /proc/slabinfo.
    pub(crate) const NO_MERGE: Self = Self {
        hwcache_align: false,
        no_merge: true,
    };

    /// Both sets of flags.
    pub(crate) const fn with(self, other: Self) -> Self {
        Self {
            hwcache_align: self.hwcache_align || other.hwcache_align,
            no_merge: self.no_merge || other.no_merge,
        }
    }
}

/// A slab cache of `T` objects; destroyed when the last handle and the last object are gone.
///
/// # Invariants
///
/// `cache` came from a successful `kmem_cache_create` for objects of `T`'s size and at least
/// `T`'s alignment, and is destroyed only in `drop`.
pub(crate) struct KmemCache<T> {
    cache: NonNull<ffi::c_void>,
    _type: PhantomData<T>,
}

// SAFETY: the slab allocator may be called on a cache from any thread; the cache holds no `T`
// (objects are owned by `CacheBox`es, which carry their own `Send`/`Sync` bounds).
unsafe impl<T> Send for KmemCache<T> {}
// SAFETY: as above: shared use only allocates and frees, which the slab allocator serialises.
unsafe impl<T> Sync for KmemCache<T> {}

impl<T> KmemCache<T> {
    /// Creates a cache named `name` (as in /proc/slabinfo) for `T`s, aligned to `align` bytes
    /// or `T`'s own alignment if larger (0: `T`'s). May sleep.
    pub(crate) fn new(name: &'static CStr, align: usize, flags: CacheFlags) -> Result<Arc<Self>> {
        let size = ffi::c_uint::try_from(size_of::<T>()).map_err(|_| EINVAL)?;
        if size == 0 || (align != 0 && !align.is_power_of_two()) {
            return Err(EINVAL);
        }
        let align = ffi::c_uint::try_from(align.max(align_of::<T>())).map_err(|_| EINVAL)?;
        // SAFETY: `name` is a NUL-terminated `'static` string: SLUB keeps the pointer for the
        // cache's lifetime, which cannot outlive the module that holds the `'static` data.
        let cache = unsafe {
            rustkm_kmem_cache_create(
                name.as_char_ptr(),
                size,
                align,
                flags.hwcache_align,
                flags.no_merge,
            )
        };
        let cache = NonNull::new(cache).ok_or(ENOMEM)?;
        // If this allocation fails, the new `KmemCache` is dropped, which destroys the cache.
        Ok(Arc::new(
            Self {
                cache,
                _type: PhantomData,
            },
            GFP_KERNEL,
        )?)
    }

    /// Moves `value` into a new object from `cache` (`GFP_KERNEL`: may sleep).
    pub(crate) fn alloc(cache: &Arc<Self>, value: T) -> Result<CacheBox<T>> {
        // SAFETY: `cache.cache` is a live cache (type invariant).
        let object = unsafe { rustkm_kmem_cache_alloc(cache.cache.as_ptr()) };
        let object = NonNull::new(object).ok_or(ENOMEM)?.cast::<T>();
        // SAFETY: the object is `size_of::<T>()` bytes, aligned for `T` (type invariant), and
        // unused: writing the value initialises it.
        unsafe { object.as_ptr().write(value) };
        Ok(CacheBox {
            object,
            cache: cache.clone(),
        })
    }
}

impl<T> Drop for KmemCache<T> {
    fn drop(&mut self) {
        // SAFETY: every `CacheBox` holds an `Arc` of this cache, so none remains: the cache
        // is empty, and it is destroyed exactly once, here.
        unsafe { rustkm_kmem_cache_destroy(self.cache.as_ptr()) };
    }
}

/// A `T` in an object of a [`KmemCache`]; freed back to the cache when dropped.
///
/// # Invariants
///
/// `object` is an initialised `T` in an object allocated from `cache`, owned by this box.
pub(crate) struct CacheBox<T> {
    object: NonNull<T>,
    cache: Arc<KmemCache<T>>,
}

// SAFETY: the box owns its `T` like `KBox<T>` does; freeing to the cache works on any thread.
unsafe impl<T: Send> Send for CacheBox<T> {}
// SAFETY: shared access to the box only gives `&T`.
unsafe impl<T: Sync> Sync for CacheBox<T> {}

impl<T> Deref for CacheBox<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: `object` is an initialised `T` owned by this box (type invariant).
        unsafe { self.object.as_ref() }
    }
}

impl<T> DerefMut for CacheBox<T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference.
        unsafe { self.object.as_mut() }
    }
}

impl<T> Drop for CacheBox<T> {
    fn drop(&mut self) {
        // SAFETY: `object` is an initialised `T` owned by this box, dropped once, here.
        unsafe { core::ptr::drop_in_place(self.object.as_ptr()) };
        // SAFETY: `object` came from this cache and is not used after this.
        unsafe { rustkm_kmem_cache_free(self.cache.cache.as_ptr(), self.object.as_ptr().cast()) };
    }
}
