// SPDX-License-Identifier: GPL-2.0

//! LKMPG vnetloop in Rust: a virtual Ethernet device, `vnetloop%d`, that loops each
//! transmitted frame back into its receive path. Every transmit is counted (tx_packets,
//! tx_bytes); a copy of the frame is received (rx_packets, rx_bytes) or, if the atomic copy
//! fails, counted in rx_dropped. The counters are in /sys/class/net/DEV/statistics.
//!
//! The device is `kmods/lib/netdev.rs` (7.2's Rust has no `net_device`); rmmod unregisters
//! it, closing it first if it is up.

use kernel::prelude::*;

#[path = "../../lib/netdev.rs"]
mod netdev;

use netdev::{NetDev, NetDevHandler, Registration, SkBuff};

module! {
    type: VNetLoop,
    name: "vnetloop",
    authors: ["rustkm"],
    description: "LKMPG virtual net_device example",
    license: "GPL",
}

/// Loops every frame back.
struct Loop;

impl NetDevHandler for Loop {
    fn start_xmit(&self, dev: &NetDev<'_>, skb: SkBuff) {
        dev.count_tx(skb.len());
        match skb.try_copy() {
            Ok(rx) => dev.receive(rx),
            Err(_) => dev.count_rx_dropped(),
        }
        // The transmitted skb is freed here, as the original's dev_kfree_skb.
    }
}

struct VNetLoop {
    dev: Registration<Loop>,
}

impl kernel::Module for VNetLoop {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let dev = Registration::register(c"vnetloop%d", Loop)?;
        pr_info!("registered {}\n", dev.dev().name());
        Ok(VNetLoop { dev })
    }
}

impl Drop for VNetLoop {
    fn drop(&mut self) {
        pr_info!("unregistering {}\n", self.dev.dev().name());
    }
}
