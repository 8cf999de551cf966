//! [`Builder`]: configuration of a [`SharedFile`], checked once at build time.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, ErrorKind};
#[cfg(unix)]
use crate::fork::registering;
use crate::handle::LogHandle;
use crate::lock::{LockFile, NotOurLockFile};
use crate::log_dir::LogDir;
use crate::report::{ErrorHook, IoFailure};
use crate::rotation::Naming;
use crate::settings::Settings;
use crate::writer::{Parts, SharedFile};

mod names;
mod policy;

/// Configures a [`SharedFile`]; made by [`SharedFile::builder`].
///
/// Every process that shares the file must use the same path and should use the same
/// options. Where they differ, the README's table of shared options says who rules: the
/// live file keeps the time schedule it was opened under until it rotates, and each
/// rotation applies the limits and naming of the process that rotates. Every option that
/// decides rotation, naming and retention is recorded in the lock file; a process whose
/// options differ from the record says so once per lock file (to the `on_error` hook, or
/// on stderr), naming both values and which one rules.
///
/// # Examples
///
/// ```
/// use tracing_shared_file::SharedFile;
///
/// let dir = tempfile::tempdir()?;
/// let log = SharedFile::builder(dir.path().join("logs/app.log"))
///     .max_bytes(1024 * 1024)
///     .max_files(3)
///     .build()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Builder {
    path: PathBuf,
    settings: Settings,
    on_error: Option<ErrorHook>,
    /// A time zone asked for by name, or the system's, looked up by `build()`.
    zone: Option<policy::ZoneChoice>,
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
}

impl Builder {
    pub(crate) fn new(path: &Path) -> Self {
        Builder {
            path: path.to_path_buf(),
            settings: Settings::default(),
            on_error: None,
            zone: None,
        }
    }

    /// The size limit of every file, in bytes. Default: [`DEFAULT_MAX_BYTES`](crate::DEFAULT_MAX_BYTES) (10 MiB).
    ///
    /// Before an event is appended, the file rotates if the event would take it past this
    /// limit. No file ever exceeds it, unless the file holds a single event that is larger
    /// on its own, or a rotation failed (a directory in the way of `app.log.N`, say; the
    /// event is then appended anyway, and the failure reported). Must be greater than 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use tracing_shared_file::SharedFile;
    ///
    /// let builder = SharedFile::builder("logs/app.log").max_bytes(64 * 1024);
    /// ```
    #[must_use]
    pub fn max_bytes(mut self, max_bytes: u64) -> Self {
        self.settings.max_bytes = max_bytes;
        self
    }

    /// How many rotated files to keep besides the live file: `app.log.1` (newest) up to
    /// `app.log.<max_files>`. Each rotation deletes the archives that would be older than
    /// that, oldest first, including ones that a process configured with a larger
    /// `max_files` kept; it never deletes an archive while keeping an older one.
    /// Default: [`DEFAULT_MAX_FILES`](crate::DEFAULT_MAX_FILES) (5). Must be greater than 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use tracing_shared_file::SharedFile;
    ///
    /// let builder = SharedFile::builder("logs/app.log").max_files(10);
    /// ```
    #[must_use]
    pub fn max_files(mut self, max_files: usize) -> Self {
        self.settings.max_files = max_files;
        self
    }

    /// How often each process asks the kernel (`stat(2)`) whether the log directory, the log
    /// path and the lock path still name the files it has open. Default:
    /// [`DEFAULT_PATH_CHECK_INTERVAL`](crate::DEFAULT_PATH_CHECK_INTERVAL) (10 ms).
    ///
    /// Rotations by other processes using this library are noticed before the next write
    /// whatever this is: the rotator records the new live file in the lock file's shared
    /// page. This check is for other programs that move, delete or replace the files
    /// (logrotate, an operator): until it runs, a process keeps appending to the file it
    /// has open. [`Duration::ZERO`] checks before every write, at the cost of four more
    /// system calls per write, two of them path lookups (well under half the throughput of
    /// the default, in the single-process benchmark).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tracing_shared_file::SharedFile;
    ///
    /// let strict = SharedFile::builder("logs/app.log").path_check_interval(Duration::ZERO);
    /// ```
    #[must_use]
    pub fn path_check_interval(mut self, interval: Duration) -> Self {
        self.settings.path_check_interval = interval;
        self
    }

