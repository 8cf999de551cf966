//! [`Dir`]: the log's directory, held open, so that every name is looked up in it.
//!
//! `O_NOFOLLOW` protects the last component of a path only. Opening, renaming and deleting
//! through a directory descriptor (`openat`, `renameat`, `unlinkat`) also keeps a
//! symbolic link swapped in for the directory itself from redirecting any of them.

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::super::common::{Access, Entry, FileId, Kind, retry_interrupted, temporary_name};
use super::interruptible;

mod listing;

/// A directory held open for reading its entries and as the base of every lookup.
#[derive(Debug)]
pub(crate) struct Dir {
    file: File,
    id: FileId,
}

/// Adds the name to an error that is about the name's length, so that a report says
/// which name was too long (and how long), not only which file was being opened.
fn naming_too_long(name: &OsStr, error: io::Error) -> io::Error {
    if error.raw_os_error() != Some(libc::ENAMETOOLONG) {
        return error;
    }
    io::Error::new(
        error.kind(),
        format!(
            "{error}: `{}` is {} bytes",
            name.to_string_lossy(),
            name.len()
        ),
    )
}

fn c_name(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a file name holds a NUL byte"))
}

/// Makes the system call `call`, which returns -1 and sets errno on failure (see
/// [`interruptible`]).
fn sys(call: impl FnOnce() -> libc::c_int) -> io::Result<libc::c_int> {
    interruptible(|| {
        let rc = call();
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(rc)
        }
    })
}

fn kind_of(mode: libc::mode_t) -> Kind {
    match mode & libc::S_IFMT {
        libc::S_IFREG => Kind::File,
        libc::S_IFLNK => Kind::Symlink,
        libc::S_IFDIR => Kind::Directory,
        _ => Kind::Other,
    }
}

