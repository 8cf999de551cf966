//! The non-blocking writer: events go into a bounded in-memory queue, and a background
//! thread writes everything queued as a few large batches, each under one hold of the
//! lock and, where the live file has room, in one `write(2)`.
//!
//! The locks and the system calls are the cost of a shared file, so batching is where the
//! speed comes from: one flock, one `write(2)` and one unlock for many events.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

use crate::critical_section::IfFailed;
use crate::event_writer::{EventSink, EventWriter};
use crate::fork;
use crate::writer::SharedFile;

/// The default for [`NonBlockingBuilder::max_queued_bytes`]: 8 MiB.
pub const DEFAULT_MAX_QUEUED_BYTES: usize = 8 * 1024 * 1024;

/// The default for [`NonBlockingBuilder::max_batch_bytes`]: 256 KiB.
pub const DEFAULT_MAX_BATCH_BYTES: usize = 256 * 1024;

/// How long the background thread, having written everything, waits for more events
/// before it goes to sleep. Events arriving meanwhile go out in one batch, without a
/// wake-up call per event; it is also the most an event waits in the queue behind an
/// idle moment.
const LINGER: Duration = Duration::from_millis(1);

/// Configures the non-blocking writer of a [`SharedFile`]; made by
/// [`SharedFile::non_blocking_builder`].
///
/// # Examples
///
/// ```
/// use tracing_shared_file::SharedFile;
///
/// let dir = tempfile::tempdir()?;
/// let log = SharedFile::builder(dir.path().join("app.log")).build()?;
/// let (writer, guard) = log
///     .non_blocking_builder()
///     .max_queued_bytes(1024 * 1024)
///     .lossy(true)
///     .finish();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct NonBlockingBuilder {
    file: SharedFile,
    max_queued_bytes: usize,
    max_batch_bytes: usize,
    lossy: bool,
}

impl NonBlockingBuilder {
    /// The most memory queued events may hold, counting each event's bytes and the 8 bytes
    /// that record where it ends. Default: [`DEFAULT_MAX_QUEUED_BYTES`] (8 MiB).
    ///
    /// All the memory of the queue stays within 4 times this: the queue and the batch the
    /// background thread is writing each hold at most this much of event bytes and this
    /// much of bookkeeping, slack included (measured: about 2 times with 1-byte events, 1.2 to
    /// 1.3 times with 120-byte ones). An event larger than this on its own is still taken
    /// when the queue is empty, and its memory given back after it is written. What happens when an event does not fit is set by
    /// [`NonBlockingBuilder::lossy`].
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let log = tracing_shared_file::SharedFile::builder(dir.path().join("app.log")).build()?;
    /// let (writer, guard) = log.non_blocking_builder().max_queued_bytes(64 * 1024).finish();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn max_queued_bytes(mut self, bytes: usize) -> Self {
        self.max_queued_bytes = bytes;
        self
    }

    /// The most bytes written under one hold of the lock (one event more if a single event
    /// is larger). Default: [`DEFAULT_MAX_BATCH_BYTES`] (256 KiB).
    ///
    /// Larger batches mean fewer locks and system calls; smaller ones mean other processes
    /// wait less for the lock. Batches are cut between events, so rotation stays exact.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let log = tracing_shared_file::SharedFile::builder(dir.path().join("app.log")).build()?;
    /// let (writer, guard) = log.non_blocking_builder().max_batch_bytes(1024 * 1024).finish();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn max_batch_bytes(mut self, bytes: usize) -> Self {
        self.max_batch_bytes = bytes;
        self
    }

    /// What to do with an event when the queue is full. Default: `false`, wait for room,
    /// so that nothing is lost. With `true`, the event is dropped and counted in
    /// [`Stats::events_dropped`](crate::Stats::events_dropped) instead, so logging never
    /// slows the application down.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let log = tracing_shared_file::SharedFile::builder(dir.path().join("app.log")).build()?;
    /// let (writer, guard) = log.non_blocking_builder().lossy(true).finish();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn lossy(mut self, lossy: bool) -> Self {
        self.lossy = lossy;
        self
    }

    /// Starts the background thread and returns the writer and the guard that flushes it.
    ///
    /// If the thread cannot be started, the writer writes synchronously instead (and says
    /// so once on stderr): nothing is lost either way.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let log = tracing_shared_file::SharedFile::builder(dir.path().join("app.log")).build()?;
    /// let (writer, guard) = log.non_blocking_builder().finish();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn finish(self) -> (NonBlocking, WorkerGuard) {
        let shared = Arc::new(Shared {
            file: self.file,
            queue: Mutex::new(Queue::default()),
            work: Condvar::new(),
            room: Condvar::new(),
            max_queued_bytes: self.max_queued_bytes.max(1),
            max_batch_bytes: self.max_batch_bytes.max(1),
            lossy: self.lossy,
            fork_generation: fork::generation(),
        });
        let worker = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("tracing-shared-file".into())
                .spawn(move || shared.run_worker())
        };
        let worker = match worker {
            Ok(handle) => Some(handle),
            Err(error) => {
                eprintln!(
                    "tracing-shared-file: cannot start the non-blocking writer for `{}`, writing synchronously: {error}",
                    shared.file.path().display()
                );
                shared.lock_queue().closed = true;
                None
            }
        };
        (
            NonBlocking {
                shared: Arc::clone(&shared),
            },
            WorkerGuard { shared, worker },
        )
    }
}

