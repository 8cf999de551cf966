//! [`SharedFile`]: the critical section every event goes through, and the writers that
//! feed it.

use std::fmt;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, TryLockError};
use std::time::{Duration, Instant};

use tracing_subscriber::fmt::MakeWriter;

use crate::builder::Builder;
use crate::event_writer::{EventSink, EventWriter};
use crate::fork;
use crate::handle::LogHandle;
use crate::lock::{LockFile, LockGuard, WriteIntent};
use crate::report::{ErrorHook, IoFailure, RateLimitedStderr};
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

pub(crate) struct Inner {
    path: PathBuf,
    lock_path: PathBuf,
    max_bytes: u64,
    max_files: usize,
    path_check_interval: Duration,
    #[allow(dead_code)]
    lock_timeout: Option<Duration>,
    /// Serialises this process's threads: they all share one flock description.
    pub(crate) state: Mutex<State>,
    counters: Counters,
    on_error: Option<ErrorHook>,
    /// One limiter per kind of report, so that a flood of one never hides another.
    write_reports: RateLimitedStderr,
    rotation_reports: RateLimitedStderr,
    notices: RateLimitedStderr,
}

pub(crate) struct State {
    lock: LockFile,
    handle: LogHandle,
    /// The fork generation `lock` was opened in; a forked child must open its own.
    fork_generation: u64,
    /// When (on the coarse monotonic clock) the paths were last compared with the open
    /// files by `stat`; `None` forces the next writer to check.
    last_path_check: Option<Duration>,
}

/// What happened under the lock that must be reported after it is released, so that a
/// slow or panicking hook never runs inside the critical section.
#[derive(Default)]
struct Outcome {
    events_written: u64,
    bytes_written: u64,
    rotation_errors: u64,
    last_rotation_error: Option<io::Error>,
    lock_file_replaced: bool,
    repaired_partial_write: bool,
}

/// How often in a row the lock file may be found replaced before giving up on an event.
const LOCK_ATTEMPTS: usize = 8;

/// Everything [`SharedFile`] is built from.
pub(crate) struct Parts {
    pub(crate) path: PathBuf,
    pub(crate) lock_path: PathBuf,
    pub(crate) max_bytes: u64,
    pub(crate) max_files: usize,
    pub(crate) path_check_interval: Duration,
    pub(crate) lock_timeout: Option<Duration>,
    pub(crate) lock: LockFile,
    pub(crate) handle: LogHandle,
    pub(crate) on_error: Option<ErrorHook>,
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

