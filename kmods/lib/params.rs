// SPDX-License-Identifier: GPL-2.0

//! Module parameters with sysfs permissions, as C's `module_param()` and `module_param_cb()`.
//!
//! Linux 7.2's `module!` registers its parameters with permission 0, so they never appear
//! under /sys/module/NAME/parameters. [`module_param!`] declares one the way
//! include/linux/moduleparam.h does: a `struct kernel_param` in the `__param` section (name,
//! `THIS_MODULE`, ops, permission, storage) plus the `parmtype=` and `parm=` modinfo strings
//! that `modinfo` shows. Plain parameters use the kernel's own `param_ops_<type>` (so parsing,
//! range checks and errnos are exactly C's); [`ParamHooks`] gives custom set/get callbacks, as
//! `module_param_cb()`.
//!
//! Include this file as `mod params;` at the crate root (the macro refers to `crate::params`).
//!
//! The kernel serialises every set and get of a module's parameters (insmod arguments and
//! sysfs) with the module's `kernel_param_lock()`. [`Param::get`] reads the value without it,
//! as C's `READ_ONCE()` of the variable would (an aligned scalar, never torn);
//! [`Param::set`] takes it.

use core::{cell::UnsafeCell, marker::PhantomData};
use kernel::{bindings, error::to_result, ffi, prelude::*, str::CStr};

/// A C type a parameter can have: the kernel's `param_ops_<type>` and the `parmtype` name.
///
/// # Safety
///
/// `OPS` works on a `kernel_param` whose `arg` points to a valid `Self`, and only ever
/// stores valid values of `Self` there.
pub(crate) unsafe trait ParamType: Copy + Send + Sync + 'static {
    /// The C type's name, as `modinfo` shows it (`parmtype=name:TYPE`).
    const C_TYPE: &'static str;
    /// The kernel's `param_ops_<type>`.
    const OPS: *const bindings::kernel_param_ops;
}

macro_rules! param_type {
    ($ty:ty, $name:literal, $ops:ident) => {
        // SAFETY: the C type's layout is the Rust type's (`$ty` is the kernel's `ffi` alias of
        // it), and `$ops` parses and stores only values of that type.
        unsafe impl ParamType for $ty {
            const C_TYPE: &'static str = $name;
            const OPS: *const bindings::kernel_param_ops = &raw const bindings::$ops;
        }
    };
}

param_type!(i16, "short", param_ops_short);
param_type!(u16, "ushort", param_ops_ushort);
param_type!(i32, "int", param_ops_int);
param_type!(u32, "uint", param_ops_uint);
// C's `long` is `isize` in the kernel's `ffi` crate.
param_type!(isize, "long", param_ops_long);
param_type!(usize, "ulong", param_ops_ulong);
param_type!(bool, "bool", param_ops_bool);

/// A parameter's storage: a `static` declared by [`module_param!`], handed to the kernel.
#[repr(transparent)]
pub(crate) struct Param<T: ParamType>(UnsafeCell<T>);

// SAFETY: writes happen under `kernel_param_lock()` (by the kernel or by `set`); reads are
// single loads of an aligned scalar.
unsafe impl<T: ParamType> Sync for Param<T> {}

// Not every module uses every accessor.
#[allow(dead_code)]
impl<T: ParamType> Param<T> {
    #[doc(hidden)]
    pub(crate) const fn new(default: T) -> Self {
        Self(UnsafeCell::new(default))
    }

    #[doc(hidden)]
    pub(crate) const fn as_arg(&'static self) -> *mut ffi::c_void {
        self.0.get().cast()
    }

    /// The current value (set at insmod, or since through sysfs or [`Param::set`]).
    pub(crate) fn get(&self) -> T {
        // SAFETY: the cell always holds a valid `T` (see `ParamType`); a volatile load of an
        // aligned scalar is C's `READ_ONCE()`.
        unsafe { self.0.get().read_volatile() }
    }

    /// Changes the value, serialised with sysfs writes and reads of the module's parameters.
    /// Sleeps; must not be called from a [`ParamHooks`] callback (the lock is held there).
    pub(crate) fn set(&self, value: T) {
        let module = this_module();
        // SAFETY: `module` is this module, alive while its code runs.
        unsafe { bindings::kernel_param_lock(module) };
        // SAFETY: writers are serialised by the lock; readers use single loads.
        unsafe { self.0.get().write_volatile(value) };
        // SAFETY: locked just above.
        unsafe { bindings::kernel_param_unlock(module) };
    }
}

fn this_module() -> *mut bindings::module {
    &raw mut bindings::__this_module
}

/// The text given for a parameter (`name=TEXT` at insmod, or a sysfs write).
pub(crate) struct ParamArg<'a> {
    raw: &'a CStr,
}

