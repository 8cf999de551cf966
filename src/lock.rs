//! The inter-process lock: an exclusive `flock(2)` on a side file next to the log.
//!
//! The lock lives on its own file because rotation renames the log file: a lock on the
//! log itself would stop excluding anyone the moment it was renamed. Rotation never
//! renames or deletes the lock file.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// The side lock file of one log file, held open for the life of a [`SharedFile`](crate::SharedFile).
///
/// flock belongs to the open file description, which all threads of a process share, so
/// this lock excludes other processes only: callers serialise their own threads first.
#[derive(Debug)]
pub(crate) struct LockFile {
    file: File,
}

impl LockFile {
    /// The lock file's path for a log path: `app.log` locks through `app.log.lock`.
    pub(crate) fn path_for(log_path: &Path) -> PathBuf {
        let mut name = OsString::from(log_path.as_os_str());
        name.push(".lock");
        PathBuf::from(name)
    }

    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        // Write access is what Windows' LockFileEx will need; flock itself needs none.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        Ok(LockFile { file })
    }

    /// Blocks until this process holds the lock exclusively.
    pub(crate) fn lock(&self) -> io::Result<LockGuard<'_>> {
        self.file.lock()?;
        Ok(LockGuard { file: &self.file })
    }
}

/// Releases the lock when dropped, on every path out of the critical section.
#[derive(Debug)]
pub(crate) struct LockGuard<'a> {
    file: &'a File,
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        // An unlock can only fail on a bad descriptor, and closing the file would release
        // the lock anyway; nothing useful can be done with the error here.
        let _ = self.file.unlock();
    }
}