/// A [`MakeWriter`] that queues events for a background thread to write to a
/// [`SharedFile`] in batches; made by [`SharedFile::non_blocking`].
///
/// Clones share one queue and one background thread. Every guarantee of the synchronous
/// writer holds (events whole, rotation exact, nothing lost unless [lossy]), except that
/// events still queued when the process dies are lost: keep the [`WorkerGuard`] alive
/// in `main` and let it drop (or drop it) before the process exits.
///
/// - `std::process::exit` skips destructors: drop the guard first.
/// - An abort, a crash or `kill -9` loses what is queued, at most
///   [`NonBlockingBuilder::max_queued_bytes`] and one batch.
/// - In a child forked without exec, the background thread does not exist; the child's
///   writer writes synchronously instead.
///
/// [lossy]: NonBlockingBuilder::lossy
///
/// # Examples
///
/// ```
/// use tracing_shared_file::SharedFile;
/// use tracing_subscriber::prelude::*;
///
/// let dir = tempfile::tempdir()?;
/// let log = SharedFile::builder(dir.path().join("app.log")).build()?;
/// let (writer, guard) = log.non_blocking();
/// let subscriber = tracing_subscriber::registry()
///     .with(tracing_subscriber::fmt::layer().with_writer(writer).with_ansi(false));
/// tracing::subscriber::with_default(subscriber, || tracing::info!("queued"));
/// drop(guard); // flushes the queue and stops the background thread
/// assert!(std::fs::read_to_string(log.path())?.contains("queued"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct NonBlocking {
    shared: Arc<Shared>,
}

/// Flushes everything queued and stops the background thread when dropped.
///
/// # Examples
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let log = tracing_shared_file::SharedFile::builder(dir.path().join("app.log")).build()?;
/// let (writer, guard) = log.non_blocking();
/// // ... install `writer` and run the application ...
/// drop(guard); // returns once every queued event is written
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "dropping the guard stops the background writer at once"]
pub struct WorkerGuard {
    shared: Arc<Shared>,
    worker: Option<JoinHandle<()>>,
}