// Used by hooks only.
#[allow(dead_code)]
impl ParamArg<'_> {
    /// The text, without its NUL.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.raw.to_bytes()
    }
}

/// The page a `get` formats the value into.
pub(crate) struct ParamBuf {
    raw: *mut ffi::c_char,
}

/// The parameter a [`ParamHooks`] callback runs for; the parameter lock is held.
pub(crate) struct ParamRef<'a, T: ParamType> {
    kp: &'a bindings::kernel_param,
    _type: PhantomData<T>,
}

// Used by hooks only.
#[allow(dead_code)]
impl<T: ParamType> ParamRef<'_, T> {
    /// The current value.
    pub(crate) fn value(&self) -> T {
        // SAFETY: `arg` of a parameter declared by `module_param!` points to its `Param<T>`.
        unsafe { self.kp.__bindgen_anon_1.arg.cast::<T>().read_volatile() }
    }

    /// Parses `arg` and stores it as the kernel does for a plain `T` parameter (C's
    /// `param_set_int()` and friends: their errno for bad text).
    pub(crate) fn set_default(&self, arg: &ParamArg<'_>) -> Result {
        // SAFETY: `T::OPS` is a kernel static.
        let set = unsafe { (*T::OPS).set }.ok_or(EINVAL)?;
        // SAFETY: `arg` is a C string, `kp` a parameter whose `arg` holds a `T` (see
        // `ParamType`); the caller of the hook holds the parameter lock.
        to_result(unsafe { set(arg.raw.as_char_ptr(), self.kp) })
    }

    /// Formats the value into `buf` as the kernel does for a plain `T` parameter (C's
    /// `param_get_int()` and friends); returns the length.
    pub(crate) fn get_default(&self, buf: &mut ParamBuf) -> Result<usize> {
        // SAFETY: `T::OPS` is a kernel static.
        let get = unsafe { (*T::OPS).get }.ok_or(EINVAL)?;
        // SAFETY: `buf` is the page sysfs passed to the hook, `kp` as in `set_default`.
        let len = unsafe { get(buf.raw, self.kp) };
        to_result(len)?;
        usize::try_from(len).map_err(|_| EINVAL)
    }
}

/// Custom set and get callbacks for a parameter, as C's `module_param_cb()`. They run with
/// the module's parameter lock held: at insmod for each `name=value`, and for sysfs writes
/// (`set`) and reads (`get`).
// Unused in modules with plain parameters only.
#[allow(dead_code)]
pub(crate) trait ParamHooks<T: ParamType>: 'static {
    /// A new value as text; an error refuses it (insmod fails, or the sysfs write does).
    fn set(param: &ParamRef<'_, T>, arg: &ParamArg<'_>) -> Result;
    /// Formats the value for a sysfs read; returns the length.
    fn get(param: &ParamRef<'_, T>, buf: &mut ParamBuf) -> Result<usize>;
}