impl Dir {
    /// Opens the directory at `path`, following symbolic links on the way (the caller
    /// resolved the path when it was given) except at its last component.
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        let path = c_name(path.as_os_str())?;
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        // SAFETY: a NUL-terminated path; the descriptor is owned by the `File`.
        let fd = retry_interrupted(|| sys(|| unsafe { libc::open(path.as_ptr(), flags) }))?;
        // SAFETY: a fresh descriptor that nothing else owns.
        let file = unsafe { File::from_raw_fd(fd) };
        let id = FileId::of(&super::metadata(&file)?);
        Ok(Dir { file, id })
    }

    pub(crate) fn id(&self) -> FileId {
        self.id
    }

    /// Whether the directory was deleted (it keeps no name: nothing can be created in it).
    pub(crate) fn is_deleted(&self) -> io::Result<bool> {
        Ok(super::links_and_len(&self.file)?.links == 0)
    }

    /// Opens `name` in this directory, never through a symbolic link, never blocking on a
    /// FIFO, closed on exec; created with `mode` (less the umask) when `access.create`.
    pub(crate) fn open_file(&self, name: &OsStr, access: Access, mode: u32) -> io::Result<File> {
        let mut flags = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;
        flags |= match (access.read, access.write || access.append) {
            (true, true) => libc::O_RDWR,
            (false, true) => libc::O_WRONLY,
            _ => libc::O_RDONLY,
        };
        if access.append {
            flags |= libc::O_APPEND;
        }
        if access.create {
            flags |= libc::O_CREAT;
        }
        if access.exclusive {
            flags |= libc::O_EXCL;
        }
        let c_name = c_name(name)?;
        // SAFETY: a NUL-terminated name relative to a directory descriptor we own.
        let fd = retry_interrupted(|| {
            sys(|| unsafe {
                libc::openat(
                    self.file.as_raw_fd(),
                    c_name.as_ptr(),
                    flags,
                    mode as libc::c_uint,
                )
            })
        })
        .map_err(|e| naming_too_long(name, e))?;
        // SAFETY: a fresh descriptor that nothing else owns.
        Ok(unsafe { File::from_raw_fd(fd) })
    }

    /// Opens `name` with `access`, creating it if missing: with the process's umask
    /// applied to 0o666 when `mode` is `None`, or with exactly `mode` (see
    /// [`Dir::create_exact`]).
    pub(crate) fn open_or_create(
        &self,
        name: &OsStr,
        access: Access,
        mode: Option<u32>,
    ) -> io::Result<File> {
        let Some(mode) = mode else {
            return self.open_file(name, access, 0o666);
        };
        let existing = Access {
            create: false,
            ..access
        };
        // Another process may create it between the two steps, or delete it: a few turns.
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.open_file(name, existing, 0) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                result => return result,
            }
            match self.create_exact(name, access, mode) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 8 => {}
                result => return result,
            }
        }
    }

    /// Creates `name` with exactly the permission bits `mode`, whatever the umask, and
    /// opens it with `access`; `AlreadyExists` if the name is taken.
    ///
    /// No process ever sees the name with other bits: the file is made under a temporary
    /// name (see [`Dir::create_temporary`]), then renamed into place without replacing
    /// anything.
    pub(crate) fn create_exact(&self, name: &OsStr, access: Access, mode: u32) -> io::Result<File> {
        let (file, temporary) = self.create_temporary(access, Some(mode))?;
        self.place(&temporary, name)?;
        Ok(file)
    }

    /// Creates a new file under a hidden temporary name of its own, opened with
    /// `access`: with exactly the permission bits `mode` if given (`fchmod`, whatever the
    /// umask), or 0o666 less the umask. Returns it and its name, for [`Dir::place`].
    pub(crate) fn create_temporary(
        &self,
        access: Access,
        mode: Option<u32>,
    ) -> io::Result<(File, OsString)> {
        let temporary = temporary_name();
        let new = Access {
            create: true,
            exclusive: true,
            ..access
        };
        let file = self.open_file(&temporary, new, mode.unwrap_or(0o666))?;
        if let Some(mode) = mode {
            let exact = std::os::unix::fs::PermissionsExt::from_mode(mode);
            if let Err(error) =
                retry_interrupted(|| interruptible(|| file.set_permissions(Clone::clone(&exact))))
            {
                let _ = self.remove(&temporary);
                return Err(error);
            }
        }
        Ok((file, temporary))
    }

    /// Creates `name`, which must not exist, for writing: with exactly the permission
    /// bits `mode` if given, or 0o666 less the umask.
    #[cfg(feature = "compress")]
    pub(crate) fn create_new(&self, name: &OsStr, mode: Option<u32>) -> io::Result<File> {
        let new = Access {
            read: false,
            write: true,
            append: false,
            create: true,
            exclusive: true,
        };
        let file = self.open_file(name, new, mode.unwrap_or(0o666))?;
        if let Some(mode) = mode {
            let exact = std::os::unix::fs::PermissionsExt::from_mode(mode);
            if let Err(error) =
                retry_interrupted(|| interruptible(|| file.set_permissions(Clone::clone(&exact))))
            {
                let _ = self.remove(name);
                return Err(error);
            }
        }
        Ok(file)
    }

    /// Renames `from` to `to`, failing with `AlreadyExists` rather than replace `to`.
    pub(crate) fn rename_exclusive(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
        // Of the two, the longer is the one too long.
        let longer = if from.len() >= to.len() { from } else { to };
        self.rename_exclusive_once(from, to)
            .map_err(|e| naming_too_long(longer, e))
    }

    fn rename_exclusive_once(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
        let (c_from, c_to) = (c_name(from)?, c_name(to)?);
        let fd = self.file.as_raw_fd();
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            // SAFETY: NUL-terminated names relative to a directory descriptor we own.
            let renamed = retry_interrupted(|| {
                sys(|| unsafe {
                    libc::renameat2(
                        fd,
                        c_from.as_ptr(),
                        fd,
                        c_to.as_ptr(),
                        libc::RENAME_NOREPLACE as libc::c_uint,
                    )
                })
            });
            match renamed {
                // A file system that cannot do it: link, then unlink.
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) => {}
                result => return result.map(drop),
            }
        }
        #[cfg(any(target_os = "macos", target_os = "ios"))]
        {
            // SAFETY: as above.
            let renamed = retry_interrupted(|| {
                sys(|| unsafe {
                    libc::renameatx_np(fd, c_from.as_ptr(), fd, c_to.as_ptr(), libc::RENAME_EXCL)
                })
            });
            match renamed {
                Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => {}
                result => return result.map(drop),
            }
        }
        // Elsewhere the file has two names for a moment, which a process opening it then
        // takes for a file that is also another one, and refuses.
        // SAFETY: as above.
        retry_interrupted(|| {
            sys(|| unsafe { libc::linkat(fd, c_from.as_ptr(), fd, c_to.as_ptr(), 0) })
        })?;
        self.remove(from)
    }

    /// What sits at `name`, without following a symbolic link; `None` if nothing does.
    pub(crate) fn entry(&self, name: &OsStr) -> io::Result<Option<Entry>> {
        let c_name = c_name(name)?;
        // SAFETY: `fstatat` writes only into the zeroed struct we own.
        let mut stat: libc::stat = unsafe { std::mem::zeroed() };
        let looked_up = retry_interrupted(|| {
            // SAFETY: a NUL-terminated name and a valid pointer.
            sys(|| unsafe {
                libc::fstatat(
                    self.file.as_raw_fd(),
                    c_name.as_ptr(),
                    &mut stat,
                    libc::AT_SYMLINK_NOFOLLOW,
                )
            })
        });
        if let Err(error) = looked_up {
            return match error.kind() {
                io::ErrorKind::NotFound => Ok(None),
                _ => Err(naming_too_long(name, error)),
            };
        }
        Ok(Some(Entry {
            id: FileId {
                dev: stat.st_dev as u64,
                ino: stat.st_ino as u64,
            },
            kind: kind_of(stat.st_mode),
            uid: stat.st_uid as u32,
            gid: stat.st_gid as u32,
            mode: stat.st_mode as u32 & 0o7777,
            len: stat.st_size as u64,
            modified: stat.st_mtime as i64,
            modified_nanos: stat.st_mtime_nsec as u32,
        }))
    }

    /// Deletes the name `name` (a file or a link, never what a link points to).
    pub(crate) fn remove(&self, name: &OsStr) -> io::Result<()> {
        let c_name = c_name(name)?;
        // SAFETY: a NUL-terminated name relative to a directory descriptor we own.
        retry_interrupted(|| {
            sys(|| unsafe { libc::unlinkat(self.file.as_raw_fd(), c_name.as_ptr(), 0) })
        })
        .map(drop)
        .map_err(|e| naming_too_long(name, e))
    }

    /// The longest file name the directory's file system takes (`NAME_MAX`, from
    /// `fpathconf`); `None` when it sets no limit.
    pub(crate) fn name_max(&self) -> io::Result<Option<usize>> {
        super::set_errno(0);
        // SAFETY: a descriptor we own.
        let max = unsafe { libc::fpathconf(self.file.as_raw_fd(), libc::_PC_NAME_MAX) };
        if max < 0 {
            let error = io::Error::last_os_error();
            return match error.raw_os_error() {
                Some(0) | None => Ok(None),
                _ => Err(error),
            };
        }
        Ok(Some(max as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error about a name's length names it: the message of an open, a rename or a
    /// look-up says which name was too long, not only what was being done.
    #[test]
    fn a_name_refused_as_too_long_is_named_in_the_error() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = Dir::open(scratch.path()).unwrap();
        let long = OsString::from("x".repeat(300));
        let opened = dir.open_file(&long, Access::APPEND_CREATE, 0o600);
        std::fs::write(scratch.path().join("short"), "x").unwrap();
        let renamed_to = dir.rename_exclusive(OsStr::new("short"), &long);
        let looked_up = dir.entry(&long);
        for error in [
            opened.unwrap_err(),
            renamed_to.unwrap_err(),
            looked_up.unwrap_err(),
        ] {
            let message = error.to_string();
            assert!(message.contains(&"x".repeat(300)), "{message}");
            assert!(message.contains("300 bytes"), "{message}");
        }
        assert_eq!(dir.name_max().unwrap(), Some(255));
    }
}