    pub(crate) fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    pub(crate) fn from_parts(parts: Parts) -> Self {
        let inner = Arc::new(Inner {
            path: parts.path,
            lock_path: parts.lock_path,
            max_bytes: parts.max_bytes,
            max_files: parts.max_files,
            path_check_interval: parts.path_check_interval,
            lock_timeout: parts.lock_timeout,
            state: Mutex::new(State {
                lock: parts.lock,
                handle: parts.handle,
                fork_generation: fork::generation(),
                last_path_check: None,
            }),
            counters: Counters::default(),
            on_error: parts.on_error,
            write_reports: RateLimitedStderr::default(),
            rotation_reports: RateLimitedStderr::default(),
            notices: RateLimitedStderr::default(),
        });
        fork::register(&inner);
        SharedFile { inner }
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
    pub(crate) fn write_event(&self, event: &[u8]) -> io::Result<()> {
        if event.is_empty() {
            return Ok(());
        }
        self.write_events(event, 0, &[event.len()])
    }

    /// Writes consecutive events under one hold of the lock: `buf[start..ends[0]]` is the
    /// first event, `buf[ends[0]..ends[1]]` the second, and so on. Events that fit in the
    /// live file go out in one `write(2)`; rotation happens between events, never inside
    /// one. On an error the events not yet written are dropped (and counted).
    pub(crate) fn write_events(&self, buf: &[u8], start: usize, ends: &[usize]) -> io::Result<()> {
        let inner = &*self.inner;
        let mut outcome = Outcome::default();
        let result = inner.write_locked(buf, start, ends, &mut outcome);
        inner
            .counters
            .written(outcome.events_written, outcome.bytes_written);
        inner.report(&outcome);
        if let Err(error) = &result {
            inner
                .counters
                .write_failed(ends.len() as u64 - outcome.events_written);
            inner.failed(error, true);
        }
        result
    }
}

impl Inner {
    fn write_locked(
        &self,
        buf: &[u8],
        mut start: usize,
        ends: &[usize],
        outcome: &mut Outcome,
    ) -> io::Result<()> {
        // The clock is read only when something has to wait: an uncontended write takes
        // both locks at the first try and reads no clock.
        let mut wait_started = None;
        // A thread that panicked while holding the mutex left no half-done work behind
        // (every step below is an independent syscall, and an interrupted append is
        // repaired through the write intent), so poisoning is safe to ignore.
        let mut state = match self.state.try_lock() {
            Ok(state) => state,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => {
                wait_started = Some(Instant::now());
                self.state.lock().unwrap_or_else(PoisonError::into_inner)
            }
        };
        let State {
            lock,
            handle,
            fork_generation,
            last_path_check,
        } = &mut *state;
        let generation = fork::generation();
        if *fork_generation != generation {
            // The inherited description is shared with the parent, so its flock excludes
            // nobody. Never unlock it (that would release the parent's lock): just open
            // our own.
            *lock = LockFile::open(&self.lock_path)?;
            *fork_generation = generation;
            *last_path_check = None;
        }
        let now = crate::platform::coarse_now();
        let check_paths =
            last_path_check.is_none_or(|last| now.saturating_sub(last) >= self.path_check_interval);
        let flock = self.acquire_lock(lock, check_paths, &mut wait_started, outcome)?;
        if let Some(started) = wait_started {
            self.counters.waited(started.elapsed());
        }
        let lock = flock.lock_file();
        let mut len = self.live_len(lock, handle, check_paths, outcome)?;
        // Only a check that succeeded counts: after a failed one (the path could not be
        // reopened), the next write must look again rather than trust the old handle.
        if check_paths {
            *last_path_check = Some(now);
        }

        let mut first = 0;
        // After a failed rotation the next event is appended anyway: losing it would be
        // worse than an oversized file.
        let mut append_anyway = false;
        while first < ends.len() {
            // The first event always goes into an empty file, even one larger than
            // max_bytes on its own; after it, events go in while the file has room.
            let mut last = first;
            if len == 0 || append_anyway {
                last += 1;
            }
            while last < ends.len() && rotation::fits(len, ends[last] - start, self.max_bytes) {
                last += 1;
            }
            if last == first {
                self.rotate(handle, outcome, &mut append_anyway, lock)?;
                len = handle.len()?;
                lock.set_live(handle.id(), len);
                continue;
            }
            append_anyway = false;
            let chunk = &buf[start..ends[last - 1]];
            lock.begin_write(WriteIntent {
                file: handle.id(),
                len_before: len,
                len: chunk.len() as u64,
            });
            let appended = handle.append(chunk, len);
            if let Err(error) = appended {
                // If the cut-back worked, all is as before. If it did not, leave the
                // intent standing, so the next holder repairs the partial line before
                // anything is glued onto it.
                if handle.len().is_ok_and(|now| now == len) {
                    lock.set_live(handle.id(), len);
                    lock.end_write();
                } else {
                    lock.forget_live();
                }
                return Err(error);
            }
            len += chunk.len() as u64;
            lock.set_live_len(len);
            lock.end_write();
            outcome.events_written += (last - first) as u64;
            outcome.bytes_written += chunk.len() as u64;
            first = last;
            start = ends[last - 1];
        }
        Ok(())
    }

    /// The live file's length, with `handle` pointing at the live file.
    ///
    /// Peers record the live file and its length in the lock file's shared page after
    /// every append and rotation, so in the common case this costs no syscall. The kernel
    /// is asked when the page names another file (a peer rotated), when a holder died
    /// mid-append, and every `path_check_interval` to catch other programs moving or
    /// deleting the file.
    fn live_len(
        &self,
        lock: &LockFile,
        handle: &mut LogHandle,
        check_paths: bool,
        outcome: &mut Outcome,
    ) -> io::Result<u64> {
        let interrupted = lock.interrupted_write();
        if !check_paths
            && interrupted.is_none()
            && let Some(len) = lock.live_len_of(handle.id())
        {
            return Ok(len);
        }
        if handle.is_stale(&self.path)? {
            *handle = LogHandle::open(&self.path)?;
        }
        if let Some(intent) = interrupted {
            outcome.repaired_partial_write |= handle.repair(&intent)?;
            lock.end_write();
        }
        let len = handle.len()?;
        lock.set_live(handle.id(), len);
        Ok(len)
    }

