// SPDX-License-Identifier: GPL-2.0

//! LKMPG sched in Rust: work queued on a workqueue of the module's own ("HELLOWORLD", unbound,
//! one work item at a time, as the original's `alloc_workqueue`) runs and logs
//! "work handler function.".
//!
//! The work items use 7.2's `kernel::workqueue` (`Work`, `WorkItem`, `enqueue`); the queue is
//! `kmods/lib/owned_queue.rs`, whose drop drains it, as the original's `destroy_workqueue`.
//! Beyond the original: `works=N` queues N items at load (1, as the original, by default),
//! `delay_ms` makes each item sleep first, /proc/sys/lkmpg/sched shows how many have run and
//! takes a number of items to queue. rmmod waits for every queued item, then logs the count.

use core::sync::atomic::{AtomicU64, Ordering};
use kernel::{
    global_lock,
    prelude::*,
    time::{delay::fsleep, Delta},
    workqueue::{impl_has_work, new_work, Work, WorkItem},
};

#[path = "../../lib/owned_queue.rs"]
mod owned_queue;
#[path = "../../lib/params.rs"]
mod params;
// Only its number parsing and printing are used here.
#[allow(dead_code)]
#[path = "../../lib/race.rs"]
mod race;
#[path = "../../lib/sysctl.rs"]
mod sysctl;

use owned_queue::OwnedQueue;
use sysctl::{entry, Registration, SysctlFile, SysctlTable};

module! {
    type: Sched,
    name: "sched",
    authors: ["rustkm"],
    description: "Workqueue example",
    license: "GPL",
}

params::module_param!(works: u32 = 1, perm: 0o444, desc: "Work items queued at load");
params::module_param!(delay_ms: u32 = 0, perm: 0o444, desc: "How long each work item sleeps");

/// The most work items one load or one write may queue.
const MAX_WORKS: u64 = 10_000;
/// The longest a work item may sleep.
const MAX_DELAY_MS: u32 = 1_000;

/// How many work items have run.
static RAN: AtomicU64 = AtomicU64::new(0);

global_lock! {
    // SAFETY: initialised in `init` before anything locks it.
    unsafe(uninit) static QUEUE: Mutex<Option<OwnedQueue>> = None;
}

/// One queued piece of work.
#[pin_data]
struct Job {
    #[pin]
    work: Work<Job>,
}

impl_has_work! {
    impl HasWork<Self> for Job { self.work }
}

impl WorkItem for Job {
    type Pointer = Pin<KBox<Job>>;

    fn run(_this: Pin<KBox<Job>>) {
        let delay = delay_ms.get();
        if delay > 0 {
            fsleep(Delta::from_millis(i64::from(delay)));
        }
        pr_info!("work handler function.\n");
        RAN.fetch_add(1, Ordering::Relaxed);
    }
}

/// Queues `count` work items on the module's queue; ENODEV once it is being destroyed.
fn queue_works(count: u64) -> Result {
    if count > MAX_WORKS {
        return Err(EINVAL);
    }
    let guard = QUEUE.lock();
    let queue = guard.as_ref().ok_or(ENODEV)?;
    for _ in 0..count {
        let job = KBox::pin_init(
            pin_init!(Job { work <- new_work!("Job::work") }),
            GFP_KERNEL,
        )?;
        queue.enqueue(job);
    }
    Ok(())
}

/// /proc/sys/lkmpg/sched: reads show how many work items have run, a write of N queues N.
struct Control;

impl SysctlFile for Control {
    fn show(&self, out: &mut [u8]) -> usize {
        race::show_u64(RAN.load(Ordering::Relaxed), out)
    }

    fn store(&self, input: &[u8]) -> Result {
        queue_works(race::parse_times(input)?)
    }
}

static CONTROL: Control = Control;
static TABLE: SysctlTable<1> = SysctlTable::new([entry(c"sched", 0o644, &CONTROL)]);

struct Sched {
    sysctl: Option<Registration>,
}

impl kernel::Module for Sched {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        if delay_ms.get() > MAX_DELAY_MS {
            pr_err!("delay_ms must be at most {}\n", MAX_DELAY_MS);
            return Err(EINVAL);
        }
        // SAFETY: called once, before anything locks the mutex.
        unsafe { QUEUE.init() };
        let queue = OwnedQueue::new(c"HELLOWORLD", true, 1).inspect_err(|_| {
            pr_err!("Failed to allocate workqueue\n");
        })?;
        *QUEUE.lock() = Some(queue);
        let registered = queue_works(u64::from(works.get()))
            .and_then(|()| Registration::register(c"lkmpg", &TABLE));
        match registered {
            Ok(sysctl) => Ok(Sched {
                sysctl: Some(sysctl),
            }),
            Err(e) => {
                // The queue lives in a static, which is never dropped: destroy it here, which
                // waits for what was queued, before the module's code goes away.
                let queue = QUEUE.lock().take();
                drop(queue);
                Err(e)
            }
        }
    }
}

impl Drop for Sched {
    fn drop(&mut self) {
        // No more writes queue work once the file is gone.
        drop(self.sysctl.take());
        let queue = QUEUE.lock().take();
        // Destroying the queue waits for every work item on it.
        drop(queue);
        pr_info!(
            "sched exit: {} work items ran\n",
            RAN.load(Ordering::Relaxed)
        );
    }
}
