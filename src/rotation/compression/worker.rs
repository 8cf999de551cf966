//! The compressor of this process: one background thread for every log, started at the
//! first job, and the waits for it (at exit, and on request).
//!
//! Invariants:
//! - One thread per process whatever the number of logs, working on one log at a time,
//!   so compression holds at most two descriptors of its own at once (an archive and its
//!   temporary; a directory listing's, before them).
//! - At most one job waits per log: a rotation while one waits replaces it (a pass does
//!   every archive, so one pass after the last rotation is enough).
//! - A job keeps its log alive (its descriptors, its locks) until its pass has run, so a
//!   log dropped right after rotating still has its archives compressed.
//! - When the process exits normally, an exit handler (registered once, at the first job)
//!   waits for every job queued or under way, up to the longest `compress_exit_timeout`
//!   of the logs that asked; then the pass under way stops at its next block and removes
//!   its temporary file, and the process goes. A killed process leaves its claim, which
//!   the next pass, in any process, removes, compressing what it covered.
//! - A forked child has no thread of its parent: its first job starts one of its own, and
//!   nothing in it ever waits for the parent's, or touches the parent's queue (another
//!   thread may have held its mutex at the fork).

use std::collections::VecDeque;
use std::io;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::Job;
use crate::platform;

/// How long an exit waits, after its limit, for the pass under way to stop and remove its
/// temporary file.
const STOP_GRACE: Duration = Duration::from_millis(200);

/// This process's compressor (of this fork generation).
struct Compressor {
    generation: u64,
    queue: Mutex<Queue>,
    changed: Condvar,
    /// Set at exit once the wait is over: the pass under way stops.
    stopping: AtomicBool,
}

#[derive(Default)]
struct Queue {
    pending: VecDeque<Job>,
    /// The log whose pass is under way.
    running: Option<usize>,
    started: bool,
    /// The thread's [`platform::thread_id`], so that an exit called on it does not wait
    /// for itself.
    thread: Option<u64>,
    /// The longest `compress_exit_timeout` of the logs that asked.
    exit_timeout: Duration,
}

impl Queue {
    fn has(&self, log: usize) -> bool {
        self.running == Some(log) || self.pending.iter().any(|job| job.key() == log)
    }

    fn is_idle(&self) -> bool {
        self.running.is_none() && self.pending.is_empty()
    }
}

/// The compressor of the generation that made it; one left by a parent is leaked in a
/// forked child, whose copy of its mutex may be held forever.
static CURRENT: AtomicPtr<Compressor> = AtomicPtr::new(ptr::null_mut());
/// Whether the exit handler is registered: a flag, not a `Once`, which a fork in the
/// middle of registering would leave blocking every later caller in the child.
static EXIT_HOOK: AtomicBool = AtomicBool::new(false);

/// This process's compressor, if it has one.
fn existing() -> Option<&'static Compressor> {
    let current = CURRENT.load(Ordering::Acquire);
    // SAFETY: set only from `Box::into_raw`, and never freed once published.
    let compressor = unsafe { current.as_ref() }?;
    (compressor.generation == platform::fork_generation()).then_some(compressor)
}

/// This process's compressor, made if it has none yet.
fn this_process() -> &'static Compressor {
    loop {
        if let Some(compressor) = existing() {
            return compressor;
        }
        let current = CURRENT.load(Ordering::Acquire);
        let fresh = Box::into_raw(Box::new(Compressor {
            generation: platform::fork_generation(),
            queue: Mutex::new(Queue::default()),
            changed: Condvar::new(),
            stopping: AtomicBool::new(false),
        }));
        match CURRENT.compare_exchange(current, fresh, Ordering::AcqRel, Ordering::Acquire) {
            // SAFETY: just published, never freed.
            Ok(_) => return unsafe { &*fresh },
            // Another thread made one first: ours was never seen by anyone.
            // SAFETY: from `Box::into_raw` above, not published.
            Err(_) => drop(unsafe { Box::from_raw(fresh) }),
        }
    }
}

