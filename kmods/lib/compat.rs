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
#[allow(dead_code)]
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

/// A device ID table on every kernel: `compat::device_table!(pci_device_table, TABLE,
/// MODULE_TABLE, IdInfo, [...])` (also `auxiliary_device_table`, `i2c_device_table`, ...).
///
/// 7.2's `kernel::*_device_table!` take the name of the modpost alias as their second
/// argument; 7.3's make the table itself the alias and take no such name.
#[allow(unused_macros)]
macro_rules! device_table {
    ($kind:ident, $table:ident, $alias:ident, $($rest:tt)*) => {
        #[cfg(rustkm_kernel_ge_7_3)]
        kernel::$kind!($table, $($rest)*);
        #[cfg(not(rustkm_kernel_ge_7_3))]
        kernel::$kind!($table, $alias, $($rest)*);
    };
}
#[allow(unused_imports)]
pub(crate) use device_table;
