//! The one error type returned while setting up a [`SharedFile`](crate::SharedFile).
//!
//! The write path reports plain [`std::io::Error`]s instead, as `std::io::Write` requires.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Why [`Builder::build`](crate::Builder::build) failed.
///
/// Every error names the path it concerns and the cause. Errors that come from the
/// operating system also carry the [`io::Error`] as their [`source`](std::error::Error::source).
///
/// # Examples
///
/// ```
/// use tracing_shared_file::{ErrorKind, SharedFile};
///
/// let err = SharedFile::builder("logs/app.log").max_bytes(0).build().unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::ZeroMaxBytes);
/// assert!(err.to_string().contains("app.log"));
/// ```
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    path: PathBuf,
    source: Option<io::Error>,
}

/// The category of an [`Error`], for callers that want to react to one cause.
///
/// # Examples
///
/// ```
/// use tracing_shared_file::{ErrorKind, SharedFile};
///
/// let err = SharedFile::builder("logs/app.log").max_files(0).build().unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::ZeroMaxFiles);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// `max_bytes` was 0: no event could ever fit.
    ZeroMaxBytes,
    /// `max_files` was 0: rotation would have nowhere to keep the old file.
    ZeroMaxFiles,
    /// `file_mode` lacks read or write for the owner, or has bits beyond `0o777`.
    InvalidFileMode,
    /// A custom [`Period::Every`](crate::Period::Every) that is not a whole number of
    /// seconds, at least one.
    InvalidPeriod,
    /// Compression was asked for with numbered archive names: renumbering archives while
    /// another thread compresses them would race, so compression needs
    /// [`Naming::Timestamped`](crate::Naming::Timestamped).
    CompressionNeedsTimestamps,
    /// The path has no file name (for example `""`, `/` or `logs/..`).
    NoFileName,
    /// The path names a directory, not a file.
    IsDirectory,
    /// The log file's parent directory could not be created.
    CreateDirectory,
    /// The side lock file could not be opened or created.
    OpenLockFile,
    /// Something that is not this crate's lock file sits at the lock path: a symbolic
    /// link, something other than a regular file, a file with other hard links, or a file
    /// holding data without this crate's header. It is left untouched.
    ForeignLockFile,
    /// The log file could not be opened or created for appending.
    OpenLogFile,
}

impl ErrorKind {
    fn describe(self) -> &'static str {
        match self {
            ErrorKind::ZeroMaxBytes => "max_bytes must be greater than 0 for log file",
            ErrorKind::ZeroMaxFiles => "max_files must be greater than 0 for log file",
            ErrorKind::InvalidPeriod => {
                "rotate_every needs a period of whole seconds, at least one, for log file"
            }
            ErrorKind::CompressionNeedsTimestamps => {
                "compress(true) needs naming(Naming::Timestamped) for log file"
            }
            ErrorKind::InvalidFileMode => {
                "file_mode must give the owner read and write, and no bits beyond 0o777, for log file"
            }
            ErrorKind::NoFileName => "log path has no file name",
            ErrorKind::IsDirectory => "log path is a directory, not a file",
            ErrorKind::CreateDirectory => "cannot create the directory for log file",
            ErrorKind::OpenLockFile => "cannot open lock file",
            ErrorKind::ForeignLockFile => "refusing to use lock file",
            ErrorKind::OpenLogFile => "cannot open log file",
        }
    }
}

impl Error {
    pub(crate) fn config(kind: ErrorKind, path: &Path) -> Self {
        Error {
            kind,
            path: path.to_path_buf(),
            source: None,
        }
    }

    pub(crate) fn io(kind: ErrorKind, path: &Path, source: io::Error) -> Self {
        Error {
            kind,
            path: path.to_path_buf(),
            source: Some(source),
        }
    }

    /// What went wrong, as a matchable category.
    ///
    /// # Examples
    ///
    /// ```
    /// use tracing_shared_file::{ErrorKind, SharedFile};
    ///
    /// let err = SharedFile::builder("").build().unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::NoFileName);
    /// ```
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The path the error concerns: the log file, its lock file or its directory.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::path::Path;
    /// use tracing_shared_file::SharedFile;
    ///
    /// let err = SharedFile::builder("logs/app.log").max_bytes(0).build().unwrap_err();
    /// assert!(err.path().ends_with("logs/app.log"));
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} `{}`", self.kind.describe(), self.path.display())?;
        // The cause goes in the message too: most users print only the top-level error.
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
