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
    /// The `file_mode` a directory this crate creates takes after (see [`create_dirs`]).
    file_mode: Option<u32>,
}

impl LogDir {
    /// Opens the directory at `path` (a resolved path, without symbolic links), creating
    /// it first if it is missing.
    pub(crate) fn open(path: &Path, file_mode: Option<u32>) -> io::Result<Self> {
        Ok(LogDir {
            path: path.to_path_buf(),
            dir: Arc::new(open_creating(path, file_mode)?),
            file_mode,
        })
    }

    pub(crate) fn dir(&self) -> &Arc<Dir> {
        &self.dir
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Makes sure the held directory is the one at the path, opening (or creating) the
    /// one there now if not; returns whether it changed. A symbolic link, or anything but
    /// a directory, at the path is an error: writes fail until a directory is back.
    pub(crate) fn follow(&mut self) -> io::Result<bool> {
        match crate::platform::symlink_metadata(&self.path) {
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
        self.dir = Arc::new(open_creating(&self.path, self.file_mode)?);
        Ok(true)
    }
}

fn open_creating(path: &Path, file_mode: Option<u32>) -> io::Result<Dir> {
    match Dir::open(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            create_dirs(path, file_mode)?;
            Dir::open(path)
        }
        result => result,
    }
}

/// Creates `path` and whichever directories above it are missing. With a `file_mode`,
/// each one it creates gets that mode, with search permission wherever it gives read
/// (`0o660` makes `0o770`), so that whoever may use the files may reach them; without,
/// the umask decides.
pub(crate) fn create_dirs(path: &Path, file_mode: Option<u32>) -> io::Result<()> {
    let Some(mode) = file_mode else {
        return std::fs::create_dir_all(path);
    };
    let mode = mode | (mode & 0o444) >> 2;
    let missing: Vec<&Path> = path.ancestors().take_while(|dir| !dir.exists()).collect();
    for dir in missing.into_iter().rev() {
        match std::fs::create_dir(dir) {
            // A set-group-ID bit inherited from the parent stays: new files keep taking
            // the directory's group, which is what processes of different users share.
            Ok(()) => {
                crate::platform::set_mode(dir, mode | crate::platform::set_group_id_of(dir)?)?
            }
            // Another process made it meanwhile: its mode is its own.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Removes the temporary files whose process is gone, killed before it could rename or
/// remove them: files being created (`.tracing-shared-file.<pid>.<n>.tmp`, and
/// `.<name>.<pid>.<n>.tmp` from earlier versions) and archives of the log `log_name`
/// being compressed by earlier versions (`.<archive>.gz.<pid>.<n>.tmp`).
pub(crate) fn remove_abandoned_temporaries(dir: &Dir, log_name: &OsStr) -> io::Result<()> {
    let mut ours = b".".to_vec();
    ours.extend_from_slice(log_name.as_encoded_bytes());
    ours.push(b'.');
    let created = crate::platform::TEMPORARY_PREFIX.as_bytes();
    for (name, _) in dir.list(b".")? {
        let bytes = name.as_encoded_bytes();
        if !bytes.starts_with(&ours) && !bytes.starts_with(created) {
            continue;
        }
        if writer_of_temporary(&name).is_some_and(|pid| !crate::platform::is_alive(pid)) {
            dir.remove_if_there(&name)?;
        }
    }
    Ok(())
}

/// The pid in a temporary file's name, `….<pid>.<n>.tmp`.
pub(crate) fn writer_of_temporary(name: &OsStr) -> Option<u64> {
    let name = std::str::from_utf8(name.as_encoded_bytes()).ok()?;
    let rest = name.strip_suffix(".tmp")?;
    let (rest, count) = rest.rsplit_once('.')?;
    let (_, pid) = rest.rsplit_once('.')?;
    let digits = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    (digits(count) && digits(pid)).then(|| pid.parse().ok())?
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
    fn temporaries_name_their_writer() {
        assert_eq!(
            writer_of_temporary(OsStr::new(".app.log.123.4.tmp")),
            Some(123)
        );
        assert_eq!(
            writer_of_temporary(OsStr::new(".app.log.2026-11-27T14-00-00Z.gz.77.0.tmp")),
            Some(77)
        );
        assert_eq!(
            writer_of_temporary(OsStr::new(".tracing-shared-file.4294967295.0.tmp")),
            Some(4_294_967_295)
        );
        for other in [
            "app.log.2026-11-27T14-00-00Z.gz",
            ".app.log.x.1.tmp",
            ".app.log.1.tmp",
        ] {
            assert_eq!(writer_of_temporary(OsStr::new(other)), None, "{other}");
        }
    }

    #[test]
    fn follows_the_directory_at_the_path_and_never_a_link() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("logs");
        let mut dir = LogDir::open(&path, None).unwrap();
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

        // Deleted and recreated in place: the held one has no name any more. Unix only:
        // Windows holds no directory open and looks every name up by the path, so it
        // follows a recreated one by itself (and Wine gives it the reused inode's id).
        #[cfg(unix)]
        {
            let held = dir.dir().id();
            std::fs::remove_dir(&path).unwrap();
            std::fs::create_dir(&path).unwrap();
            assert!(dir.follow().unwrap());
            assert_ne!(dir.dir().id(), held);
        }

        // A link in its place is refused, and so is a file.
        std::fs::remove_dir(&path).unwrap();
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(root.path().join("logs.old"), &path).unwrap();
            let err = dir.follow().unwrap_err();
            assert!(err.to_string().contains("symbolic link"), "{err}");
            std::fs::remove_file(&path).unwrap();
        }
        std::fs::write(&path, b"not a directory").unwrap();
        let err = dir.follow().unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{err}");
    }
}
