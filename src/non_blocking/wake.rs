//! Waking the background thread without a lock: producers never wait for it, and make a
//! wake-up call only when it sleeps, or lingers while a full batch is waiting.
//!
//! The sleep/wake race is closed the classic way (Dekker), with `SeqCst` operations on
//! both sides: the worker stores its state, then reads whether there is work; a producer
//! makes its work visible with a `SeqCst` write (its reservation), then reads the state.
//! All `SeqCst` operations fall in one total order, so whichever side comes second sees
//! what the other wrote: either the worker finds the work, or the producer finds the
//! worker asleep and wakes it. `park`'s token covers an `unpark` that comes between the
//! worker's last look and its `park`.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};
use std::thread::{self, Thread};
use std::time::Duration;

/// The background thread is working: nobody needs to wake it.
const RUNNING: u8 = 0;
/// It ran dry and waits briefly for more events to batch: wake it only for a full batch
/// (or a flush, or the close).
const LINGERING: u8 = 1;
/// It waits until woken.
const SLEEPING: u8 = 2;

/// The background thread's state, and the handle that wakes it.
#[derive(Default)]
pub(super) struct Wake {
    state: AtomicU8,
    worker: OnceLock<Thread>,
}

impl Wake {
    /// Called by the background thread first thing: it cannot be asked to wake before
    /// this, because only it leaves `RUNNING`.
    pub(super) fn register_worker(&self) {
        let _ = self.worker.set(thread::current());
    }

    /// Whether the caller is the background thread.
    pub(super) fn on_worker(&self) -> bool {
        self.worker
            .get()
            .is_some_and(|worker| worker.id() == thread::current().id())
    }

    /// Producer side, after making work visible with a `SeqCst` write: wakes the thread
    /// if it sleeps, or if it lingers and `urgent` (a full batch waits, a flush, the
    /// close).
    pub(super) fn after_work(&self, urgent: bool) {
        match self.state.load(Ordering::SeqCst) {
            RUNNING => {}
            LINGERING if !urgent => {}
            _ => {
                // One producer makes the call; the others then see `RUNNING`.
                if self.state.swap(RUNNING, Ordering::SeqCst) != RUNNING
                    && let Some(worker) = self.worker.get()
                {
                    worker.unpark();
                }
            }
        }
    }

    /// Worker side: waits up to `linger` for a producer to say a full batch (or something
    /// else urgent) is waiting, unless `urgent` already says so. It may return early.
    pub(super) fn linger(&self, linger: Duration, urgent: impl Fn() -> bool) {
        self.state.store(LINGERING, Ordering::SeqCst);
        if !urgent() {
            thread::park_timeout(linger);
        }
        self.state.store(RUNNING, Ordering::SeqCst);
    }

    /// Worker side: waits until `ready` holds. The state is published again before each
    /// look: a wake-up that found nothing (a spurious one, or a producer waking it before
    /// its push) must not leave it asleep as `RUNNING`, which nobody would wake.
    pub(super) fn sleep(&self, ready: impl Fn() -> bool) {
        loop {
            self.state.store(SLEEPING, Ordering::SeqCst);
            if ready() {
                break;
            }
            thread::park();
        }
        self.state.store(RUNNING, Ordering::SeqCst);
    }
}
