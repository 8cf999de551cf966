//! Counters kept by each [`SharedFile`](crate::SharedFile), and the snapshot users read.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// A snapshot of what one [`SharedFile`](crate::SharedFile) (and its clones) did in this
/// process since it was built, or, in a forked child, since the fork.
///
/// # Examples
///
/// ```
/// use std::io::Write;
/// use tracing_shared_file::SharedFile;
///
/// let dir = tempfile::tempdir()?;
/// let log = SharedFile::builder(dir.path().join("app.log")).build()?;
/// (&log).write_all(b"hello\n")?;
/// let stats = log.stats();
/// assert_eq!(stats.events_written, 1);
/// assert_eq!(stats.bytes_written, 6);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Events that reached the file whole.
    pub events_written: u64,
    /// Bytes of those events.
    pub bytes_written: u64,
    /// Rotations this process performed (other processes' rotations are not counted).
    pub rotations: u64,
    /// Write attempts that failed with an I/O error; each also counts as a dropped event.
    pub write_errors: u64,
    /// Tries to rotate that failed (and archives that could not be deleted); the events
    /// were then written to the live file anyway. After a failure the rotation is tried
    /// again only after a back-off (100 ms, doubling, at most 5 s), so this counts tries,
    /// not the events appended past `max_bytes` meanwhile.
    pub rotation_errors: u64,
    /// Events that did not reach the file.
    pub events_dropped: u64,
    /// Time spent waiting for the in-process mutex and the inter-process lock, in total
    /// (a lock taken at the first try counts as no wait).
    pub lock_wait_total: Duration,
    /// The longest single wait for the locks.
    pub lock_wait_max: Duration,
    /// Archives this process gzipped (with [`compress`](crate::Builder::compress)),
    /// whichever process rotated them: a pass claims each archive first, so across all
    /// processes these add up to the `.gz` files made.
    pub archives_compressed: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    events_written: AtomicU64,
    bytes_written: AtomicU64,
    rotations: AtomicU64,
    write_errors: AtomicU64,
    rotation_errors: AtomicU64,
    events_dropped: AtomicU64,
    lock_wait_total_ns: AtomicU64,
    lock_wait_max_ns: AtomicU64,
    archives_compressed: AtomicU64,
}

impl Counters {
    pub(crate) fn written(&self, events: u64, bytes: u64) {
        if events > 0 {
            self.events_written.fetch_add(events, Relaxed);
            self.bytes_written.fetch_add(bytes, Relaxed);
        }
    }

    /// One failed write, which dropped `events`.
    pub(crate) fn write_failed(&self, events: u64) {
        self.write_errors.fetch_add(1, Relaxed);
        self.events_dropped.fetch_add(events, Relaxed);
    }

    /// Events dropped without a write error: a full queue in lossy non-blocking mode.
    pub(crate) fn dropped(&self, events: u64) {
        self.events_dropped.fetch_add(events, Relaxed);
    }

    pub(crate) fn rotated(&self) {
        self.rotations.fetch_add(1, Relaxed);
    }

    pub(crate) fn rotation_failed(&self, count: u64) {
        self.rotation_errors.fetch_add(count, Relaxed);
    }

    /// One archive gzipped.
    #[cfg(feature = "compress")]
    pub(crate) fn compressed(&self) {
        self.archives_compressed.fetch_add(1, Relaxed);
    }

    pub(crate) fn waited(&self, wait: Duration) {
        let nanos = u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX);
        self.lock_wait_total_ns.fetch_add(nanos, Relaxed);
        self.lock_wait_max_ns.fetch_max(nanos, Relaxed);
    }

    /// Starts again from zero; async-signal-safe, for a forked child.
    #[cfg(unix)]
    pub(crate) fn reset(&self) {
        for counter in [
            &self.events_written,
            &self.bytes_written,
            &self.rotations,
            &self.write_errors,
            &self.rotation_errors,
            &self.events_dropped,
            &self.lock_wait_total_ns,
            &self.lock_wait_max_ns,
            &self.archives_compressed,
        ] {
            counter.store(0, Relaxed);
        }
    }

    pub(crate) fn snapshot(&self) -> Stats {
        Stats {
            events_written: self.events_written.load(Relaxed),
            bytes_written: self.bytes_written.load(Relaxed),
            rotations: self.rotations.load(Relaxed),
            write_errors: self.write_errors.load(Relaxed),
            rotation_errors: self.rotation_errors.load(Relaxed),
            events_dropped: self.events_dropped.load(Relaxed),
            lock_wait_total: Duration::from_nanos(self.lock_wait_total_ns.load(Relaxed)),
            lock_wait_max: Duration::from_nanos(self.lock_wait_max_ns.load(Relaxed)),
            archives_compressed: self.archives_compressed.load(Relaxed),
        }
    }
}