    /// The longest a write waits for the lock while another process holds it. Default:
    /// no limit, the write waits for as long as the lock is held.
    ///
    /// A process that holds the lock and never lets go (one stopped with `SIGSTOP` or by a
    /// debugger inside its critical section) would otherwise make every writer wait with
    /// it. Past this bound the write fails with [`std::io::ErrorKind::TimedOut`]: the
    /// events are dropped, counted in [`Stats::events_dropped`](crate::Stats), and reported
    /// with the pid of the process that holds the lock. With a bound, a waiting process
    /// polls the lock (with a back-off up to 1 ms) instead of sleeping in `flock(2)`, so a
    /// contended write may wait up to about 1 ms longer than it would without one.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use tracing_shared_file::SharedFile;
    ///
    /// let bounded = SharedFile::builder("logs/app.log").lock_timeout(Duration::from_secs(5));
    /// ```
    #[must_use]
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.settings.lock_timeout = Some(timeout);
        self
    }

    /// The permission bits of every file this crate creates: the log file (and so its
    /// archives, which are renamed log files) and the lock file. Default: none, the
    /// process's umask applied to `0o666`.
    ///
    /// The bits are exact whatever the umask, and no process ever sees a file with other
    /// bits: each file is created under a temporary name, given its mode, then renamed
    /// into place. They apply at creation only, like logrotate's `create`: a file that
    /// already exists keeps its mode. New files belong to the creating process's user, and
    /// to its group (or the directory's, in a directory with the set-group-ID bit).
    ///
    /// Processes of different users that share one log, such as workers that drop
    /// privileges after `fork`, need a group that all of them are in, this mode with read
    /// and write for the group (`0o660`), and a directory that the group may write and
    /// search (`2770` with that group, say): rotation renames and creates files in it. In a
    /// directory with the sticky bit (`/tmp`), only a file's owner may rename it, so only
    /// the process that created the live file could rotate it.
    ///
    /// Must include read and write for the owner, and no bits beyond `0o777`. Unix only:
    /// on Windows, which has no permission bits, `build()` refuses it
    /// ([`ErrorKind::FileModeUnsupported`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use tracing_shared_file::SharedFile;
    ///
    /// let shared_with_the_group = SharedFile::builder("logs/app.log").file_mode(0o660);
    /// ```
    #[must_use]
    pub fn file_mode(mut self, mode: u32) -> Self {
        self.settings.file_mode = Some(mode);
        self
    }

    /// Calls `hook` with every I/O failure on the write path, instead of the default:
    /// a line on stderr, at most once every 10 seconds (with a count of the ones
    /// suppressed in between). Every failure is also counted in
    /// [`SharedFile::stats`](crate::SharedFile::stats). The hook also receives the notices
    /// that would otherwise go to stderr, about things that lost nothing (a partial line
    /// that a killed process left was cut off, the lock file was replaced, processes
    /// disagree on options), with [`IoFailure::event_dropped`] false.
    ///
    /// The hook runs after the locks are released, on the thread that wrote (in
    /// non-blocking mode, the background thread). It should not log through the same
    /// `SharedFile` or its `NonBlocking` writer. If it does, nothing hangs or recurses: a
    /// failure of a write made inside the hook is counted but not reported to the hook
    /// again, and on the background thread such a write goes straight to the file instead
    /// of waiting for room in the queue. A panic in it is caught and ignored.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use tracing_shared_file::SharedFile;
    ///
    /// // Failed writes; `stats().events_dropped` counts every lost event, including the
    /// // ones a lossy non-blocking queue drops when full, which are not failures.
    /// static FAILED_WRITES: AtomicU64 = AtomicU64::new(0);
    /// let builder = SharedFile::builder("logs/app.log").on_error(|failure| {
    ///     if failure.event_dropped() {
    ///         FAILED_WRITES.fetch_add(1, Ordering::Relaxed);
    ///     }
    /// });
    /// ```
    #[must_use]
    pub fn on_error<F>(mut self, hook: F) -> Self
    where
        F: Fn(&IoFailure<'_>) + Send + Sync + 'static,
    {
        self.on_error = Some(Arc::new(hook));
        self
    }

    /// Checks the options, creates missing parent directories, and opens the lock file
    /// (`<path>.lock`) and the log file.
    ///
    /// # Errors
    ///
    /// An [`Error`] naming the path and the cause when an option is 0, the path has no
    /// file name or is a directory, the directory cannot be created, the lock file or
    /// log file cannot be opened (for example for lack of permission), or a name the log
    /// would create in its directory is longer than the directory takes
    /// ([`ErrorKind::NameTooLong`]: every name counts at its widest, archives with their
    /// largest counter and `.gz`, the lock file, temporary files).
    ///
    /// # Examples
    ///
    /// ```
    /// use tracing_shared_file::{ErrorKind, SharedFile};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let err = SharedFile::builder(dir.path()).build().unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::IsDirectory);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn build(self) -> Result<SharedFile, Error> {
        let Builder {
            path,
            mut settings,
            on_error,
            zone,
        } = self;
        if path.file_name().is_none() || ends_with_separator(&path) {
            return Err(Error::config(ErrorKind::NoFileName, &path));
        }
        if settings.max_bytes == 0 {
            return Err(Error::config(ErrorKind::ZeroMaxBytes, &path));
        }
        if settings.max_files == 0 {
            return Err(Error::config(ErrorKind::ZeroMaxFiles, &path));
        }
        if settings
            .file_mode
            .is_some_and(|mode| mode & 0o600 != 0o600 || mode & !0o777 != 0)
        {
            return Err(Error::config(ErrorKind::InvalidFileMode, &path));
        }
        if cfg!(windows) && settings.file_mode.is_some() {
            return Err(Error::config(ErrorKind::FileModeUnsupported, &path));
        }
        if settings
            .rotate_every
            .is_some_and(|period| period.seconds().is_none())
        {
            return Err(Error::config(ErrorKind::InvalidPeriod, &path));
        }
        if let Some(zone) = zone {
            settings.zone = zone
                .resolve()
                .ok_or_else(|| Error::config(ErrorKind::UnknownTimeZone, &path))?;
        }
        if settings.compress && !cfg!(feature = "compress") {
            return Err(Error::config(ErrorKind::CompressionNeedsFeature, &path));
        }
        if settings.compress && settings.naming != Naming::Timestamped {
            return Err(Error::config(ErrorKind::CompressionNeedsTimestamps, &path));
        }
        // Absolute, so that a later change of working directory cannot split the processes.
        let path = std::path::absolute(&path)
            .and_then(|absolute| resolve_symlinks(&absolute))
            .map_err(|e| Error::io(ErrorKind::OpenLogFile, &path, e))?;
        if path.is_dir() {
            return Err(Error::config(ErrorKind::IsDirectory, &path));
        }
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(Error::config(ErrorKind::NoFileName, &path));
        };
        let name = name.to_os_string();
        crate::log_dir::create_dirs(parent, settings.file_mode)
            .map_err(|e| Error::io(ErrorKind::CreateDirectory, parent, e))?;
        // Later lookups go through the directory's real path, never through a symbolic
        // link swapped in for it.
        let dir = std::fs::canonicalize(parent)
            .and_then(|real| LogDir::open(&real, settings.file_mode))
            .map_err(|e| Error::io(ErrorKind::CreateDirectory, parent, e))?;
        check_name_length(&dir, &name, &settings, &path)?;
        // What a killed process left half-made; nothing depends on it being done.
        let _ = crate::log_dir::remove_abandoned_temporaries(dir.dir(), &name);
        let lock_path = LockFile::path_for(&path);
        let lock_name = LockFile::name_for(&name);
        // A fork while the lock file's descriptions are open but not yet known to the fork
        // handlers would give the child its parent's lock: forks wait for this part.
        registering(|| {
            let lock = LockFile::open(dir.dir(), &lock_name, settings.file_mode).map_err(|e| {
                let kind = if NotOurLockFile::is(&e) {
                    ErrorKind::ForeignLockFile
                } else {
                    ErrorKind::OpenLockFile
                };
                Error::io(kind, &lock_path, e)
            })?;
            let handle = LogHandle::open(dir.dir(), &name, settings.file_mode)
                .map_err(|e| Error::io(ErrorKind::OpenLogFile, &path, e))?;
            Ok(SharedFile::from_parts(Parts {
                path,
                lock_path,
                name,
                lock_name,
                settings,
                dir,
                lock,
                handle,
                on_error,
            }))
        })
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("path", &self.path)
            .field("settings", &self.settings)
            .field("on_error", &self.on_error.as_ref().map(|_| "<hook>"))
            .field("zone", &self.zone)
            .finish()
    }
}

