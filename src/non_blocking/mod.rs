//! The non-blocking writer: events go into a bounded in-memory queue, and a background
//! thread writes everything queued as a few large batches, each under one hold of the
//! lock and, where the live file has room, in one `write(2)`.
//!
//! The locks and the system calls are the cost of a shared file, so batching is where the
//! speed comes from: one flock, one `write(2)` and one unlock for many events.
//!
//! Queueing takes no lock (`queue`, `buffer`, `wake`): a thread preempted while queueing
//! or writing holds up no one else's log call, except when the queue is full and the
//! writer lossless. The queue is two buffers: producers reserve room in one with a
//! compare-and-swap and copy their event in, while the background thread writes out the
//! other (`worker`).

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use tracing_subscriber::fmt::MakeWriter;

use crate::event_writer::{EventSink, EventWriter};
use crate::report::IfFailed;
use crate::writer::SharedFile;

mod buffer;
mod queue;
mod wake;
mod worker;
use queue::Shared;

/// The default for [`NonBlockingBuilder::max_queued_bytes`]: 8 MiB.
pub const DEFAULT_MAX_QUEUED_BYTES: usize = 8 * 1024 * 1024;

/// The default for [`NonBlockingBuilder::max_batch_bytes`]: 256 KiB.
pub const DEFAULT_MAX_BATCH_BYTES: usize = 256 * 1024;

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
    /// that record where it ends. Default: [`DEFAULT_MAX_QUEUED_BYTES`] (8 MiB); at most
    /// 1 GiB (a larger value counts as 1 GiB).
    ///
    /// All the memory of the queue stays within 4 times this: it is two buffers, the one
    /// being filled and the one the background thread is writing out, each holding at most
    /// this much of event bytes and bookkeeping; each keeps the pages it has used (measured
    /// with a full queue: about 2 times with 120-byte events, once both buffers were
    /// filled, and 1.0 to 1.2 times with 1-byte events). The
    /// memory is mapped when the writer is made but costs nothing until used.
    ///
    /// An event that could never fit (with its 8 bytes, larger than this) is written
    /// synchronously by the caller instead, after everything queued before it unless
    /// [lossy](NonBlockingBuilder::lossy). What happens when an event does not fit the room
    /// left is set by [`NonBlockingBuilder::lossy`].
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
    /// so that nothing is lost; this is the only time a log call waits for the background
    /// thread. With `true`, the event is dropped and counted in
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
        let shared = Arc::new(Shared::new(
            self.file,
            self.max_queued_bytes,
            self.max_batch_bytes,
            self.lossy,
        ));
        let worker = if shared.cursor().closed() {
            // No buffers: already reported, and every event is written synchronously.
            Err(None)
        } else {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("tracing-shared-file".into())
                .spawn(move || shared.run_worker())
                .map_err(Some)
        };
        let worker = match worker {
            Ok(handle) => Some(handle),
            Err(None) => {
                shared.worker_gone();
                None
            }
            Err(Some(error)) => {
                eprintln!(
                    "tracing-shared-file: cannot start the non-blocking writer for `{}`, writing synchronously: {error}",
                    shared.file.path().display()
                );
                shared.worker_gone();
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
///     .with(writer.layer());
/// tracing::subscriber::with_default(subscriber, || tracing::info!("queued"));
/// drop(guard); // flushes the queue and stops the background thread
/// assert!(std::fs::read_to_string(log.path())?.contains("queued"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct NonBlocking {
    shared: Arc<Shared>,
}

/// Flushes everything queued and stops the background thread when dropped; with
/// [`compress`](crate::Builder::compress), then waits for the log's compression under way,
/// up to [`compress_exit_timeout`](crate::Builder::compress_exit_timeout).
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
    ///     .with(writer.layer());
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

    /// Returns once every event queued before the call is written; see
    /// [`WorkerGuard::flush`].
    fn flush(&mut self) -> io::Result<()> {
        self.shared.flush();
        Ok(())
    }
}

impl WorkerGuard {
    /// Returns once every event queued before the call has been written (or dropped after
    /// a failure: counted and reported), leaving the background thread running.
    ///
    /// Call it before `std::process::exit`, which skips destructors and so the guard's
    /// drop, and in a signal-driven shutdown before the process ends. With a
    /// [`lock_timeout`](crate::Builder::lock_timeout), it returns within about that while
    /// another process holds the lock, or about twice that when a batch was already
    /// waiting for the lock at the call (that batch waits its own `lock_timeout` first);
    /// without one, it waits as long as the lock is held.
    /// In a forked child, whose writer writes synchronously, it returns at once.
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
    /// let subscriber = tracing_subscriber::registry().with(writer.layer());
    /// tracing::subscriber::with_default(subscriber, || tracing::info!("about to exit"));
    /// guard.flush();
    /// assert!(std::fs::read_to_string(log.path())?.contains("about to exit"));
    /// // std::process::exit(0) would lose nothing now.
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn flush(&self) {
        self.shared.flush();
    }
}

impl Drop for WorkerGuard {
    fn drop(&mut self) {
        // A guard dropped in a forked child has no thread to stop, and must not touch a
        // queue that a parent thread may have held at the fork.
        if crate::platform::fork_generation() != self.shared.fork_generation {
            // The thread does not exist here: dropping its handle would detach a thread
            // id that means nothing (or something else) in this process.
            std::mem::forget(self.worker.take());
            return;
        }
        self.shared.close();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
        // What the last batches rotated is compressed before the guard lets the process go.
        let file = &self.shared.file;
        file.wait_for_compression(file.inner().settings.compress_exit_timeout);
    }
}

impl fmt::Debug for NonBlocking {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NonBlocking")
            .field("path", &self.shared.file.path())
            .field("max_queued_bytes", &self.shared.capacity)
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
