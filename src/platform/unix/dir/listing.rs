//! Listing a [`Dir`]: the one read of a whole directory, which takes as long as the
//! directory is large, so no caller does it while holding a log's lock.

use std::ffi::{CStr, OsStr, OsString};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStringExt;

use super::super::super::common::retry_interrupted;
use super::super::interruptible;
use super::{Dir, Kind, c_name, sys};

impl Dir {
    /// The names in this directory that start with `prefix`, with what sits at each. A
    /// read interrupted by a signal (EINTR, which FUSE and NFS can return) is made again:
    /// the stream keeps its place.
    pub(crate) fn list(&self, prefix: &[u8]) -> io::Result<Vec<(OsString, Kind)>> {
        #[cfg(test)]
        super::super::super::common::listings::listed();
        // The stream takes its own descriptor, positioned at the start.
        let dot = c_name(OsStr::new("."))?;
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC;
        // SAFETY: "." relative to a directory descriptor we own.
        let fd = retry_interrupted(|| {
            sys(|| unsafe { libc::openat(self.file.as_raw_fd(), dot.as_ptr(), flags) })
        })?;
        // `fdopendir` checks the descriptor with an `fstat`, which can be interrupted; it
        // takes the descriptor only when it succeeds.
        let opened = retry_interrupted(|| {
            interruptible(|| {
                // SAFETY: a fresh directory descriptor, owned by the stream from here on.
                let stream = unsafe { libc::fdopendir(fd) };
                match stream.is_null() {
                    true => Err(io::Error::last_os_error()),
                    false => Ok(stream),
                }
            })
        });
        let stream = match opened {
            Ok(stream) => stream,
            Err(error) => {
                super::super::close(fd);
                return Err(error);
            }
        };
        struct Stream(*mut libc::DIR);
        impl Drop for Stream {
            fn drop(&mut self) {
                // SAFETY: a stream from `fdopendir`, closed once.
                unsafe { libc::closedir(self.0) };
            }
        }
        let stream = Stream(stream);
        let mut names = Vec::new();
        loop {
            let read = interruptible(|| {
                // `readdir` reports an error only through errno, so clear it first.
                super::super::set_errno(0);
                // SAFETY: a live stream; the entry is read before the next call.
                let entry = unsafe { libc::readdir(stream.0) };
                let error = io::Error::last_os_error();
                match entry.is_null() && error.raw_os_error().is_some_and(|code| code != 0) {
                    true => Err(error),
                    false => Ok(entry),
                }
            });
            let entry = match read {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
                Ok(entry) if entry.is_null() => return Ok(names),
                Ok(entry) => entry,
            };
            // SAFETY: `d_name` is NUL-terminated within the entry.
            let name = unsafe { CStr::from_ptr((*entry).d_name.as_ptr()) }.to_bytes();
            if !name.starts_with(prefix) {
                continue;
            }
            let name = OsString::from_vec(name.to_vec());
            // SAFETY: a valid entry.
            let kind = match unsafe { (*entry).d_type } {
                libc::DT_REG => Kind::File,
                libc::DT_LNK => Kind::Symlink,
                libc::DT_DIR => Kind::Directory,
                // Some file systems do not say: ask.
                libc::DT_UNKNOWN => match self.entry(&name)? {
                    Some(entry) => entry.kind,
                    None => continue,
                },
                _ => Kind::Other,
            };
            names.push((name, kind));
        }
    }
}