impl Compressor {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until `done` holds or `deadline` passes; whether `done` holds.
    fn wait_until<'a>(
        &self,
        mut queue: MutexGuard<'a, Queue>,
        deadline: Instant,
        done: impl Fn(&Queue) -> bool,
    ) -> (MutexGuard<'a, Queue>, bool) {
        loop {
            if done(&queue) {
                return (queue, true);
            }
            let now = Instant::now();
            if now >= deadline {
                return (queue, false);
            }
            queue = self
                .changed
                .wait_timeout(queue, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn run(&'static self) {
        self.queue().thread = Some(platform::thread_id());
        loop {
            let job = {
                let mut queue = self.queue();
                loop {
                    if self.stopping.load(Ordering::Acquire) {
                        return;
                    }
                    if let Some(job) = queue.pending.pop_front() {
                        queue.running = Some(job.key());
                        break job;
                    }
                    queue = self
                        .changed
                        .wait(queue)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            };
            // A bug in a pass must not end the thread that every log of the process uses.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                if let Err(error) = super::pass(&job, &self.stopping)
                    && !self.stopping.load(Ordering::Acquire)
                {
                    job.host.report(&error);
                }
            }));
            // The log may go with its job: dropped before anyone is told the pass is over.
            drop(job);
            self.queue().running = None;
            self.changed.notify_all();
        }
    }

    /// At exit: waits for every job, up to the limit, then has the pass under way stop.
    fn wait_at_exit(&self) {
        // Not `lock()`: an exit from a signal handler that interrupted this very thread
        // inside `request` would wait for itself.
        let mut queue = None;
        let give_up = Instant::now() + STOP_GRACE;
        while queue.is_none() && Instant::now() < give_up {
            queue = match self.queue.try_lock() {
                Ok(queue) => Some(queue),
                Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => {
                    std::thread::sleep(Duration::from_millis(1));
                    None
                }
            };
        }
        let Some(queue) = queue else {
            return;
        };
        if queue.thread == Some(platform::thread_id()) {
            // `exit` called on the compressor's own thread (by an `on_error` hook).
            return;
        }
        let deadline = after(queue.exit_timeout);
        let (queue, done) = self.wait_until(queue, deadline, Queue::is_idle);
        if !done {
            self.stopping.store(true, Ordering::Release);
            self.changed.notify_all();
            let deadline = Instant::now() + STOP_GRACE;
            let _ = self.wait_until(queue, deadline, |queue| queue.running.is_none());
        }
    }
}

/// Queues `job` for this process's compressor, starting its thread (and registering the
/// exit handler) at the first job; an error if no thread could be started, in which
/// case the next rotation tries again.
pub(crate) fn request(job: Job) -> io::Result<()> {
    let compressor = this_process();
    let mut queue = compressor.queue();
    queue.exit_timeout = queue.exit_timeout.max(job.exit_timeout);
    let key = job.key();
    if let Some(waiting) = queue.pending.iter_mut().find(|other| other.key() == key) {
        *waiting = job;
        return Ok(());
    }
    queue.pending.push_back(job);
    if !queue.started {
        let started = std::thread::Builder::new()
            .name("tsf-compress".into())
            .spawn(move || compressor.run());
        if let Err(error) = started {
            queue.pending.clear();
            return Err(error);
        }
        queue.started = true;
        if !EXIT_HOOK.swap(true, Ordering::AcqRel) {
            // Without it, a process that exits right after rotating leaves its archives
            // plain until the next rotation; nothing else depends on it.
            let _ = platform::at_exit(wait_at_exit);
        }
    }
    drop(queue);
    compressor.changed.notify_all();
    Ok(())
}

/// Waits until the jobs queued so far for the log `key` are done, or `timeout` passes;
/// whether they are done.
pub(crate) fn wait_for(key: usize, timeout: Duration) -> bool {
    let Some(compressor) = existing() else {
        return true;
    };
    let queue = compressor.queue();
    if queue.thread == Some(platform::thread_id()) {
        // Called from a hook on the compressor's own thread: it cannot wait for itself.
        return !queue.has(key);
    }
    compressor
        .wait_until(queue, after(timeout), |queue| !queue.has(key))
        .1
}

/// `timeout` from now; a year for a timeout too long for the clock (`Duration::MAX`).
fn after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(365 * 86_400))
}

extern "C" fn wait_at_exit() {
    // Nothing may unwind out of an exit handler.
    let _ = std::panic::catch_unwind(|| {
        if let Some(compressor) = existing() {
            compressor.wait_at_exit();
        }
    });
}
