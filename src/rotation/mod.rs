//! Rotation: when a file is full, and what happens to the files rotated out.
//!
//! Rotation runs only under the inter-process lock, so exactly one process performs each
//! one. The naming of archives lives in [`numbered`].

mod numbered;

use std::ffi::OsStr;
use std::io;
use std::path::Path;

use crate::platform::{Dir, FileId, Kind};

/// Whether `incoming` bytes can be appended to a file of `current_len` bytes without
/// taking it past `max_bytes`.
pub(crate) fn fits(current_len: u64, incoming: usize, max_bytes: u64) -> bool {
    current_len.saturating_add(incoming as u64) <= max_bytes
}

/// What a rotation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rotated {
    /// The live file became the newest archive.
    Yes,
    /// The path no longer names the file `live` (an operator moved or deleted it, or put
    /// something else there): nothing was touched, and the caller reopens the path.
    PathMoved,
}

/// The log file: its name in its directory, and its full path for messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogName<'a> {
    pub(crate) dir: &'a Dir,
    pub(crate) name: &'a OsStr,
    pub(crate) path: &'a Path,
}

/// Rotates the log file, which the caller's handle knows as `live`, keeping at most
/// `max_files` archives.
pub(crate) fn rotate(log: LogName<'_>, live: FileId, max_files: usize) -> io::Result<Rotated> {
    match log.dir.entry(log.name)? {
        // A symbolic link swapped in at the path is never renamed into an archive.
        Some(entry) if entry.kind == Kind::File && entry.id == live => {}
        _ => return Ok(Rotated::PathMoved),
    }
    numbered::rotate(log, max_files).map_err(|e| explain(log, e))?;
    Ok(Rotated::Yes)
}

/// Adds to a permission error what rotation needs of the directory.
fn explain(log: LogName<'_>, error: io::Error) -> io::Error {
    if error.kind() != io::ErrorKind::PermissionDenied {
        return error;
    }
    let dir = log.path.parent().unwrap_or(log.path);
    io::Error::new(
        error.kind(),
        format!(
            "{error}; every process that rotates must be able to write and search `{}` \
             (a group they share, mode 2770 say); with the sticky bit set there, only a \
             file's owner may rename it",
            dir.display()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fitting_counts_the_incoming_bytes() {
        assert!(fits(60, 40, 100), "exactly full is allowed");
        assert!(!fits(60, 41, 100));
        assert!(!fits(0, 101, 100));
        assert!(!fits(u64::MAX, 1, 100), "no overflow");
    }
}