/// No fork on Windows: nothing for fork handlers to know of.
#[cfg(windows)]
fn registering<T, E>(open: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
    open()
}

/// Refuses a log whose longest name (see [`names`]) the directory cannot take.
fn check_name_length(
    dir: &LogDir,
    name: &std::ffi::OsStr,
    settings: &Settings,
    path: &Path,
) -> Result<(), Error> {
    let limit = dir
        .dir()
        .name_max()
        .map_err(|e| Error::io(ErrorKind::CreateDirectory, dir.path(), e))?;
    let longest = names::longest_name(name, settings);
    match limit {
        Some(limit) if longest.len() > limit => {
            let detail = std::io::Error::new(
                std::io::ErrorKind::InvalidFilename,
                format!(
                    "the longest, `{}`, is {} bytes, and the directory takes at most {limit}",
                    longest.to_string_lossy(),
                    longest.len()
                ),
            );
            Err(Error::io(ErrorKind::NameTooLong, path, detail))
        }
        _ => Ok(()),
    }
}

/// Follows `path` while it is a symbolic link, so that rotation renames the real file
/// (and the lock sits beside it) rather than moving the link away. The target need not
/// exist yet.
fn resolve_symlinks(path: &Path) -> std::io::Result<PathBuf> {
    // The kernel's own limit on links followed in one lookup.
    const MAX_LINKS: usize = 40;
    let mut path = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match std::fs::symlink_metadata(&path) {
            Ok(metadata) if metadata.file_type().is_symlink() => {
                let target = std::fs::read_link(&path)?;
                path = match path.parent() {
                    Some(parent) => parent.join(target),
                    None => target,
                };
            }
            _ => return Ok(path),
        }
    }
    Err(std::io::Error::other(format!(
        "more than {MAX_LINKS} symbolic links to follow"
    )))
}

/// `logs/app.log/` and `logs/app.log/.` name a directory to the OS, though `Path` drops
/// the slash and the dot.
fn ends_with_separator(path: &Path) -> bool {
    let bytes = path.as_os_str().as_encoded_bytes();
    let bytes = bytes
        .strip_suffix(b".")
        .filter(|rest| rest.is_empty() || rest.ends_with(b"/"))
        .unwrap_or(bytes);
    bytes
        .last()
        .is_some_and(|&b| std::path::is_separator(b as char))
}

#[cfg(all(test, windows))]
mod tests {
    use crate::{ErrorKind, SharedFile};

    /// Windows has no permission bits: `file_mode` is refused, naming the path and the fix.
    #[test]
    fn file_mode_is_refused_on_windows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let error = SharedFile::builder(&path)
            .file_mode(0o660)
            .build()
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::FileModeUnsupported);
        assert_eq!(error.path(), path);
        let message = error.to_string();
        assert!(message.contains("#[cfg(unix)]"), "{message}");
        assert!(!path.exists(), "nothing is created");
    }
}
