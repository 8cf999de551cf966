//! [`SharedFile`]: the critical section every event goes through, and the writers that
//! feed it.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use tracing_subscriber::fmt::MakeWriter;

use crate::builder::Builder;
use crate::handle::LogHandle;
use crate::lock::LockFile;
use crate::report::ErrorReporter;
use crate::rotation;
use crate::stats::{Counters, Stats};

/// One log file, shared safely by every process (and thread) that opens the same path.
///
/// Each event is written whole while this process holds both an in-process mutex and an
/// exclusive `flock` on the side file `<path>.lock`. Under the lock the writer checks that
/// its handle still names the live file (another process may have rotated it), reads the
/// size from disk, rotates if the event would not fit, and appends.
///
/// `SharedFile` is cheap to clone: clones share one handle, one lock and one set of
/// [`Stats`].
///
/// It implements [`MakeWriter`], so any `tracing_subscriber::fmt` layer can write through
/// it, and `&SharedFile` implements [`io::Write`] for use without `tracing`: each `write`
/// call is one event.
///
/// # Examples
///
/// ```
/// use tracing_shared_file::SharedFile;
/// use tracing_subscriber::prelude::*;
///
/// let dir = tempfile::tempdir()?;
/// let log = SharedFile::builder(dir.path().join("app.log"))
///     .max_bytes(10 * 1024 * 1024)
///     .max_files(5)
///     .build()?;
///
/// let subscriber = tracing_subscriber::registry()
///     .with(tracing_subscriber::fmt::layer().json().with_writer(log.clone()));
/// tracing::subscriber::with_default(subscriber, || tracing::info!(user = "ada", "logged in"));
///
/// let text = std::fs::read_to_string(dir.path().join("app.log"))?;
/// assert!(text.contains("logged in"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct SharedFile {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    max_bytes: u64,
    max_files: usize,
    /// Serialises this process's threads: they all share one flock description.
    state: Mutex<State>,
    counters: Counters,
    reporter: ErrorReporter,
}

struct State {
    lock: LockFile,
    handle: LogHandle,
}

impl SharedFile {
    /// Starts configuring a log file at `path`; see [`Builder`] for the options and their
    /// defaults.
    ///
    /// # Examples
    ///
    /// ```
    /// use tracing_shared_file::SharedFile;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = SharedFile::builder(dir.path().join("app.log")).build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder(path: impl AsRef<Path>) -> Builder {
        Builder::new(path.as_ref())
    }

    pub(crate) fn from_parts(
        path: PathBuf,
        max_bytes: u64,
        max_files: usize,
        lock: LockFile,
        handle: LogHandle,
    ) -> Self {
        SharedFile {
            inner: Arc::new(Inner {
                path,
                max_bytes,
                max_files,
                state: Mutex::new(State { lock, handle }),
                counters: Counters::default(),
                reporter: ErrorReporter::default(),
            }),
        }
    }

    /// The absolute path of the live log file.
    ///
    /// # Examples
    ///
    /// ```
    /// use tracing_shared_file::SharedFile;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = SharedFile::builder(dir.path().join("app.log")).build()?;
    /// assert_eq!(log.path(), dir.path().join("app.log"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// What this process wrote, dropped and waited for so far.
    ///
    /// # Examples
    ///
    /// ```
    /// use tracing_shared_file::SharedFile;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = SharedFile::builder(dir.path().join("app.log")).build()?;
    /// assert_eq!(log.stats().events_written, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stats(&self) -> Stats {
        self.inner.counters.snapshot()
    }

    /// Writes one event as a single unit: it lands whole in one file, never interleaved
    /// with another process's or thread's event.
    fn write_event(&self, event: &[u8]) -> io::Result<()> {
        if event.is_empty() {
            return Ok(());
        }
        let inner = &*self.inner;
        match inner.write_event_locked(event) {
            Ok(()) => {
                inner.counters.written(event.len());
                Ok(())
            }
            Err(error) => {
                inner.counters.write_failed();
                inner
                    .reporter
                    .report("cannot write to log file", &inner.path, &error);
                Err(error)
            }
        }
    }
}

impl Inner {
    fn write_event_locked(&self, event: &[u8]) -> io::Result<()> {
        let wait_started = Instant::now();
        // A thread that panicked while holding the mutex left no half-done work behind
        // (every step below is an independent syscall), so poisoning is safe to ignore.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let State { lock, handle } = &mut *state;
        let _flock = lock.lock()?;
        self.counters.waited(wait_started.elapsed());

        if handle.is_stale(&self.path)? {
            *handle = LogHandle::open(&self.path)?;
        }
        let len = handle.len()?;
        if rotation::must_rotate(len, event.len(), self.max_bytes) {
            match rotation::rotate(&self.path, self.max_files) {
                Ok(()) => self.counters.rotated(),
                // Losing the event would be worse than an oversized file: report, and
                // append to whatever the live path names now.
                Err(error) => {
                    self.counters.rotation_failed();
                    self.reporter
                        .report("cannot rotate log file", &self.path, &error);
                }
            }
            *handle = LogHandle::open(&self.path)?;
            return handle.append(event, 0);
        }
        handle.append(event, len)
    }
}

impl fmt::Debug for SharedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedFile")
            .field("path", &self.inner.path)
            .field("max_bytes", &self.inner.max_bytes)
            .field("max_files", &self.inner.max_files)
            .field("stats", &self.stats())
            .finish()
    }
}

impl io::Write for &SharedFile {
    /// Writes all of `buf` as one event; returns `buf.len()` or the error.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_event(buf)?;
        Ok(buf.len())
    }

    /// Every write goes straight to the file, so there is nothing to flush.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl io::Write for SharedFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for SharedFile {
    type Writer = EventWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        EventWriter {
            file: self,
            pending: Vec::new(),
        }
    }
}

/// The writer [`SharedFile`] hands to a `fmt` layer for one event.
///
/// A `fmt` layer writes each event with a single `write_all` of whole lines, which goes
/// straight to the file. Writers that deliver an event in pieces are buffered until the
/// writer is flushed or dropped, so the event still reaches the file as one unit.
///
/// # Examples
///
/// ```
/// use std::io::Write;
/// use tracing_shared_file::SharedFile;
/// use tracing_subscriber::fmt::MakeWriter;
///
/// let dir = tempfile::tempdir()?;
/// let log = SharedFile::builder(dir.path().join("app.log")).build()?;
/// {
///     let mut writer = log.make_writer();
///     write!(writer, "one event, ")?;
///     writeln!(writer, "written in pieces")?;
/// } // written here, as one unit
/// assert_eq!(log.stats().events_written, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct EventWriter<'a> {
    file: &'a SharedFile,
    pending: Vec<u8>,
}

impl io::Write for EventWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.pending.is_empty() && buf.ends_with(b"\n") {
            self.file.write_event(buf)?;
        } else {
            self.pending.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let pending = std::mem::take(&mut self.pending);
        self.file.write_event(&pending)
    }
}

impl Drop for EventWriter<'_> {
    fn drop(&mut self) {
        // Errors were already counted and reported by `write_event`.
        let _ = io::Write::flush(self);
    }
}

impl fmt::Debug for EventWriter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventWriter")
            .field("path", &self.file.path())
            .field("pending_bytes", &self.pending.len())
            .finish()
    }
}
