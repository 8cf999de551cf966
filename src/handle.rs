//! The process's handle on the live log file, and the check that it is still the live one.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use crate::lock::WriteIntent;
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
    /// Opens `path` for appending, creating it (and its directory) if missing.
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        let mut options = OpenOptions::new();
        options.append(true).create(true);
        let file = open_creating_dirs(path, crate::platform::never_block_on_open(&mut options))?;
        let metadata = file.metadata()?;
        // Rotation renames the file: a device, FIFO or socket must never be moved around.
        if !metadata.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file (a device, FIFO or socket cannot be rotated)",
            ));
        }
        let id = FileId::of(&metadata);
        Ok(LogHandle { file, id })
    }

    pub(crate) fn id(&self) -> FileId {
        self.id
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

    /// Cuts off what remains of an append that a killed process started on this file and
    /// did not finish. Returns whether anything was cut.
    pub(crate) fn repair(&self, intent: &WriteIntent) -> io::Result<bool> {
        if intent.file != self.id {
            return Ok(false);
        }
        let len = self.len()?;
        let end = intent.len_before.saturating_add(intent.len);
        // A complete append stays: the process died after writing it whole.
        if len > intent.len_before && len < end {
            if self.file.set_len(intent.len_before).is_err() {
                // An append-only file cannot be cut: end the partial line instead, so it
                // stays one garbled line and the next event starts on a line of its own.
                (&self.file).write_all(b"\n")?;
            }
            return Ok(true);
        }
        Ok(false)
    }
}

/// Opens `path` with `options`, recreating its directory first if an operator removed it.
pub(crate) fn open_creating_dirs(path: &Path, options: &OpenOptions) -> io::Result<File> {
    match options.open(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            options.open(path)
        }
        result => result,
    }
}
