// SPDX-License-Identifier: GPL-2.0

//! One source for several kernels: the Rust API items whose spelling changed between the
//! kernels kmods/ builds on, behind one name each.
//!
//! rustkm compiles every module with `--cfg rustkm_kernel_ge_X_Y` for each release up to the
//! target kernel's (src/rustkm/kernel/rustcfg.py): `#[cfg(rustkm_kernel_ge_7_3)]` is 7.3's
//! spelling, `#[cfg(not(rustkm_kernel_ge_7_3))]` the older one. Include this file as
//! `#[path = "../../lib/compat.rs"] mod compat;`.

use kernel::module_param::ModuleParamAccess;

/// The value of a `module!` parameter (an integer: `Copy`).
///
/// 7.2's `ModuleParamAccess::value()` returns `&T`; 7.3's returns a copy of `T` (the
/// reference became `value_ref()`).
#[inline]
pub(crate) fn param<T: Copy>(param: &ModuleParamAccess<T>) -> T {
    #[cfg(rustkm_kernel_ge_7_3)]
    {
        param.value()
    }
    #[cfg(not(rustkm_kernel_ge_7_3))]
    {
        *param.value()
    }
}