struct Shared {
    file: SharedFile,
    queue: Mutex<Queue>,
    /// Wakes the background thread: events arrived, or the queue closed.
    work: Condvar,
    /// Wakes producers waiting for room.
    room: Condvar,
    max_queued_bytes: usize,
    max_batch_bytes: usize,
    lossy: bool,
    /// The process that runs the background thread; a forked child has none.
    fork_generation: u64,
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
struct Queue {
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
    closed: bool,
}

impl Queue {
    /// The memory the queued events hold, bookkeeping included.
    fn held_bytes(&self) -> usize {
        self.bytes.len() + self.ends.len() * std::mem::size_of::<usize>()
    }
}

impl SharedFile {
    /// A non-blocking writer for this file, with the default options, and the guard that
    /// flushes it; see [`NonBlocking`] and [`SharedFile::non_blocking_builder`].
    ///
    /// # Examples
    ///
    /// ```
    /// use tracing_shared_file::SharedFile;
    /// use tracing_subscriber::prelude::*;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = SharedFile::builder(dir.path().join("app.log")).build()?;
    /// let (writer, guard) = log.non_blocking();
    /// let subscriber = tracing_subscriber::registry()
    ///     .with(tracing_subscriber::fmt::layer().with_writer(writer).with_ansi(false));
    /// // `guard` flushes everything still queued when dropped; keep it alive in main.
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn non_blocking(&self) -> (NonBlocking, WorkerGuard) {
        self.non_blocking_builder().finish()
    }

    /// Configures a non-blocking writer for this file.
    ///
    /// # Examples
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let log = tracing_shared_file::SharedFile::builder(dir.path().join("app.log")).build()?;
    /// let (writer, guard) = log.non_blocking_builder().lossy(true).finish();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn non_blocking_builder(&self) -> NonBlockingBuilder {
        NonBlockingBuilder {
            file: self.clone(),
            max_queued_bytes: DEFAULT_MAX_QUEUED_BYTES,
            max_batch_bytes: DEFAULT_MAX_BATCH_BYTES,
            lossy: false,
        }
    }
}

impl Shared {
    fn lock_queue(&self) -> MutexGuard<'_, Queue> {
        // Queue operations cannot panic half-way, so a poisoned queue is still consistent.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn enqueue(&self, event: &[u8]) -> io::Result<()> {
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

    fn run_worker(&self) {
        // Whatever ends this thread, producers must stop waiting for it.
        struct CloseOnExit<'a>(&'a Shared);
        impl Drop for CloseOnExit<'_> {
            fn drop(&mut self) {
                self.0.lock_queue().closed = true;
                self.0.room.notify_all();
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
            batch.clear();
            ends.clear();
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

impl EventSink for NonBlocking {
    fn write_event(&self, event: &[u8], _: IfFailed) -> io::Result<()> {
        self.shared.enqueue(event)
    }

    fn cut_short_by_panic(&self) {
        self.shared.file.cut_short_by_panic();
    }

    fn path(&self) -> &Path {
        self.shared.file.path()
    }
}

impl<'a> MakeWriter<'a> for NonBlocking {
    type Writer = EventWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        EventWriter::new(self)
    }
}

impl io::Write for NonBlocking {
    /// Queues all of `buf` as one event.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.shared.enqueue(buf)?;
        Ok(buf.len())
    }

    /// Formats the whole of `args` first, then queues it as one event: the default would
    /// queue each piece of the format string as an event of its own.
    fn write_fmt(&mut self, args: fmt::Arguments<'_>) -> io::Result<()> {
        match args.as_str() {
            Some(text) => self.shared.enqueue(text.as_bytes()),
            None => self.shared.enqueue(args.to_string().as_bytes()),
        }
    }

    /// Queued events are written by the background thread; dropping the
    /// [`WorkerGuard`] is what waits for them.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for WorkerGuard {
    fn drop(&mut self) {
        // A guard dropped in a forked child has no thread to stop, and must not touch a
        // queue that a parent thread may have held at the fork.
        if fork::generation() != self.shared.fork_generation {
            // The thread does not exist here: dropping its handle would detach a thread
            // id that means nothing (or something else) in this process.
            std::mem::forget(self.worker.take());
            return;
        }
        let mut queue = self.shared.lock_queue();
        queue.closed = true;
        drop(queue);
        self.shared.work.notify_one();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

impl fmt::Debug for NonBlocking {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NonBlocking")
            .field("path", &self.shared.file.path())
            .field("max_queued_bytes", &self.shared.max_queued_bytes)
            .field("max_batch_bytes", &self.shared.max_batch_bytes)
            .field("lossy", &self.shared.lossy)
            .finish()
    }
}

impl fmt::Debug for WorkerGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerGuard")
            .field("path", &self.shared.file.path())
            .field("running", &self.worker.is_some())
            .finish()
    }
}
