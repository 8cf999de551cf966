//! The background thread: swaps the buffers, waits for the copies still under way into
//! the one it took, and writes it out in batches, each under one hold of the lock.

use std::io;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::buffer::Cursor;
use super::queue::Shared;

/// How long the background thread, having written everything, waits for more events
/// before it goes to sleep. Events arriving meanwhile go out in one batch, without a
/// wake-up call per event; it is also the most an event waits in the queue behind an
/// idle moment.
const LINGER: Duration = Duration::from_millis(1);

impl Shared {
    pub(super) fn run_worker(&self) {
        self.wake.register_worker();
        // On a busy machine, a log call caught by this thread's wake-up would otherwise
        // wait for the whole batch to be written.
        crate::platform::prefer_not_to_preempt();
        // Whatever ends this thread, producers and flushes must stop waiting for it.
        struct GoneOnExit<'a>(&'a Shared);
        impl Drop for GoneOnExit<'_> {
            fn drop(&mut self) {
                self.0.worker_gone();
            }
        }
        let _gone = GoneOnExit(self);

        let mut swaps = 0;
        let mut lingered = false;
        loop {
            let closing = self.closing.load(Ordering::SeqCst);
            if closing || self.cursor().count() > 0 || self.flush_pending() {
                lingered = false;
                swaps += 1;
                self.swap_and_write(swaps, closing);
                if closing {
                    return;
                }
            } else if !lingered {
                // While events keep coming, wait a moment so they go out together.
                lingered = true;
                self.wake.linger(LINGER, || {
                    self.closing.load(Ordering::SeqCst)
                        || self.cursor().held() >= self.full_batch()
                        || self.flush_pending()
                });
            } else {
                self.wake.sleep(|| {
                    self.closing.load(Ordering::SeqCst)
                        || self.cursor().count() > 0
                        || self.flush_pending()
                });
            }
        }
    }

    /// Makes the other buffer the active one (closing the queue if `close`), and writes
    /// out the one taken: swap number `swap`.
    fn swap_and_write(&self, swap: u64, close: bool) {
        self.swaps_begun.store(swap, Ordering::SeqCst);
        let active = self.cursor().active();
        let taken = Cursor(
            self.cursor
                .swap(Cursor::empty(1 - active, close), Ordering::SeqCst),
        );
        // Only this thread swaps, so the buffer taken is the one read above.
        debug_assert_eq!(taken.active(), active);
        self.notify_room_waiters();
        let buffer = &self.buffers[active];
        buffer.wait_committed(taken.count());
        if taken.count() > 0 {
            // SAFETY: every reservation in it is committed, and producers reserve only in
            // the other buffer until the next swap, which this thread makes after this.
            let (bytes, ends) = unsafe { buffer.events(taken.count(), taken.offset()) };
            self.write_batches(bytes, ends);
        }
        buffer.committed.store(0, Ordering::SeqCst);
        self.swap_done(swap);
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
