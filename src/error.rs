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
///
/// Its `Debug` form is the kind and then the `Display` sentence, so that a `main` that
/// returns `Result<(), Error>` prints what to do (`{:#?}` shows the fields):
///
/// ```
/// use tracing_shared_file::SharedFile;
///
/// let err = SharedFile::builder("logs/app.log").max_bytes(0).build().unwrap_err();
/// assert_eq!(
///     format!("{err:?}"),
///     format!("ZeroMaxBytes: {err}"),
/// );
/// ```
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
    /// [`Builder::file_mode`](crate::Builder::file_mode) on Windows, which has no Unix
    /// permission bits: who may use the files is up to the directory's access control
    /// list there.
    FileModeUnsupported,
    /// A custom [`Period::Every`](crate::Period::Every) that is not a whole number of
    /// seconds, at least one.
    InvalidPeriod,
    /// [`Builder::time_zone`](crate::Builder::time_zone) named a zone that the system's
    /// tz database (`/usr/share/zoneinfo`) does not have, or
    /// [`Builder::system_time_zone`](crate::Builder::system_time_zone) found no zone.
    UnknownTimeZone,
    /// Compression was asked for with numbered archive names: renumbering archives while
    /// another thread compresses them would race, so compression needs
    /// [`Naming::Timestamped`](crate::Naming::Timestamped).
    CompressionNeedsTimestamps,
    /// `compress(true)` in a build of the crate without its `compress` cargo feature, which
    /// brings the gzip code: enable it in `Cargo.toml`.
    CompressionNeedsFeature,
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
    /// A name the log would create in its directory (an archive with its counter and
    /// `.gz`, the lock file, a temporary file) is longer than the directory's file system
    /// takes (`NAME_MAX`, 255 bytes on most): the message names the limit and the longest
    /// name. Choose a shorter file name.
    NameTooLong,
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

impl fmt::Debug for Error {
    /// The kind, then what `Display` says: `fn main() -> Result<(), Error>` prints this,
    /// and a sentence the user can act on beats a struct. The alternate form (`{:#?}`)
    /// shows the fields.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            return f
                .debug_struct("Error")
                .field("kind", &self.kind)
                .field("path", &self.path)
                .field("source", &self.source)
                .finish();
        }
        write!(f, "{:?}: {self}", self.kind)
    }
}

impl fmt::Display for Error {
    /// The path first, then what is wrong, the cause from the operating system, and what
    /// would fix it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        match self.kind {
            ErrorKind::NoFileName if self.path.as_os_str().is_empty() => {
                write!(
                    f,
                    "the log path is empty: give the path of a file, such as logs/app.log"
                )
            }
            ErrorKind::NoFileName => write!(
                f,
                "log path `{path}` has no file name: give the path of a file, such as logs/app.log"
            ),
            ErrorKind::IsDirectory => write!(
                f,
                "log path `{path}` is a directory: give the path of a file in it, such as `{}`",
                self.path.join("app.log").display()
            ),
            ErrorKind::ZeroMaxBytes => {
                write!(f, "log file `{path}`: max_bytes must be greater than 0")
            }
            ErrorKind::ZeroMaxFiles => {
                write!(f, "log file `{path}`: max_files must be greater than 0")
            }
            ErrorKind::InvalidFileMode => write!(
                f,
                "log file `{path}`: file_mode must give the owner read and write, and no bits beyond 0o777"
            ),
            ErrorKind::FileModeUnsupported => write!(
                f,
                "log file `{path}`: file_mode sets Unix permission bits, which Windows does not have: leave it out there (under #[cfg(unix)]) and let the directory's access control list decide who may use the files"
            ),
            ErrorKind::InvalidPeriod => write!(
                f,
                "log file `{path}`: rotate_every needs a period of whole seconds, at least one"
            ),
            ErrorKind::UnknownTimeZone => write!(
                f,
                "log file `{path}`: the time zone is not in the system's tz database (install the tzdata package, or check the name: Europe/Berlin, say)"
            ),
            ErrorKind::CompressionNeedsTimestamps => write!(
                f,
                "log file `{path}`: compress(true) needs naming(Naming::Timestamped)"
            ),
            ErrorKind::CompressionNeedsFeature => write!(
                f,
                "log file `{path}`: compress(true) needs the `compress` cargo feature of tracing-shared-file: \
                 add features = [\"compress\"] to its line in Cargo.toml, or run \
                 `cargo add tracing-shared-file --features compress`"
            ),
            ErrorKind::CreateDirectory => {
                write!(f, "directory `{path}` for the log cannot be created")?;
                self.cause(f)?;
                match self.source.as_ref().map(io::Error::kind) {
                    Some(io::ErrorKind::AlreadyExists | io::ErrorKind::NotADirectory) => write!(
                        f,
                        "; something that is not a directory is in the way: move it, or choose another path"
                    ),
                    Some(io::ErrorKind::PermissionDenied) => write!(
                        f,
                        "; create the directory beforehand, or let this process's user do it"
                    ),
                    _ => Ok(()),
                }
            }
            ErrorKind::OpenLockFile => {
                write!(f, "lock file `{path}` cannot be opened")?;
                self.cause(f)
            }
            ErrorKind::ForeignLockFile => {
                write!(f, "lock file `{path}` is not one of this crate's")?;
                self.cause(f)
            }
            ErrorKind::OpenLogFile => {
                write!(f, "log file `{path}` cannot be opened")?;
                self.cause(f)
            }
            ErrorKind::NameTooLong => {
                write!(
                    f,
                    "log file `{path}`: a name it would create in its directory is too long"
                )?;
                self.cause(f)?;
                write!(f, "; choose a shorter file name")
            }
        }
    }
}

impl Error {
    /// The cause goes in the message too: most users print only the top-level error.
    fn cause(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(source) => write!(f, ": {source}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