/// # Safety
///
/// Called by the kernel's parameter code only, with a parameter declared by `module_param!`
/// with hooks `H` and the parameter lock held.
#[allow(dead_code)] // Unused without hooks.
unsafe extern "C" fn hook_set<T: ParamType, H: ParamHooks<T>>(
    val: *const ffi::c_char,
    kp: *const bindings::kernel_param,
) -> ffi::c_int {
    if val.is_null() {
        return EINVAL.to_errno();
    }
    // SAFETY: the kernel passes a valid parameter and, when not null, a C string.
    let (kp, raw) = unsafe { (&*kp, CStr::from_char_ptr(val)) };
    let param = ParamRef {
        kp,
        _type: PhantomData,
    };
    match H::set(&param, &ParamArg { raw }) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// # Safety
///
/// As [`hook_set`]; `buffer` is a page.
#[allow(dead_code)] // Unused without hooks.
unsafe extern "C" fn hook_get<T: ParamType, H: ParamHooks<T>>(
    buffer: *mut ffi::c_char,
    kp: *const bindings::kernel_param,
) -> ffi::c_int {
    // SAFETY: the kernel passes a valid parameter.
    let kp = unsafe { &*kp };
    let param = ParamRef {
        kp,
        _type: PhantomData,
    };
    match H::get(&param, &mut ParamBuf { raw: buffer }) {
        Ok(len) => ffi::c_int::try_from(len).unwrap_or(ffi::c_int::MAX),
        Err(e) => e.to_errno(),
    }
}

#[doc(hidden)]
#[allow(dead_code)] // Unused without hooks.
pub(crate) const fn hook_ops<T: ParamType, H: ParamHooks<T>>() -> bindings::kernel_param_ops {
    bindings::kernel_param_ops {
        flags: 0,
        set: Some(hook_set::<T, H>),
        get: Some(hook_get::<T, H>),
        free: None,
    }
}

/// The permission, checked as C's `VERIFY_OCTAL_PERMISSIONS()` (at build time: this runs in a
/// static's initialiser).
#[doc(hidden)]
pub(crate) const fn checked_perm(perm: u16) -> u16 {
    assert!(perm <= 0o777, "not a permission");
    assert!(
        (perm >> 6) & 4 >= (perm >> 3) & 4,
        "group may read but not owner"
    );
    assert!((perm >> 3) & 4 >= perm & 4, "others may read but not group");
    assert!(
        (perm >> 6) & 2 >= (perm >> 3) & 2,
        "group may write but not owner"
    );
    assert!(perm & 2 == 0, "world-writable");
    perm
}

#[doc(hidden)]
pub(crate) const fn modinfo_len(parts: &[&[u8]]) -> usize {
    let mut len = 1; // the NUL
    let mut i = 0;
    while i < parts.len() {
        len += parts[i].len();
        i += 1;
    }
    len
}

/// `parts` joined, NUL-terminated: a `.modinfo` string. Runs in a static's initialiser.
#[doc(hidden)]
pub(crate) const fn modinfo<const N: usize>(parts: &[&[u8]]) -> [u8; N] {
    let mut out = [0u8; N];
    let mut at = 0;
    let mut i = 0;
    while i < parts.len() {
        let mut j = 0;
        while j < parts[i].len() {
            out[at] = parts[i][j];
            at += 1;
            j += 1;
        }
        i += 1;
    }
    out
}

/// Declares a module parameter shown in /sys/module/MODULE/parameters/NAME with permission
/// `perm` (0 hides it), as C's `module_param()` with `MODULE_PARM_DESC()`:
///
/// ```ignore
/// module_param!(myint: i32 = 420, perm: 0o644, desc: "An integer");
/// module_param!(watched: i32 = 42, perm: 0o644, desc: "...", hooks: WatchedHooks);
/// ```
///
/// This declares `static myint: params::Param<i32>`; read it with `myint.get()`.
macro_rules! module_param {
    ($name:ident: $ty:ty = $default:expr, perm: $perm:expr, desc: $desc:literal $(,)?) => {
        $crate::params::module_param!(@declare $name, $ty, $default, $perm, $desc,
            <$ty as $crate::params::ParamType>::OPS);
    };
    ($name:ident: $ty:ty = $default:expr, perm: $perm:expr, desc: $desc:literal,
     hooks: $hooks:ty $(,)?) => {
        $crate::params::module_param!(@declare $name, $ty, $default, $perm, $desc, {
            static OPS: ::kernel::bindings::kernel_param_ops =
                $crate::params::hook_ops::<$ty, $hooks>();
            &OPS
        });
    };
    (@declare $name:ident, $ty:ty, $default:expr, $perm:expr, $desc:literal, $ops:expr) => {
        #[allow(non_upper_case_globals)]
        static $name: $crate::params::Param<$ty> = $crate::params::Param::new($default);

        const _: () = {
            #[link_section = "__param"]
            #[used(compiler)]
            static PARAM: ::kernel::module_param::KernelParam =
                ::kernel::module_param::KernelParam::new(::kernel::bindings::kernel_param {
                    name: ::core::concat!(::core::stringify!($name), "\0")
                        .as_ptr()
                        .cast(),
                    // The kernel keeps this module alive as long as the parameter.
                    mod_: &raw mut ::kernel::bindings::__this_module,
                    ops: $ops,
                    perm: $crate::params::checked_perm($perm),
                    level: -1,
                    flags: 0,
                    __bindgen_anon_1: ::kernel::bindings::kernel_param__bindgen_ty_1 {
                        arg: $name.as_arg(),
                    },
                });

            const PARMTYPE: &[&[u8]] = &[
                b"parmtype=",
                ::core::stringify!($name).as_bytes(),
                b":",
                <$ty as $crate::params::ParamType>::C_TYPE.as_bytes(),
            ];
            #[link_section = ".modinfo"]
            #[used(compiler)]
            static MODINFO_PARMTYPE: [u8; $crate::params::modinfo_len(PARMTYPE)] =
                $crate::params::modinfo(PARMTYPE);

            const PARM: &[&[u8]] = &[
                b"parm=",
                ::core::stringify!($name).as_bytes(),
                b":",
                $desc.as_bytes(),
            ];
            #[link_section = ".modinfo"]
            #[used(compiler)]
            static MODINFO_PARM: [u8; $crate::params::modinfo_len(PARM)] =
                $crate::params::modinfo(PARM);
        };
    };
}
pub(crate) use module_param;
