// SPDX-License-Identifier: GPL-2.0
/*
 * vinput's API for the modules of virtual device types (vkbd), as in the original's
 * vinput.h: the functions are written in Rust (vinput_main.rs); this exports them. Rust
 * modules cannot link against each other's crates, so the API is a C ABI, whose types are
 * defined once, in vinput_api.rs, which both modules compile.
 */
#include <linux/export.h>

struct vinput_device;

int vinput_register(const struct vinput_device *dev);
void vinput_unregister(const struct vinput_device *dev);

EXPORT_SYMBOL_GPL(vinput_register);
EXPORT_SYMBOL_GPL(vinput_unregister);
