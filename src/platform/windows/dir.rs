//! [`Dir`]: the log's directory, by its path, and every name looked up in it.
//!
//! Windows differs from Unix in three ways that matter here:
//! - A file is opened so that others may read, write, rename and delete it while it is
//!   open (`FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE`): rotation renames a
//!   log that other processes hold open. A program that opens one without sharing delete
//!   (an indexer, an antivirus) makes the rename fail until it lets go: the rotation is
//!   then counted as failed and tried again, as any failed rotation is.
//! - A file deleted while open keeps its name until its last handle closes. So a removal
//!   first renames the file to a hidden temporary name, freeing the name at once, then
//!   deletes it; one that cannot be deleted yet stays under that name until its writer's
//!   process is gone and [`remove_abandoned_temporaries`](crate::log_dir) removes it.
//! - A symbolic link (or junction) is a reparse point: opened as itself, never followed,
//!   and refused as on Unix.

use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::windows::ffi::OsStrExt;
use std::os::windows::fs::OpenOptionsExt;
use std::os::windows::io::AsRawHandle;
use std::path::{Path, PathBuf};

use windows_sys::Win32::Foundation::{ERROR_CANT_RESOLVE_FILENAME, ERROR_FILENAME_EXCED_RANGE};
use windows_sys::Win32::Storage::FileSystem::{
    BY_HANDLE_FILE_INFORMATION, DeleteFileW, FILE_ATTRIBUTE_DEVICE, FILE_ATTRIBUTE_DIRECTORY,
    FILE_ATTRIBUTE_READONLY, FILE_ATTRIBUTE_REPARSE_POINT, FILE_FLAG_BACKUP_SEMANTICS,
    FILE_FLAG_OPEN_REPARSE_POINT, FILE_GENERIC_READ, FILE_GENERIC_WRITE, FILE_READ_ATTRIBUTES,
    FILE_SHARE_DELETE, FILE_SHARE_READ, FILE_SHARE_WRITE, GetVolumeInformationByHandleW,
    MoveFileExW,
};

use super::super::common::{Access, Entry, FileId, Kind, temporary_name};
use super::{by_handle, id_of};

mod listing;

/// Every handle lets every other open, rename and delete the file.
const SHARE_ALL: u32 = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;

/// A directory, by its path and identity. Unlike on Unix it is not held open: a directory
/// held open on Windows cannot be removed (its name stays until the handle closes), so an
/// operator could not remove or replace it while any process logs there.
#[derive(Debug)]
pub(crate) struct Dir {
    path: PathBuf,
    id: FileId,
}

