//! The directory that holds the log, its lock file and its archives, held open.
//!
//! Every file is opened, renamed and deleted through the directory's descriptor, so a
//! symbolic link swapped in for the directory after `build()` redirects nothing. The
//! directory is looked up by its path again when that path stops naming it (an operator
//! removed, recreated or moved it): never through a symbolic link at its last component.

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::platform::{Dir, FileId};

#[derive(Debug)]
pub(crate) struct LogDir {
    /// The directory's real path, as `build()` resolved it.
    path: PathBuf,
    dir: Arc<Dir>,
}

impl LogDir {
    /// Opens the directory at `path` (a resolved path, without symbolic links), creating
    /// it first if it is missing.
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        Ok(LogDir {
            path: path.to_path_buf(),
            dir: Arc::new(open_creating(path)?),
        })
    }

    pub(crate) fn dir(&self) -> &Arc<Dir> {
        &self.dir
    }

    /// Makes sure the held directory is the one at the path, opening (or creating) the
    /// one there now if not; returns whether it changed. A symbolic link, or anything but
    /// a directory, at the path is an error: writes fail until a directory is back.
    pub(crate) fn follow(&mut self) -> io::Result<bool> {
        match std::fs::symlink_metadata(&self.path) {
            Ok(metadata)
                if metadata.is_dir()
                    && FileId::of(&metadata) == self.dir.id()
                    && !self.dir.is_deleted()? =>
            {
                Ok(false)
            }
            Ok(metadata) if metadata.file_type().is_symlink() => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the log directory `{}` is now a symbolic link; refusing to follow it",
                    self.path.display()
                ),
            )),
            Ok(metadata) if !metadata.is_dir() => Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!(
                    "the log directory `{}` is not a directory",
                    self.path.display()
                ),
            )),
            Ok(_) => self.reopen(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => self.reopen(),
            Err(e) => Err(e),
        }
    }

    fn reopen(&mut self) -> io::Result<bool> {
        self.dir = Arc::new(open_creating(&self.path)?);
        Ok(true)
    }
}

fn open_creating(path: &Path) -> io::Result<Dir> {
    match Dir::open(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::create_dir_all(path)?;
            Dir::open(path)
        }
        result => result,
    }
}

/// Adds to a permission error on `name` in `dir` whose it is and what would fix it.
pub(crate) fn explain_access(dir: &Dir, name: &OsStr, error: io::Error) -> io::Error {
    if error.kind() != io::ErrorKind::PermissionDenied {
        return error;
    }
    let hint = match dir.entry(name) {
        Ok(Some(entry)) => format!(
            "it belongs to uid {} and gid {} with mode {:04o}: give every process that \
             shares the log a group with read and write access (`file_mode`, for example \
             0o660, sets the mode of the files this crate creates), or change its mode",
            entry.uid, entry.gid, entry.mode
        ),
        _ => "this process may not create files in the log directory: make the directory \
              writable by a group every process that shares the log belongs to"
            .to_string(),
    };
    io::Error::new(error.kind(), format!("{error}; {hint}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_directory_at_the_path_and_never_a_link() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("logs");
        let mut dir = LogDir::open(&path).unwrap();
        let first = dir.dir().id();
        assert!(!dir.follow().unwrap(), "unchanged");
        assert_eq!(dir.dir().id(), first);

        // Moved away and replaced by another directory: follow the new one.
        std::fs::rename(&path, root.path().join("logs.old")).unwrap();
        std::fs::create_dir(&path).unwrap();
        assert!(dir.follow().unwrap());
        assert_ne!(dir.dir().id(), first);
        assert!(!dir.follow().unwrap());

        // Removed: recreated.
        std::fs::remove_dir(&path).unwrap();
        assert!(dir.follow().unwrap());
        assert!(path.is_dir());

        // Deleted and recreated in place: the held one has no name any more.
        let held = dir.dir().id();
        std::fs::remove_dir(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        assert!(dir.follow().unwrap());
        assert_ne!(dir.dir().id(), held);

        // A link in its place is refused, and so is a file.
        std::fs::remove_dir(&path).unwrap();
        std::os::unix::fs::symlink(root.path().join("logs.old"), &path).unwrap();
        let err = dir.follow().unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"not a directory").unwrap();
        let err = dir.follow().unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{err}");
    }
}
