// SPDX-License-Identifier: GPL-2.0

//! A safe static key: a branch the kernel patches in place (a NOP or a jump) when the key is
//! flipped, so the fast path pays no test.
//!
//! 7.2's `kernel::jump_label` has `static_branch_unlikely!` for a key defined in C, but no way
//! to define or flip one. The C half, `static_key_glue.c`, defines the module's one key with
//! `DEFINE_STATIC_KEY_FALSE` and wraps `static_branch_enable`/`_disable` and
//! `static_key_enabled`; a module links both (see kmods/lkmpg/static_key/Kbuild).
//!
//! ```ignore
//! if static_key::KEY.unlikely() { /* patched in only while enabled */ }
//! static_key::KEY.enable();
//! ```

use kernel::{bindings, static_branch_unlikely};

/// The C key's layout, with the field name `static_branch_unlikely!` asks for.
#[repr(C)]
struct Key {
    key: bindings::static_key_false,
}

extern "C" {
    /// Defined in `static_key_glue.c`. Only C code writes it; Rust only takes its address.
    static rustkm_static_key: Key;
    fn rustkm_static_key_enable();
    fn rustkm_static_key_disable();
    fn rustkm_static_key_enabled() -> bool;
}

/// The module's static key, initially false (`DEFINE_STATIC_KEY_FALSE`).
pub(crate) struct StaticKeyFalse(());

/// The one key of this module.
pub(crate) static KEY: StaticKeyFalse = StaticKeyFalse(());

impl StaticKeyFalse {
    /// `static_branch_unlikely`: true while the key is enabled; the false path is inline.
    #[inline(always)]
    pub(crate) fn unlikely(&self) -> bool {
        // SAFETY: `rustkm_static_key` is a real static key, a `static_key_false` (which `Key`
        // lays out) defined by C with `DEFINE_STATIC_KEY_FALSE`, as the macro requires.
        unsafe { static_branch_unlikely!(rustkm_static_key, Key, key) }
    }

    /// `static_key_enabled`: the key's state as stored (not the patched code).
    pub(crate) fn is_enabled(&self) -> bool {
        // SAFETY: reads the C-defined key; no precondition.
        unsafe { rustkm_static_key_enabled() }
    }

    /// `static_branch_enable`: patches every branch on the key to true. Idempotent. Sleeps.
    pub(crate) fn enable(&self) {
        // SAFETY: process context is required (it sleeps); callers of this safe function are
        // in process context, as are all callers of sleeping kernel functions in Rust.
        unsafe { rustkm_static_key_enable() };
    }

    /// `static_branch_disable`: patches every branch on the key to false. Idempotent. Sleeps.
    pub(crate) fn disable(&self) {
        // SAFETY: as in `enable`.
        unsafe { rustkm_static_key_disable() };
    }
}
