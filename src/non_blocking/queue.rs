//! What producers and the background thread share, and the producers' side: queueing an
//! event, waiting for room, flushing.
//!
//! A producer never takes a lock that the background thread can hold, except to wait
//! for room in a full queue when the writer is lossless (the documented backpressure), and
//! in `flush`: it reserves room with a compare-and-swap on the cursor (see `buffer`),
//! copies its event in, and wakes the background thread only if it sleeps (see `wake`).

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use super::buffer::{Buffer, CLOSED, Cursor, END_BYTES, MAX_CAPACITY};
use super::wake::Wake;
use crate::report::IfFailed;
use crate::writer::SharedFile;

/// What the writers and the background thread share.
pub(super) struct Shared {
    pub(super) file: SharedFile,
    /// The two buffers; the cursor says which one producers fill.
    pub(super) buffers: [Buffer; 2],
    /// See `buffer::Cursor`.
    pub(super) cursor: AtomicU64,
    pub(super) wake: Wake,
    /// Set by the guard's drop: the background thread closes the queue, writes what is
    /// left and stops.
    pub(super) closing: AtomicBool,
    /// Producers waiting for room (lossless, queue full), and what they wait on: the
    /// background thread notifies only when this count says someone waits.
    room_waiters: AtomicUsize,
    room: Mutex<()>,
    room_freed: Condvar,
    /// Swaps of the buffers: the number of the latest begun, and of the latest whose
    /// buffer is written. A flush waits for the swap after the one begun when it started.
    pub(super) swaps_begun: AtomicU64,
    pub(super) swaps_done: AtomicU64,
    /// The highest swap a flush waits for: the background thread swaps even an empty
    /// buffer until it gets there.
    pub(super) flush_target: AtomicU64,
    flushes: Mutex<Flushes>,
    flushed: Condvar,
    /// The capacity of each buffer: event bytes plus `END_BYTES` per event.
    pub(super) capacity: usize,
    pub(super) max_batch_bytes: usize,
    pub(super) lossy: bool,
    /// The process that runs the background thread; a forked child has none.
    pub(super) fork_generation: u64,
}

#[derive(Default)]
struct Flushes {
    /// The background thread has stopped (or never started): nothing is queued any more.
    worker_gone: bool,
}

impl Shared {
    pub(super) fn new(
        file: SharedFile,
        max_queued_bytes: usize,
        max_batch_bytes: usize,
        lossy: bool,
    ) -> Self {
        let mut capacity = max_queued_bytes.clamp(1, MAX_CAPACITY);
        let buffers = match Buffer::new(capacity).and_then(|a| Ok([a, Buffer::new(capacity)?])) {
            Ok(buffers) => buffers,
            Err(error) => {
                eprintln!(
                    "tracing-shared-file: cannot map the non-blocking writer's buffers for `{}`, writing synchronously: {error}",
                    file.path().display()
                );
                capacity = 0;
                [Buffer::none(), Buffer::none()]
            }
        };
        Shared {
            file,
            buffers,
            // Closed at once without buffers: every event is written synchronously.
            cursor: AtomicU64::new(Cursor::empty(0, capacity == 0)),
            wake: Wake::default(),
            closing: AtomicBool::new(false),
            room_waiters: AtomicUsize::new(0),
            room: Mutex::new(()),
            room_freed: Condvar::new(),
            swaps_begun: AtomicU64::new(0),
            swaps_done: AtomicU64::new(0),
            flush_target: AtomicU64::new(0),
            flushes: Mutex::new(Flushes::default()),
            flushed: Condvar::new(),
            capacity,
            max_batch_bytes: max_batch_bytes.max(1),
            lossy,
            fork_generation: crate::platform::fork_generation(),
        }
    }

    pub(super) fn cursor(&self) -> Cursor {
        Cursor(self.cursor.load(Ordering::SeqCst))
    }

    /// How much must be queued for a lingering background thread to be woken.
    pub(super) fn full_batch(&self) -> usize {
        self.max_batch_bytes.min(self.capacity)
    }

    /// Whether a flush waits for a swap not yet done.
    pub(super) fn flush_pending(&self) -> bool {
        self.flush_target.load(Ordering::SeqCst) > self.swaps_done.load(Ordering::SeqCst)
    }

    pub(super) fn enqueue(&self, event: &[u8]) -> io::Result<()> {
        if event.is_empty() {
            return Ok(());
        }
        // In a forked child no background thread drains the buffers, and a parent thread
        // may have been half-way through a copy at the fork: never touch them.
        if crate::platform::fork_generation() != self.fork_generation {
            return self.file.write_event(event, IfFailed::Drop);
        }
        if event.len() + END_BYTES > self.capacity && !self.cursor().closed() {
            // It could never fit: write it synchronously, in its turn after everything
            // queued before unless lossy (which never waits for the queue).
            if !self.lossy {
                self.flush();
            }
            return self.file.write_event(event, IfFailed::Drop);
        }
        let reserved = match self.reserve(event.len()) {
            Reserved::Taken(cursor) => cursor,
            Reserved::Closed => return self.write_after_close(event),
            Reserved::Full if self.lossy => {
                self.file.counters().dropped(1);
                // A lingering thread waits for a full batch, which a lossy queue that
                // drops what does not fit may never hold: the queue is full, write it.
                self.wake.after_work(true);
                return Ok(());
            }
            // An `on_error` hook logging from the background thread: it cannot wait for
            // itself to make room.
            Reserved::Full if self.wake.on_worker() => {
                return self.file.write_event(event, IfFailed::Drop);
            }
            Reserved::Full => match self.wait_for_room(event.len()) {
                Some(cursor) => cursor,
                None => return self.write_after_close(event),
            },
        };
        let buffer = &self.buffers[reserved.active()];
        // SAFETY: `reserve` gave this index and range to this call alone.
        unsafe { buffer.put(reserved.count(), reserved.offset(), event) };
        // `SeqCst`: the background thread, before it sleeps, publishes that it does and
        // then reads the cursor, which this reservation changed before this reads its
        // state (see `wake`).
        buffer.committed.fetch_add(1, Ordering::SeqCst);
        let held = Cursor(reserved.plus(event.len())).held();
        self.wake.after_work(held >= self.full_batch());
        Ok(())
    }

