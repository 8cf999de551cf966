//! The queue of the non-blocking writer, and the background thread that drains it.

use std::io;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::critical_section::IfFailed;
use crate::fork;
use crate::writer::SharedFile;

/// How long the background thread, having written everything, waits for more events
/// before it goes to sleep. Events arriving meanwhile go out in one batch, without a
/// wake-up call per event; it is also the most an event waits in the queue behind an
/// idle moment.
const LINGER: Duration = Duration::from_millis(1);

/// What the writers and the background thread share.
pub(super) struct Shared {
    pub(super) file: SharedFile,
    pub(super) queue: Mutex<Queue>,
    /// Wakes the background thread: events arrived, or the queue closed.
    pub(super) work: Condvar,
    /// Wakes producers waiting for room.
    pub(super) room: Condvar,
    /// Wakes callers of `flush`: the background thread finished a batch.
    pub(super) flushed: Condvar,
    /// The background thread, which must never wait for itself in `flush`.
    pub(super) worker_thread: std::sync::OnceLock<std::thread::ThreadId>,
    pub(super) max_queued_bytes: usize,
    pub(super) max_batch_bytes: usize,
    pub(super) lossy: bool,
    /// The process that runs the background thread; a forked child has none.
    pub(super) fork_generation: u64,
}

/// Makes room for `additional` more items, growing geometrically as `Vec` does but never
/// past `limit` items unless the items themselves need it (one event larger than the
/// queue): the queue's memory then stays within its bound, slack included.
fn reserve_within<T>(vec: &mut Vec<T>, additional: usize, limit: usize) {
    let needed = vec.len() + additional;
    if needed <= vec.capacity() {
        return;
    }
    let target = needed.max(vec.capacity() * 2).min(limit.max(needed));
    vec.reserve_exact(target - vec.len());
}

/// The memory one queued event holds: its bytes and its end offset.
fn held_bytes(event: &[u8]) -> usize {
    event.len() + std::mem::size_of::<usize>()
}

#[derive(Default)]
pub(super) struct Queue {
    /// Formatted events back to back; `ends[i]` is where event `i` ends.
    bytes: Vec<u8>,
    ends: Vec<usize>,
    /// The background thread sleeps until a producer wakes it.
    worker_idle: bool,
    /// The background thread is waiting briefly for more events to batch; producers wake
    /// it only once a full batch is queued.
    worker_lingering: bool,
    producers_waiting: usize,
    /// No background thread will take more events: write synchronously instead.
    pub(super) closed: bool,
    /// Events ever queued, and events the background thread has finished with (written,
    /// or dropped after a failure): `flush` waits for the second to catch up.
    queued_total: u64,
    finished_total: u64,
}

impl Queue {
    /// The memory the queued events hold, bookkeeping included.
    fn held_bytes(&self) -> usize {
        self.bytes.len() + self.ends.len() * std::mem::size_of::<usize>()
    }
}

