//! [`Builder`]: configuration of a [`SharedFile`], checked once at build time.

use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind};
use crate::handle::LogHandle;
use crate::lock::LockFile;
use crate::writer::SharedFile;

/// The default for [`Builder::max_bytes`]: 10 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 10 * 1024 * 1024;

/// The default for [`Builder::max_files`]: 5 rotated files.
pub const DEFAULT_MAX_FILES: usize = 5;

/// Configures a [`SharedFile`]; made by [`SharedFile::builder`].
///
/// Every process that shares the file must use the same path and should use the same
/// options: rotation decisions are made by whichever process writes the event that does
/// not fit.
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
#[derive(Debug, Clone)]
pub struct Builder {
    path: PathBuf,
    max_bytes: u64,
    max_files: usize,
}

impl Builder {
    pub(crate) fn new(path: &Path) -> Self {
        Builder {
            path: path.to_path_buf(),
            max_bytes: DEFAULT_MAX_BYTES,
            max_files: DEFAULT_MAX_FILES,
        }
    }

    /// The size limit of every file, in bytes. Default: [`DEFAULT_MAX_BYTES`] (10 MiB).
    ///
    /// Before an event is appended, the file rotates if the event would take it past this
    /// limit. No file ever exceeds it, unless the file holds a single event that is larger
    /// on its own. Must be greater than 0.
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
        self.max_bytes = max_bytes;
        self
    }

    /// How many rotated files to keep: `app.log.1` (newest) up to `app.log.<max_files>`.
    /// Older ones are deleted by the rotation that would push them past this number.
    /// Default: [`DEFAULT_MAX_FILES`] (5). Must be greater than 0.
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
        self.max_files = max_files;
        self
    }

    /// Checks the options, creates missing parent directories, and opens the lock file
    /// (`<path>.lock`) and the log file.
    ///
    /// # Errors
    ///
    /// An [`Error`] naming the path and the cause when an option is 0, the path has no
    /// file name or is a directory, the directory cannot be created, or the lock file or
    /// log file cannot be opened (for example for lack of permission).
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
            max_bytes,
            max_files,
        } = self;
        if path.file_name().is_none() || ends_with_separator(&path) {
            return Err(Error::config(ErrorKind::NoFileName, &path));
        }
        if max_bytes == 0 {
            return Err(Error::config(ErrorKind::ZeroMaxBytes, &path));
        }
        if max_files == 0 {
            return Err(Error::config(ErrorKind::ZeroMaxFiles, &path));
        }
        // Absolute, so that a later change of working directory cannot split the processes.
        let path =
            std::path::absolute(&path).map_err(|e| Error::io(ErrorKind::OpenLogFile, &path, e))?;
        if path.is_dir() {
            return Err(Error::config(ErrorKind::IsDirectory, &path));
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io(ErrorKind::CreateDirectory, parent, e))?;
        }
        let lock_path = LockFile::path_for(&path);
        let lock = LockFile::open(&lock_path)
            .map_err(|e| Error::io(ErrorKind::OpenLockFile, &lock_path, e))?;
        let handle =
            LogHandle::open(&path).map_err(|e| Error::io(ErrorKind::OpenLogFile, &path, e))?;
        Ok(SharedFile::from_parts(
            path, max_bytes, max_files, lock, handle,
        ))
    }
}

/// `logs/app.log/` names a directory to the OS even though `Path` drops the slash.
fn ends_with_separator(path: &Path) -> bool {
    path.as_os_str()
        .as_encoded_bytes()
        .last()
        .is_some_and(|&b| std::path::is_separator(b as char))
}
