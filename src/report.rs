//! Reporting what goes wrong on the write path: to the user's hook, or to stderr without
//! flooding it.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

/// An I/O failure while logging, as handed to the hook set with
/// [`Builder::on_error`](crate::Builder::on_error).
///
/// # Examples
///
/// ```
/// use tracing_shared_file::{IoFailure, SharedFile};
///
/// let dir = tempfile::tempdir()?;
/// let log = SharedFile::builder(dir.path().join("app.log"))
///     .on_error(|failure: &IoFailure<'_>| {
///         eprintln!(
///             "logging to {} failed (event dropped: {}): {}",
///             failure.path().display(),
///             failure.event_dropped(),
///             failure.error()
///         );
///     })
///     .build()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct IoFailure<'a> {
    pub(crate) path: &'a Path,
    pub(crate) error: &'a io::Error,
    pub(crate) event_dropped: bool,
}

impl IoFailure<'_> {
    /// The log file concerned.
    ///
    /// # Examples
    ///
    /// ```
    /// # use tracing_shared_file::IoFailure;
    /// fn hook(failure: &IoFailure<'_>) {
    ///     eprintln!("{}", failure.path().display());
    /// }
    /// ```
    pub fn path(&self) -> &Path {
        self.path
    }

    /// The error from the operating system.
    ///
    /// # Examples
    ///
    /// ```
    /// # use tracing_shared_file::IoFailure;
    /// fn hook(failure: &IoFailure<'_>) {
    ///     if failure.error().kind() == std::io::ErrorKind::StorageFull {
    ///         // page someone
    ///     }
    /// }
    /// ```
    pub fn error(&self) -> &io::Error {
        self.error
    }

    /// Whether the event was lost. A failed rotation does not lose the event by itself:
    /// the event is then appended to the live file, which grows past `max_bytes` until a
    /// rotation succeeds. (If that append fails too, it is reported separately, with
    /// `event_dropped() == true`.)
    ///
    /// # Examples
    ///
    /// ```
    /// # use tracing_shared_file::IoFailure;
    /// fn hook(failure: &IoFailure<'_>) {
    ///     if failure.event_dropped() {
    ///         eprintln!("a log line was lost: {}", failure.error());
    ///     }
    /// }
    /// ```
    pub fn event_dropped(&self) -> bool {
        self.event_dropped
    }
}

impl fmt::Display for IoFailure<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.event_dropped {
            write!(
                f,
                "cannot write to log file `{}`: {}",
                self.path.display(),
                self.error
            )
        } else {
            write!(
                f,
                "cannot rotate log file `{}`, so it grows past max_bytes until a rotation succeeds: {}",
                self.path.display(),
                self.error
            )
        }
    }
}

/// The user's error hook.
pub(crate) type ErrorHook = Arc<dyn Fn(&IoFailure<'_>) + Send + Sync>;

/// At most one report per this many milliseconds; the ones in between are counted and
/// summarised in the next.
const REPORT_INTERVAL_MS: u64 = 10_000;

/// Prints messages on stderr, the first at once and then at most one per
/// [`REPORT_INTERVAL_MS`], saying how many were suppressed in between.
///
/// Takes no lock (not even `std`'s stderr lock), so that a fork or a panic elsewhere can
/// never leave it blocked.
#[derive(Debug)]
pub(crate) struct RateLimitedStderr {
    epoch: Instant,
    /// Milliseconds since `epoch` of the last report, plus one; 0 means never.
    last_report: AtomicU64,
    suppressed: AtomicU64,
}

impl Default for RateLimitedStderr {
    fn default() -> Self {
        RateLimitedStderr {
            epoch: Instant::now(),
            last_report: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }
}

impl RateLimitedStderr {
    pub(crate) fn report(&self, message: fmt::Arguments<'_>) {
        let now = u64::try_from(self.epoch.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let last = self.last_report.load(Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= REPORT_INTERVAL_MS;
        if !due
            || self
                .last_report
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_err()
        {
            self.suppressed.fetch_add(1, Relaxed);
            return;
        }
        let suppressed = self.suppressed.swap(0, Relaxed);
        let mut line = format!("tracing-shared-file: {message}");
        if suppressed > 0 {
            line.push_str(&format!(" ({suppressed} more suppressed)"));
        }
        line.push('\n');
        crate::platform::write_stderr(line.as_bytes());
    }
}
