//! The process's handle on the live log file, and the check that it is still the live one.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use crate::platform::FileId;

/// An append-mode handle on the log file, remembering which file it opened.
///
/// Another process may rotate the file, or an operator may move or delete it, at any time.
/// [`LogHandle::is_stale`] tells, by device and inode, whether the path still names the
/// file this handle writes to.
#[derive(Debug)]
pub(crate) struct LogHandle {
    file: File,
    id: FileId,
}

impl LogHandle {
    /// Opens `path` for appending, creating it if missing.
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new().append(true).create(true).open(path)?;
        let id = FileId::of(&file.metadata()?);
        Ok(LogHandle { file, id })
    }

    /// Whether `path` no longer names the file this handle points at.
    ///
    /// A missing path counts as stale: the next write recreates it.
    pub(crate) fn is_stale(&self, path: &Path) -> io::Result<bool> {
        match std::fs::metadata(path) {
            Ok(metadata) => Ok(FileId::of(&metadata) != self.id),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// The file's current size on disk, which every process sees alike.
    pub(crate) fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    /// Appends all of `buf`, or nothing: after a failed or short write (a full disk) the
    /// file is cut back to `len_before`, so the next append cannot glue onto a partial
    /// line. Callers hold the lock, so no other process appended in between.
    pub(crate) fn append(&mut self, buf: &[u8], len_before: u64) -> io::Result<()> {
        let result = self.file.write_all(buf);
        if result.is_err() {
            // If even this fails the file keeps a partial line; the write error is what
            // gets reported, and it is the more useful of the two.
            let _ = self.file.set_len(len_before);
        }
        result
    }
}
