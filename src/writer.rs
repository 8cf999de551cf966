//! [`SharedFile`]: the critical section every event goes through, and the writers that
//! feed it.

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::MakeWriter;

use crate::critical_section::{Inner, State};
use crate::event_writer::{EventSink, EventWriter};
use crate::handle::LogHandle;
use crate::lock::LockFile;
use crate::log_dir::LogDir;
use crate::report::IfFailed;
use crate::report::{ErrorHook, IoFailure, Reporter};
use crate::settings::Settings;
use crate::stats::{Counters, Stats};

/// One log file, shared safely by every process (and thread) that opens the same path.
///
/// Each event is written whole while this process holds both an in-process mutex and an
/// exclusive `flock` on the side file `<path>.lock`. Under the lock the writer checks that
/// its handle still names the live file (another process may have rotated it), asks the
/// kernel for its size, rotates if the event would not fit, and appends.
///
/// `SharedFile` is cheap to clone: clones share one handle, one lock and one set of
/// [`Stats`].
///
/// It implements [`MakeWriter`], so any `tracing_subscriber::fmt` layer can write through
/// it, and `&SharedFile` implements [`io::Write`] for use without `tracing`: each `write`
/// call is one event, and `write!`/`writeln!` format the whole line first and write it as
/// one event. A `BufWriter` around it writes whenever its buffer is full, cutting lines
/// where the buffer ends into separate events: write whole lines instead.
///
/// # Examples
///
/// ```
/// use tracing_shared_file::{PanicSafe, SharedFile};
/// use tracing_subscriber::prelude::*;
///
/// let dir = tempfile::tempdir()?;
/// let log = SharedFile::builder(dir.path().join("app.log"))
///     .max_bytes(10 * 1024 * 1024)
///     .max_files(5)
///     .build()?;
///
/// let subscriber = tracing_subscriber::registry()
///     .with(
///         tracing_subscriber::fmt::layer()
///             .json()
///             .with_writer(log.clone())
///             .map_event_format(PanicSafe::new),
///     );
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

/// Everything [`SharedFile`] is built from.
pub(crate) struct Parts {
    pub(crate) path: PathBuf,
    pub(crate) lock_path: PathBuf,
    pub(crate) name: OsString,
    pub(crate) lock_name: OsString,
    pub(crate) dir: LogDir,
    pub(crate) settings: Settings,
    pub(crate) lock: LockFile,
    pub(crate) handle: LogHandle,
    pub(crate) on_error: Option<ErrorHook>,
}

impl SharedFile {
    pub(crate) fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    pub(crate) fn from_parts(parts: Parts) -> Self {
        let inner = Arc::new(Inner {
            path: parts.path,
            lock_path: parts.lock_path,
            name: parts.name,
            lock_name: parts.lock_name,
            settings: parts.settings,
            state: Mutex::new(State {
                dir: parts.dir,
                lock: Arc::new(parts.lock),
                handle: parts.handle,
                last_path_check: None,
                backoff: Default::default(),
            }),
            lock_inherited: AtomicBool::new(false),
            counters: Counters::default(),
            reporter: Reporter::new(parts.on_error),
        });
        SharedFile { inner }
    }

    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.inner
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

    /// Waits until no compression of this log is queued or under way in this process, or
    /// until `timeout` passes; returns whether none is. A pass compresses every archive
    /// but the newest, leaving those that another process has claimed to it (a failure is
    /// reported); while other threads go on rotating, each rotation queues another pass.
    ///
    /// A process that exits normally waits for this by itself, up to
    /// [`compress_exit_timeout`](crate::Builder::compress_exit_timeout), and so does the
    /// drop of a [`WorkerGuard`](crate::WorkerGuard); call it to wait at another moment,
    /// for instance before `std::process::exit` in a child forked without exec. Returns
    /// `true` at once when there is nothing to wait for, without
    /// [`compress`](crate::Builder::compress), and in a forked child for what its
    /// parent queued (the parent's thread does not exist there).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tracing_shared_file::SharedFile;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = SharedFile::builder(dir.path().join("app.log")).build()?;
    /// assert!(log.wait_for_compression(Duration::from_secs(10)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_for_compression(&self, timeout: std::time::Duration) -> bool {
        self.inner.wait_for_compression(timeout)
    }

    /// Writes one event as a single unit: it lands whole in one file, never interleaved
    /// with another process's or thread's event.
    pub(crate) fn write_event(&self, event: &[u8], if_failed: IfFailed) -> io::Result<()> {
        if event.is_empty() {
            return Ok(());
        }
        self.inner.write_events(event, 0, &[event.len()], if_failed)
    }

    /// Writes consecutive events under as few holds of the lock as rotation allows; see
    /// [`Inner::write_events`].
    pub(crate) fn write_events(&self, buf: &[u8], start: usize, ends: &[usize]) -> io::Result<()> {
        self.inner.write_events(buf, start, ends, IfFailed::Drop)
    }

    /// Counts and reports `events` of a batch dropped after `error`, without trying them.
    pub(crate) fn batch_dropped(&self, events: u64, error: &io::Error) {
        self.inner.counters.write_failed(events);
        self.inner.failed(error, IfFailed::Drop);
    }

    /// Counts and reports an event that a panic cut short while it was being written.
    pub(crate) fn cut_short_by_panic(&self) {
        self.inner.counters.dropped(1);
        let error =
            io::Error::other("dropped an event that a panic cut short while it was being written");
        self.inner
            .report_failure(&IoFailure::cut_short_by_panic(&self.inner.path, &error));
    }
}

impl fmt::Debug for SharedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedFile")
            .field("path", &self.inner.path)
            .field("max_bytes", &self.inner.settings.max_bytes)
            .field("max_files", &self.inner.settings.max_files)
            .field("stats", &self.stats())
            .finish()
    }
}

impl io::Write for &SharedFile {
    /// Writes all of `buf` as one event; returns `buf.len()` or the error.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_event(buf, IfFailed::Drop)?;
        Ok(buf.len())
    }

    /// Formats the whole of `args` first, then writes it as one event: the default would
    /// write each piece of the format string as an event of its own.
    fn write_fmt(&mut self, args: fmt::Arguments<'_>) -> io::Result<()> {
        match args.as_str() {
            Some(text) => self.write_all(text.as_bytes()),
            None => self.write_all(args.to_string().as_bytes()),
        }
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

    fn write_fmt(&mut self, args: fmt::Arguments<'_>) -> io::Result<()> {
        (&*self).write_fmt(args)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for SharedFile {
    type Writer = EventWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        EventWriter::new(self)
    }
}

impl EventSink for SharedFile {
    fn write_event(&self, event: &[u8], if_failed: IfFailed) -> io::Result<()> {
        SharedFile::write_event(self, event, if_failed)
    }

    fn cut_short_by_panic(&self) {
        SharedFile::cut_short_by_panic(self);
    }

    fn path(&self) -> &Path {
        self.path()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_thread_that_panicked_holding_the_mutex_does_not_stop_later_writes() {
        let dir = tempfile::tempdir().unwrap();
        let log = SharedFile::builder(dir.path().join("app.log"))
            .build()
            .unwrap();
        let poisoner = log.clone();
        let joined = std::thread::spawn(move || {
            let _state = poisoner.inner.state.lock().unwrap();
            panic!("poison the mutex");
        })
        .join();
        assert!(joined.is_err());
        assert!(log.inner.state.is_poisoned());

        (&log).write_all(b"still logging\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(log.path()).unwrap(),
            "still logging\n"
        );
    }
}