    /// Rotates the live file and points `handle` at the fresh one. A failed rotation is
    /// recorded for the report, and `append_anyway` set so the next event still lands.
    fn rotate(
        &self,
        handle: &mut LogHandle,
        outcome: &mut Outcome,
        append_anyway: &mut bool,
        lock: &LockFile,
    ) -> io::Result<()> {
        // Until the fresh file is open and recorded, the record must not name the file
        // being renamed away: a holder that fails or dies half-way leaves the next one to
        // ask the kernel, instead of appending to (or rotating) the archive.
        lock.forget_live();
        match rotation::rotate(&self.path, self.max_files) {
            Ok(()) => {
                self.counters.rotated();
                *handle = LogHandle::open(&self.path)?;
            }
            Err(error) => {
                outcome.rotation_errors += 1;
                outcome.last_rotation_error = Some(error);
                *append_anyway = true;
                if handle.is_stale(&self.path)? {
                    *handle = LogHandle::open(&self.path)?;
                }
            }
        }
        Ok(())
    }

    /// Takes the flock on the lock file that processes started now would lock too: an
    /// operator may have deleted it, and processes started since lock a new one, so follow
    /// them. Deletion is checked on every write (a cheap `fstat`); with `check_path`, the
    /// path is also compared, which catches a lock file replaced by another.
    fn acquire_lock<'a>(
        &self,
        lock: &'a mut LockFile,
        check_path: bool,
        wait_started: &mut Option<Instant>,
        outcome: &mut Outcome,
    ) -> io::Result<LockGuard<'a>> {
        for _ in 0..LOCK_ATTEMPTS {
            if !lock.try_acquire()? {
                wait_started.get_or_insert_with(Instant::now);
                lock.acquire()?;
            }
            let current = if check_path {
                lock.is_current(&self.lock_path)
            } else {
                lock.is_linked()
            };
            match current {
                Ok(true) => return Ok(LockGuard::held(lock)),
                Ok(false) => {
                    lock.release();
                    *lock = LockFile::open(&self.lock_path)?;
                    outcome.lock_file_replaced = true;
                }
                Err(error) => {
                    lock.release();
                    return Err(error);
                }
            }
        }
        Err(io::Error::other(format!(
            "lock file `{}` was replaced {LOCK_ATTEMPTS} times in a row",
            self.lock_path.display()
        )))
    }

    fn report(&self, outcome: &Outcome) {
        if let Some(error) = &outcome.last_rotation_error {
            self.counters.rotation_failed(outcome.rotation_errors);
            self.failed(error, false);
        }
        if outcome.lock_file_replaced {
            self.notices.report(format_args!(
                "lock file `{}` was deleted or replaced; now locking the new one",
                self.lock_path.display()
            ));
        }
        if outcome.repaired_partial_write {
            self.notices.report(format_args!(
                "cut off a partial line that a killed process left in `{}`",
                self.path.display()
            ));
        }
    }

    fn failed(&self, error: &io::Error, event_dropped: bool) {
        let failure = IoFailure {
            path: &self.path,
            error,
            event_dropped,
        };
        match &self.on_error {
            // A panicking hook must not take the application down with it.
            Some(hook) => {
                let _ = catch_unwind(AssertUnwindSafe(|| hook(&failure)));
            }
            None if event_dropped => self.write_reports.report(format_args!("{failure}")),
            None => self.rotation_reports.report(format_args!("{failure}")),
        }
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
        EventWriter::new(self)
    }
}

impl EventSink for SharedFile {
    fn write_event(&self, event: &[u8]) -> io::Result<()> {
        SharedFile::write_event(self, event)
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
