//! Reporting what goes wrong on the write path: to the user's hook, or to stderr without
//! flooding it.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

/// What becomes of events whose write fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IfFailed {
    /// They are lost: counted as dropped.
    Drop,
    /// The caller keeps them to try again: counted as a failed write only.
    Keep,
}

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
    path: &'a Path,
    error: &'a io::Error,
    what: Failed,
}

/// What a failure did to the events concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failed {
    /// A write failed and its events were lost.
    WriteDropped,
    /// A write failed and the writer kept its event for the next flush.
    WriteKept,
    /// A rotation failed; the events were appended to the live file anyway.
    Rotation,
    /// The rotation was done, but deleting or compressing old archives failed.
    Archives,
    /// An event cut short by a panic while it was being written was discarded.
    CutShortByPanic,
    /// Nothing was lost, but something is worth knowing: a partial line that a killed
    /// process left was cut off, the lock file was replaced, processes disagree on options.
    Notice,
}

impl<'a> IoFailure<'a> {
    pub(crate) fn write(path: &'a Path, error: &'a io::Error, if_failed: IfFailed) -> Self {
        let what = match if_failed {
            IfFailed::Drop => Failed::WriteDropped,
            IfFailed::Keep => Failed::WriteKept,
        };
        IoFailure { path, error, what }
    }

    pub(crate) fn rotation(path: &'a Path, error: &'a io::Error) -> Self {
        IoFailure {
            path,
            error,
            what: Failed::Rotation,
        }
    }

    pub(crate) fn archives(path: &'a Path, error: &'a io::Error) -> Self {
        IoFailure {
            path,
            error,
            what: Failed::Archives,
        }
    }

    pub(crate) fn cut_short_by_panic(path: &'a Path, error: &'a io::Error) -> Self {
        IoFailure {
            path,
            error,
            what: Failed::CutShortByPanic,
        }
    }

    pub(crate) fn notice(path: &'a Path, error: &'a io::Error) -> Self {
        IoFailure {
            path,
            error,
            what: Failed::Notice,
        }
    }

    pub(crate) fn is_rotation(&self) -> bool {
        matches!(self.what, Failed::Rotation | Failed::Archives)
    }
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
    /// `event_dropped() == true`.) Nor does a failed explicit `flush` of an
    /// [`EventWriter`](crate::EventWriter), which keeps the event to try again, nor a
    /// notice (see [`Builder::on_error`](crate::Builder::on_error)). An event cut short by
    /// a panic while it was being written is dropped, and reported too.
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
        matches!(self.what, Failed::WriteDropped | Failed::CutShortByPanic)
    }
}

impl fmt::Display for IoFailure<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        let error = self.error;
        match self.what {
            Failed::WriteDropped => write!(f, "cannot write to log file `{path}`: {error}"),
            Failed::WriteKept => write!(
                f,
                "cannot write to log file `{path}`: {error}; the event is kept for the next flush"
            ),
            Failed::Rotation => write!(
                f,
                "cannot rotate log file `{path}`, so it grows past max_bytes until a rotation succeeds: {error}"
            ),
            Failed::Archives => write!(
                f,
                "cannot delete or compress the old archives of log file `{path}`; the next rotation tries again: {error}"
            ),
            Failed::CutShortByPanic | Failed::Notice => write!(f, "log file `{path}`: {error}"),
        }
    }
}

/// The user's error hook.
pub(crate) type ErrorHook = Arc<dyn Fn(&IoFailure<'_>) + Send + Sync>;

thread_local! {
    /// Whether this thread is running an `on_error` hook.
    static IN_ERROR_HOOK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Where one log's failures and notices go: to the user's hook if there is one, else to
/// stderr, rate-limited per kind so that a flood of one never hides another.
///
/// A hook never runs twice on one thread at once: a hook that logs, through a writer
/// whose writes keep failing, would otherwise call itself until the stack overflowed.
/// What fails inside the hook is counted, not reported to it again. A panicking hook is
/// caught: it must not take the application down with it.
pub(crate) struct Reporter {
    on_error: Option<ErrorHook>,
    write_reports: RateLimitedStderr,
    rotation_reports: RateLimitedStderr,
    notices: RateLimitedStderr,
    /// The disagreements over options this process has reported: with more pairs than
    /// the lock file remembers, each is still reported at most once per process.
    options_reported: [AtomicU64; 8],
    options_next: AtomicU64,
}

impl Reporter {
    pub(crate) fn new(on_error: Option<ErrorHook>) -> Self {
        Reporter {
            on_error,
            write_reports: RateLimitedStderr::default(),
            rotation_reports: RateLimitedStderr::default(),
            notices: RateLimitedStderr::default(),
            options_reported: Default::default(),
            options_next: AtomicU64::new(0),
        }
    }

    /// Reports `failure` to the hook, or on stderr.
    pub(crate) fn failure(&self, failure: &IoFailure<'_>) {
        match &self.on_error {
            Some(hook) => {
                if IN_ERROR_HOOK.with(|inside| inside.replace(true)) {
                    return;
                }
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(failure)));
                IN_ERROR_HOOK.with(|inside| inside.set(false));
            }
            None if failure.is_rotation() => {
                self.rotation_reports.report(format_args!("{failure}"))
            }
            None => self.write_reports.report(format_args!("{failure}")),
        }
    }

    /// Something worth knowing about the log at `path` that lost nothing: to the hook as
    /// a notice, else on stderr, rate-limited.
    pub(crate) fn notice(&self, path: &Path, message: fmt::Arguments<'_>) {
        match &self.on_error {
            Some(_) => {
                let error = io::Error::other(message.to_string());
                self.failure(&IoFailure::notice(path, &error));
            }
            None => self.notices.report(message),
        }
    }

    /// Whether this process has not reported the disagreement `key` (not 0) yet; notes it.
    /// Called with this log's mutex held, so never by two threads at once.
    pub(crate) fn first_options_report(&self, key: u64) -> bool {
        if self
            .options_reported
            .iter()
            .any(|slot| slot.load(Relaxed) == key)
        {
            return false;
        }
        let next = self.options_next.fetch_add(1, Relaxed) as usize;
        self.options_reported[next % self.options_reported.len()].store(key, Relaxed);
        true
    }

    /// Reports that processes disagree over the options: not rate-limited with the other
    /// notices, which could hide it. The caller reports each disagreement once per lock
    /// file (the page records which were).
    pub(crate) fn options_disagree(&self, path: &Path, message: &str) {
        match &self.on_error {
            Some(_) => self.notice(path, format_args!("{message}")),
            None => crate::platform::write_stderr(
                format!("tracing-shared-file: {message}\n").as_bytes(),
            ),
        }
    }
}

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

/// One option on which this process and the options recorded in the lock file differ,
/// and which of the two rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Difference {
    pub(crate) option: &'static str,
    pub(crate) ours: String,
    pub(crate) theirs: String,
    pub(crate) rule: &'static str,
}

/// The message saying that processes sharing `path` use different options: each option
/// with both values, and what happens.
pub(crate) fn options_disagree(path: &Path, theirs_pid: u64, differences: &[Difference]) -> String {
    let mut message = format!(
        "processes sharing log file `{}` use different options (reported once for this lock file; give every process the same options):",
        path.display()
    );
    for (i, difference) in differences.iter().enumerate() {
        let separator = if i == 0 { " " } else { "; " };
        message.push_str(&format!(
            "{separator}{} is {} in this process (pid {}) and {} in the record of pid {}: {}",
            difference.option,
            difference.ours,
            crate::platform::pid(),
            difference.theirs,
            theirs_pid,
            difference.rule
        ));
    }
    message
}