impl Shared {
    pub(super) fn lock_queue(&self) -> MutexGuard<'_, Queue> {
        // Queue operations cannot panic half-way, so a poisoned queue is still consistent.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn enqueue(&self, event: &[u8]) -> io::Result<()> {
        if event.is_empty() {
            return Ok(());
        }
        // In a forked child the queue may have been locked by a parent thread that does not
        // exist here, and no background thread drains it: never touch it.
        if fork::generation() != self.fork_generation {
            return self.file.write_event(event, IfFailed::Drop);
        }
        let mut queue = self.lock_queue();
        loop {
            if queue.closed {
                drop(queue);
                return self.file.write_event(event, IfFailed::Drop);
            }
            if queue.bytes.is_empty()
                || queue.held_bytes() + held_bytes(event) <= self.max_queued_bytes
            {
                break;
            }
            if self.lossy {
                drop(queue);
                self.file.counters().dropped(1);
                return Ok(());
            }
            queue.producers_waiting += 1;
            queue = self
                .room
                .wait(queue)
                .unwrap_or_else(PoisonError::into_inner);
            queue.producers_waiting -= 1;
        }
        let max_ends = self.max_queued_bytes / std::mem::size_of::<usize>();
        reserve_within(&mut queue.bytes, event.len(), self.max_queued_bytes);
        reserve_within(&mut queue.ends, 1, max_ends);
        queue.bytes.extend_from_slice(event);
        let end = queue.bytes.len();
        queue.ends.push(end);
        queue.queued_total += 1;
        // Waking the thread is a system call: do it only when it would otherwise sleep on
        // with events waiting, not for every event.
        let wake = queue.worker_idle || queue.worker_lingering && end >= self.max_batch_bytes;
        if wake {
            queue.worker_idle = false;
            queue.worker_lingering = false;
            self.work.notify_one();
        }
        Ok(())
    }

    /// Returns once every event queued before the call is written (or dropped after a
    /// failure, counted and reported). At once in a forked child, which writes
    /// synchronously, and on the background thread itself (an `on_error` hook that
    /// flushes would otherwise wait for itself).
    pub(super) fn flush(&self) {
        if fork::generation() != self.fork_generation
            || self.worker_thread.get() == Some(&std::thread::current().id())
        {
            return;
        }
        let mut queue = self.lock_queue();
        let target = queue.queued_total;
        // Whatever the background thread is waiting for, these events go now.
        queue.worker_idle = false;
        queue.worker_lingering = false;
        self.work.notify_one();
        while queue.finished_total < target && !queue.closed {
            queue = self
                .flushed
                .wait(queue)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    pub(super) fn run_worker(&self) {
        let _ = self.worker_thread.set(std::thread::current().id());
        // Whatever ends this thread, producers and flushes must stop waiting for it.
        struct CloseOnExit<'a>(&'a Shared);
        impl Drop for CloseOnExit<'_> {
            fn drop(&mut self) {
                self.0.lock_queue().closed = true;
                self.0.room.notify_all();
                self.0.flushed.notify_all();
            }
        }
        let _close = CloseOnExit(self);

        let mut batch = Vec::new();
        let mut ends = Vec::new();
        loop {
            {
                let mut queue = self.lock_queue();
                if queue.bytes.is_empty() && !queue.closed {
                    // While events keep coming, wait a moment so they go out together.
                    queue.worker_lingering = true;
                    queue = self
                        .work
                        .wait_timeout(queue, LINGER)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                    queue.worker_lingering = false;
                }
                while queue.bytes.is_empty() && !queue.closed {
                    queue.worker_idle = true;
                    queue = self
                        .work
                        .wait(queue)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                queue.worker_idle = false;
                if queue.bytes.is_empty() {
                    return;
                }
                std::mem::swap(&mut queue.bytes, &mut batch);
                std::mem::swap(&mut queue.ends, &mut ends);
                if queue.producers_waiting > 0 {
                    self.room.notify_all();
                }
            }
            self.write_batches(&batch, &ends);
            let finished = ends.len() as u64;
            batch.clear();
            ends.clear();
            self.lock_queue().finished_total += finished;
            self.flushed.notify_all();
            // One oversized event must not keep its memory for good: these buffers swap
            // with the queue, so each stays near the bound.
            if batch.capacity() > self.max_queued_bytes {
                batch.shrink_to(self.max_queued_bytes);
            }
        }
    }

    /// Writes the events in `batch` in runs of at most `max_batch_bytes`, each under one
    /// hold of the lock. A run whose write fails is counted and reported by the file, and
    /// the next run tries again; but once a run timed out waiting for the lock, the rest
    /// of the batch is dropped (counted and reported), so that a stuck lock holder costs
    /// one `lock_timeout` per batch, and dropping the guard returns.
    fn write_batches(&self, batch: &[u8], ends: &[usize]) {
        let mut first = 0;
        let mut start = 0;
        while first < ends.len() {
            let mut last = first + 1;
            while last < ends.len() && ends[last] - start <= self.max_batch_bytes {
                last += 1;
            }
            let result = self.file.write_events(batch, start, &ends[first..last]);
            start = ends[last - 1];
            first = last;
            if let Err(error) = result
                && error.kind() == io::ErrorKind::TimedOut
                && first < ends.len()
            {
                self.file.batch_dropped((ends.len() - first) as u64, &error);
                return;
            }
        }
    }
}