    /// Writes `event` synchronously once the queue has closed: after the background thread
    /// has written what it took at the close, which may hold this thread's earlier events,
    /// so that they stay in order.
    fn write_after_close(&self, event: &[u8]) -> io::Result<()> {
        self.flush();
        self.file.write_event(event, IfFailed::Drop)
    }

    /// Reserves room for an event of `len` bytes (it fits an empty buffer), unless the
    /// queue is closed or full; returns the cursor it reserved at.
    fn reserve(&self, len: usize) -> Reserved {
        let mut cursor = self.cursor();
        loop {
            if cursor.closed() {
                return Reserved::Closed;
            }
            if cursor.held() + len + END_BYTES > self.capacity {
                return Reserved::Full;
            }
            match self.cursor.compare_exchange_weak(
                cursor.0,
                cursor.plus(len),
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return Reserved::Taken(cursor),
                Err(now) => cursor = Cursor(now),
            }
        }
    }

    /// Waits until `len` bytes fit (returning the cursor reserved at) or the queue closes
    /// (`None`). The only place a producer blocks: a full queue, lossless.
    fn wait_for_room(&self, len: usize) -> Option<Cursor> {
        // Counted before the look under the lock; the background thread swaps the buffers
        // before it reads the count (both `SeqCst`): either this look sees the swap, or
        // the thread sees the waiter and notifies under the lock.
        self.room_waiters.fetch_add(1, Ordering::SeqCst);
        let mut room = self.lock_room();
        let reserved = loop {
            match self.reserve(len) {
                Reserved::Taken(cursor) => break Some(cursor),
                Reserved::Closed => break None,
                Reserved::Full => {}
            }
            // A lingering thread is not waiting for this: make sure it is writing.
            self.wake.after_work(true);
            room = self
                .room_freed
                .wait(room)
                .unwrap_or_else(PoisonError::into_inner);
        };
        drop(room);
        self.room_waiters.fetch_sub(1, Ordering::SeqCst);
        reserved
    }

    fn lock_room(&self) -> MutexGuard<'_, ()> {
        self.room.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Background thread, after a swap or the close: lets producers waiting for room try
    /// again.
    pub(super) fn notify_room_waiters(&self) {
        if self.room_waiters.load(Ordering::SeqCst) > 0 {
            let _room = self.lock_room();
            self.room_freed.notify_all();
        }
    }

    /// Asks the background thread to write what is queued and stop; producers write
    /// synchronously once it has closed the queue.
    pub(super) fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        self.wake.after_work(true);
    }

    fn lock_flushes(&self) -> MutexGuard<'_, Flushes> {
        // Nothing under this lock can panic half-way: a poisoned lock is still consistent.
        self.flushes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Returns once every event queued before the call is written (or dropped after a
    /// failure, counted and reported). At once in a forked child, which writes
    /// synchronously, and on the background thread itself (an `on_error` hook that
    /// flushes would otherwise wait for itself).
    ///
    /// An event queued before the call is in the buffer of a swap no later than the one
    /// after the latest begun, so the call waits for that swap to be written.
    pub(super) fn flush(&self) {
        if crate::platform::fork_generation() != self.fork_generation || self.wake.on_worker() {
            return;
        }
        let target = self.swaps_begun.load(Ordering::SeqCst) + 1;
        self.flush_target.fetch_max(target, Ordering::SeqCst);
        self.wake.after_work(true);
        let mut flushes = self.lock_flushes();
        while self.swaps_done.load(Ordering::SeqCst) < target && !flushes.worker_gone {
            flushes = self
                .flushed
                .wait(flushes)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Background thread: swap `swap`'s buffer is written.
    pub(super) fn swap_done(&self, swap: u64) {
        self.swaps_done.store(swap, Ordering::SeqCst);
        // A flush counts its target before it reads `swaps_done` under the lock: either it
        // sees this swap, or this sees its target and notifies under the lock.
        if self.flush_target.load(Ordering::SeqCst) >= swap {
            let _flushes = self.lock_flushes();
            self.flushed.notify_all();
        }
    }

    /// The background thread has stopped, or could not start: close the queue and let
    /// everyone waiting for it go.
    pub(super) fn worker_gone(&self) {
        self.cursor.fetch_or(CLOSED, Ordering::SeqCst);
        self.notify_room_waiters();
        self.lock_flushes().worker_gone = true;
        self.flushed.notify_all();
    }
}

/// How a reservation of room went.
enum Reserved {
    /// Taken, at this cursor: the event's index and offset in the active buffer.
    Taken(Cursor),
    Full,
    Closed,
}
