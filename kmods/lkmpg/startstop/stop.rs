// SPDX-License-Identifier: GPL-2.0

//! The exit half of the startstop module.

use kernel::prelude::*;

impl Drop for super::StartStop {
    fn drop(&mut self) {
        pr_info!("Short is the life of a kernel module\n");
    }
}