/// Adds the name to an error about the name's length.
fn naming_too_long(name: &OsStr, error: io::Error) -> io::Error {
    if error.raw_os_error() != Some(ERROR_FILENAME_EXCED_RANGE as i32)
        && error.kind() != io::ErrorKind::InvalidFilename
    {
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

fn wide(path: &Path) -> Vec<u16> {
    path.as_os_str().encode_wide().chain([0]).collect()
}

/// Opens what is at `path` for its attributes only, never following a reparse point,
/// a directory as well as a file.
pub(super) fn open_attributes(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .access_mode(FILE_READ_ATTRIBUTES)
        .share_mode(SHARE_ALL)
        .custom_flags(FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT)
        .open(path)
}

fn kind_of(attributes: u32) -> Kind {
    if attributes & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
        Kind::Symlink
    } else if attributes & FILE_ATTRIBUTE_DIRECTORY != 0 {
        Kind::Directory
    } else if attributes & FILE_ATTRIBUTE_DEVICE != 0 {
        Kind::Other
    } else {
        Kind::File
    }
}

/// The refusal of a reparse point, which [`super::is_symlink_refusal`] recognises.
fn symlink_refusal() -> io::Error {
    io::Error::from_raw_os_error(ERROR_CANT_RESOLVE_FILENAME as i32)
}

fn entry_of(info: &BY_HANDLE_FILE_INFORMATION) -> Entry {
    // 100-nanosecond steps since 1601, to the Unix epoch.
    const EPOCH_DIFFERENCE: i64 = 116_444_736_000_000_000;
    let written = u64::from(info.ftLastWriteTime.dwHighDateTime) << 32
        | u64::from(info.ftLastWriteTime.dwLowDateTime);
    let since_epoch = written as i64 - EPOCH_DIFFERENCE;
    Entry {
        id: id_of(info),
        kind: kind_of(info.dwFileAttributes),
        uid: 0,
        gid: 0,
        mode: match info.dwFileAttributes & FILE_ATTRIBUTE_READONLY {
            0 => 0o666,
            _ => 0o444,
        },
        len: u64::from(info.nFileSizeHigh) << 32 | u64::from(info.nFileSizeLow),
        modified: since_epoch.div_euclid(10_000_000),
        modified_nanos: (since_epoch.rem_euclid(10_000_000) * 100) as u32,
    }
}

impl Dir {
    /// Opens the directory at `path`, refusing a symbolic link or junction at its last
    /// component.
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        let handle = open_attributes(path)?;
        let info = by_handle(&handle)?;
        match kind_of(info.dwFileAttributes) {
            Kind::Directory => {}
            Kind::Symlink => return Err(symlink_refusal()),
            _ => return Err(io::ErrorKind::NotADirectory.into()),
        }
        Ok(Dir {
            path: path.to_path_buf(),
            id: id_of(&info),
        })
    }

    pub(crate) fn id(&self) -> FileId {
        self.id
    }

    /// Whether the directory was deleted: its path names nothing, or another directory.
    pub(crate) fn is_deleted(&self) -> io::Result<bool> {
        match open_attributes(&self.path) {
            Ok(handle) => Ok(id_of(&by_handle(&handle)?) != self.id),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// Opens `name` in this directory, never through a reparse point, sharing everything.
    /// Windows has no permission bits: `mode` is not used (`build()` refuses `file_mode`).
    pub(crate) fn open_file(&self, name: &OsStr, access: Access, _mode: u32) -> io::Result<File> {
        let mut options = OpenOptions::new();
        // Write access rather than append-only, so that a killed writer's partial line can
        // be cut off; appends say "at the end" themselves (see `platform::append`).
        let mut rights = 0;
        if access.read {
            rights |= FILE_GENERIC_READ;
        }
        if access.write || access.append {
            rights |= FILE_GENERIC_WRITE;
        }
        options
            .read(access.read)
            .write(access.write || access.append)
            .access_mode(rights)
            .share_mode(SHARE_ALL)
            .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT);
        if access.create && access.exclusive {
            options.create_new(true);
        } else if access.create {
            options.create(true);
        }
        let path = self.path.join(name);
        let file = match options.open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied && path.is_dir() => {
                return Err(io::ErrorKind::IsADirectory.into());
            }
            Err(e) => return Err(naming_too_long(name, e)),
        };
        if by_handle(&file)?.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
            return Err(symlink_refusal());
        }
        Ok(file)
    }

    /// Opens `name` with `access`, creating it if missing. No permission bits on Windows.
    pub(crate) fn open_or_create(
        &self,
        name: &OsStr,
        access: Access,
        _mode: Option<u32>,
    ) -> io::Result<File> {
        self.open_file(name, access, 0)
    }

    /// Creates a new file under a hidden temporary name of its own, opened with
    /// `access`. Returns it and its name, for [`Dir::place`].
    pub(crate) fn create_temporary(
        &self,
        access: Access,
        _mode: Option<u32>,
    ) -> io::Result<(File, OsString)> {
        let temporary = temporary_name();
        let new = Access {
            create: true,
            exclusive: true,
            ..access
        };
        let file = self.open_file(&temporary, new, 0)?;
        Ok((file, temporary))
    }

    /// Creates `name`, which must not exist, for writing.
    #[cfg(feature = "compress")]
    pub(crate) fn create_new(&self, name: &OsStr, _mode: Option<u32>) -> io::Result<File> {
        let new = Access {
            read: false,
            write: true,
            append: false,
            create: true,
            exclusive: true,
        };
        self.open_file(name, new, 0)
    }

    /// Renames `from` to `to`, failing with `AlreadyExists` rather than replace `to`
    /// (`MoveFileExW` without `MOVEFILE_REPLACE_EXISTING`). A file open elsewhere moves
    /// only if every handle on it shares delete.
    pub(crate) fn rename_exclusive(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
        let (source, target) = (wide(&self.path.join(from)), wide(&self.path.join(to)));
        // SAFETY: two NUL-terminated wide paths.
        if unsafe { MoveFileExW(source.as_ptr(), target.as_ptr(), 0) } == 0 {
            let longer = if from.len() >= to.len() { from } else { to };
            return Err(naming_too_long(longer, io::Error::last_os_error()));
        }
        Ok(())
    }

    /// What sits at `name`, without following a reparse point; `None` if nothing does.
    pub(crate) fn entry(&self, name: &OsStr) -> io::Result<Option<Entry>> {
        match open_attributes(&self.path.join(name)) {
            Ok(file) => Ok(Some(entry_of(&by_handle(&file)?))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(naming_too_long(name, e)),
        }
    }

    /// Deletes the name `name` (a file or a link, never a directory, never what a link
    /// points to). The file is first renamed to a hidden temporary name, so that the name
    /// is free at once even while other processes hold the file open.
    pub(crate) fn remove(&self, name: &OsStr) -> io::Result<()> {
        match self.entry(name)? {
            None => return Err(io::ErrorKind::NotFound.into()),
            Some(entry) if entry.kind == Kind::Directory => {
                return Err(io::ErrorKind::IsADirectory.into());
            }
            Some(_) => {}
        }
        let temporary = temporary_name();
        self.rename_exclusive(name, &temporary)?;
        let doomed = wide(&self.path.join(&temporary));
        // SAFETY: a NUL-terminated wide path.
        if unsafe { DeleteFileW(doomed.as_ptr()) } == 0 {
            // Held open without shared delete: the name is free all the same, and the
            // file goes once this process is gone (see the module's comment).
            let _ = io::Error::last_os_error();
        }
        Ok(())
    }

    /// The longest file name the directory's file system takes, in UTF-16 units (255 on
    /// NTFS); `None` if the volume does not say.
    pub(crate) fn name_max(&self) -> io::Result<Option<usize>> {
        let handle = open_attributes(&self.path)?;
        let mut longest = 0u32;
        // SAFETY: a handle we hold open; every buffer is absent (null, length 0) except
        // the one number asked for.
        let ok = unsafe {
            GetVolumeInformationByHandleW(
                handle.as_raw_handle(),
                std::ptr::null_mut(),
                0,
                std::ptr::null_mut(),
                &mut longest,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                0,
            )
        };
        Ok((ok != 0 && longest > 0).then_some(longest as usize))
    }
}
